package relay

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/journal"
)

// DecodeBatch parses one ingest message. It refuses, with a one-line error,
// a message that is not valid UTF-8, not a JSON object, of another type than
// "incidents", or with more than incident.MaxBatchIncidents incidents
// (ErrBatchTooBig). The incidents stay raw so each is judged on its own.
func DecodeBatch(data []byte) (incident.Batch, error) {
	var b incident.Batch
	if len(data) > incident.MaxMessageBytes {
		return b, fmt.Errorf("%w: %d bytes, over the %d byte limit", ErrBatchTooBig, len(data), incident.MaxMessageBytes)
	}
	// Invalid UTF-8 inside an incident is that incident's problem: it is
	// rejected by index in prepare, so one bad incident cannot block a
	// sensor's queue. The envelope itself is checked by its fields.
	if err := json.Unmarshal(data, &b); err != nil {
		return incident.Batch{}, fmt.Errorf("message: %s", oneLine(err.Error()))
	}
	if b.Type != incident.TypeIncidents {
		return incident.Batch{}, fmt.Errorf("message: type %q, want %q", incident.CleanText(b.Type, 32), incident.TypeIncidents)
	}
	if len(b.Incidents) > incident.MaxBatchIncidents {
		return incident.Batch{}, fmt.Errorf("%w: %d incidents, over the %d incident limit", ErrBatchTooBig, len(b.Incidents), incident.MaxBatchIncidents)
	}
	return b, nil
}

// ErrBatchTooBig marks a batch over the message or incident count limit.
var ErrBatchTooBig = errors.New("batch too big")

// oneLine caps an error message for a close reason or a rejection.
func oneLine(s string) string { return incident.CleanText(s, 200) }

// prepared is an incident ready to enter the ring: validated, stamped,
// masked and encoded by the relay.
type prepared struct {
	in   incident.Incident
	json []byte
}

// prepare turns one raw incident into what the relay stores and sends. The
// sensor's bytes are never forwarded: the incident is decoded, validated,
// changed as configured and encoded again, so the output holds no raw CR or
// LF that could inject SSE fields. host is nil when re-reading the history
// (already stamped).
func (r *Relay) prepare(raw []byte, host *Host, fromHistory bool) (prepared, error) {
	if !utf8.Valid(raw) {
		return prepared{}, errors.New("incident: not valid UTF-8")
	}
	in, err := incident.Decode(raw)
	if err != nil {
		return prepared{}, err
	}
	if err := in.Validate(); err != nil {
		return prepared{}, err
	}
	if host != nil {
		in.Host = host.Name
		if host.Target != nil {
			t := *host.Target
			in.Target = &t
		}
	}
	if r.cfg.MaskIP {
		r.mask(&in, fromHistory)
	}
	if r.cfg.CoarseTarget && in.Target != nil {
		in.Target.Lat = math.Round(in.Target.Lat)
		in.Target.Lon = math.Round(in.Target.Lon)
	}
	b, err := incident.Marshal(&in)
	if err != nil {
		return prepared{}, fmt.Errorf("incident: encoding: %w", err)
	}
	if len(b) > incident.MaxBytes {
		return prepared{}, fmt.Errorf("incident: %d bytes after stamping, over the %d byte limit", len(b), incident.MaxBytes)
	}
	if bytes.ContainsAny(b, "\r\n\x00") {
		// encoding/json escapes these; refuse rather than trust it.
		return prepared{}, errors.New("incident: encoded form holds a line break")
	}
	return prepared{in: in, json: b}, nil
}

// maskedIDPrefix marks ids replaced by MaskIP, so the history is not hashed
// twice on reload.
const maskedIDPrefix = "m:"

// mask truncates the attacker address (IPv4 /24, IPv6 /48), replaces the id
// by a keyed hash of it (stable, so updates still find their incident, but
// not reversible by trying every address) and masks the address in free
// text.
func (r *Relay) mask(in *incident.Incident, fromHistory bool) {
	a, err := netip.ParseAddr(in.IP)
	if err != nil {
		return // Validate already refused it
	}
	bits := 24
	if a.Is6() && !a.Is4In6() {
		bits = 48
	}
	p, _ := a.Prefix(bits)
	masked := p.Addr().String()
	orig := in.IP
	in.IP = masked
	if !fromHistory || !strings.HasPrefix(in.ID, maskedIDPrefix) {
		mac := hmac.New(sha256.New, r.maskK)
		mac.Write([]byte(in.ID))
		in.ID = maskedIDPrefix + in.Source + ":" + hex.EncodeToString(mac.Sum(nil)[:12])
	}
	if orig == masked {
		return
	}
	rep := func(s string) string { return strings.ReplaceAll(s, orig, masked) }
	in.Title = rep(in.Title)
	in.Summary = rep(in.Summary)
	if e := in.Evidence; e != nil {
		for _, l := range [][]string{e.Users, e.Paths, e.UserAgents, e.Methods, e.Argv, e.Lists} {
			for i := range l {
				l[i] = rep(l[i])
			}
		}
		e.Comm, e.Parent, e.Dst = rep(e.Comm), rep(e.Parent), rep(e.Dst)
	}
}

// loadMaskKey reads (or creates) the 32-byte key for masked ids in dir, so
// masked ids stay the same across restarts. Without a data directory the
// key lives only in memory.
func loadMaskKey(dir string) ([]byte, error) {
	key := make([]byte, 32)
	if dir == "" {
		_, _ = rand.Read(key)
		return key, nil
	}
	path := filepath.Join(dir, "mask.key")
	b, err := os.ReadFile(path)
	if err == nil {
		k, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(k) != 32 {
			return nil, fmt.Errorf("relay: %s: want 64 hex digits", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("relay: reading mask key: %w", err)
	}
	_, _ = rand.Read(key)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	if err := journal.WriteFileAtomic(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("relay: writing mask key: %w", err)
	}
	return key, nil
}
