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
	"time"
	"unicode/utf8"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/atomicfile"
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

// prepare turns one raw incident into what the relay stores and sends: one
// decode and one encode, the relay's only ones (Validate judges fields
// without encoding; CheckSize measures the bytes of the one encode). The
// sensor's bytes are never forwarded: the incident is decoded, validated,
// checked against the relay's clock, cleaned of bidi and zero-width
// characters, changed as configured and encoded again, so the output holds
// no raw CR or LF that could inject SSE fields. host is nil when re-reading
// the history (already stamped; its times were checked on arrival).
func (r *Relay) prepare(raw []byte, host *Host, fromHistory bool) (prepared, error) {
	if fromHistory {
		r.preparedStream.Add(1)
	} else {
		r.preparedIngest.Add(1)
	}
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
	if !fromHistory {
		if err := in.CheckTimes(r.now(), r.maxAge()); err != nil {
			return prepared{}, err
		}
	}
	in.CleanFormat()
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
	if err := incident.CheckSize(b); err != nil {
		return prepared{}, fmt.Errorf("after stamping: %w", err)
	}
	if bytes.ContainsAny(b, "\r\n\x00") {
		// encoding/json escapes these; refuse rather than trust it.
		return prepared{}, errors.New("incident: encoded form holds a line break")
	}
	return prepared{in: in, json: b}, nil
}

// maxAge is the oldest ts or last_seen the relay takes: the history
// retention (an older incident would be past every file it could be kept
// in, and past every window the map and the stats show); with history kept
// for ever, ten years, which only refuses nonsense such as year 0001.
func (r *Relay) maxAge() time.Duration {
	if r.cfg.RetentionDays > 0 {
		return time.Duration(r.cfg.RetentionDays) * 24 * time.Hour
	}
	return 10 * 365 * 24 * time.Hour
}

// maskedIDPrefix marks ids replaced by MaskIP, so the history is not hashed
// twice on reload.
const maskedIDPrefix = "m:"

// mask truncates the attacker address (IPv4 /24, IPv6 /48; an IPv4-mapped
// IPv6 address is unmapped first and masked as IPv4), replaces the id by a
// keyed hash of it (stable, so updates still find their incident, but not
// reversible by trying every address) and masks every address, in any
// spelling, in every free-text field (see maskAddrs).
func (r *Relay) mask(in *incident.Incident, fromHistory bool) {
	a, err := netip.ParseAddr(in.IP)
	if err != nil {
		return // Validate already refused it
	}
	in.IP = maskAddr(a).String()
	if !fromHistory || !strings.HasPrefix(in.ID, maskedIDPrefix) {
		mac := hmac.New(sha256.New, r.maskK)
		mac.Write([]byte(in.ID))
		in.ID = maskedIDPrefix + in.Source + ":" + hex.EncodeToString(mac.Sum(nil)[:12])
	}
	for _, p := range []*string{&in.City, &in.Org, &in.Title, &in.Summary, &in.GeoSource, &in.Action} {
		*p = maskAddrs(*p)
	}
	for i := range in.Tags {
		in.Tags[i] = maskAddrs(in.Tags[i])
	}
	if e := in.Evidence; e != nil {
		for _, l := range [][]string{e.Users, e.Paths, e.UserAgents, e.Methods, e.Argv, e.Lists} {
			for i := range l {
				l[i] = maskAddrs(l[i])
			}
		}
		e.Comm, e.Parent, e.Dst = maskAddrs(e.Comm), maskAddrs(e.Parent), maskAddrs(e.Dst)
	}
}

// maskAddr keeps the network part of an address: IPv4 /24, IPv6 /48 (a
// site), IPv4-mapped IPv6 unmapped first (masking ::ffff:203.0.113.78 as
// IPv6 /48 would give "::", hiding nothing useful and everything else).
func maskAddr(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p.Addr()
}

// isAddrByte reports the bytes an IPv4 or IPv6 address is written with.
func isAddrByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.'
}

// maskAddrs masks every IPv4 and IPv6 address in s, in any spelling the
// parsers or people use: IPv6 in upper or lower case, with leading zeros,
// compressed or not, with an embedded IPv4 or a zone; IPv4 dotted quads
// with or without leading zeros (203.000.113.078). Masked addresses are
// written in canonical form. Text without an address is returned as is.
func maskAddrs(s string) string {
	var b []byte // nil until something changes
	last := 0    // s[last:] not yet copied to b
	for i := 0; i < len(s); {
		if !isAddrByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isAddrByte(s[j]) {
			j++
		}
		run := s[i:j]
		if strings.Count(run, ":") >= 2 {
			if lo, hi, a, ok := findIPv6(run); ok {
				b = append(b, s[last:i+lo]...)
				b = maskAddr(a).AppendTo(b)
				last = i + hi
				// The rest of the run (a ":22" port) may hold no
				// address; it is scanned as a new run below.
				i += hi
				continue
			}
			// An embedded IPv4 with leading zeros (::ffff:010.0.0.1),
			// which netip refuses, is still an address.
			// findIPv6 leaves at most a ':' before and '.' or ':' after
			// the address, so nothing else of the rewritten run is kept.
			if c := canonQuads(run); c != run {
				if lo, hi, a, ok := findIPv6(c); ok {
					b = append(b, s[last:i]...)
					b = append(b, c[:lo]...)
					b = maskAddr(a).AppendTo(b)
					b = append(b, c[hi:]...)
					last, i = j, j
					continue
				}
			}
		}
		for k := 0; k < len(run); {
			n, a, ok := ipv4At(run, k)
			if !ok {
				k++
				continue
			}
			b = append(b, s[last:i+k]...)
			b = maskAddr(a).AppendTo(b)
			last = i + k + n
			k += n
		}
		i = j
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}

// canonQuads rewrites the dotted quads in run without leading zeros.
func canonQuads(run string) string {
	var b []byte
	last := 0
	for k := 0; k < len(run); {
		n, a, ok := ipv4At(run, k)
		if !ok {
			k++
			continue
		}
		b = append(b, run[last:k]...)
		b = a.AppendTo(b)
		last = k + n
		k += n
	}
	if b == nil {
		return run
	}
	return string(append(b, run[last:]...))
}

// findIPv6 finds an IPv6 address in a run of address bytes: the whole run,
// or the run without a stray leading ':' (as in "addr:2001:db8::1") or
// trailing '.' or ':' (the end of a sentence). It returns the address's
// bounds within run.
func findIPv6(run string) (lo, hi int, a netip.Addr, ok bool) {
	lo, hi = 0, len(run)
	for try := 0; try < 2; try++ {
		if a, err := netip.ParseAddr(run[lo:hi]); err == nil && a.Is6() {
			return lo, hi, a, true
		}
		if len(run) > 1 && run[0] == ':' && run[1] != ':' {
			lo = 1
		}
		for hi > lo && (run[hi-1] == '.' || run[hi-1] == ':' && (hi < 2 || run[hi-2] != ':')) {
			hi--
		}
	}
	return 0, 0, netip.Addr{}, false
}

// ipv4At reads a dotted quad at run[k:]: four groups of one to three
// digits, each at most 255, not preceded or followed by another digit. It
// returns its length and the address.
func ipv4At(run string, k int) (int, netip.Addr, bool) {
	if k > 0 && run[k-1] >= '0' && run[k-1] <= '9' {
		return 0, netip.Addr{}, false
	}
	var q [4]byte
	i := k
	for g := 0; g < 4; g++ {
		if g > 0 {
			if i >= len(run) || run[i] != '.' {
				return 0, netip.Addr{}, false
			}
			i++
		}
		v, n := 0, 0
		for i < len(run) && n < 3 && run[i] >= '0' && run[i] <= '9' {
			v = v*10 + int(run[i]-'0')
			i++
			n++
		}
		if n == 0 || v > 255 {
			return 0, netip.Addr{}, false
		}
		q[g] = byte(v)
	}
	if i < len(run) && run[i] >= '0' && run[i] <= '9' {
		return 0, netip.Addr{}, false
	}
	return i - k, netip.AddrFrom4(q), true
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
	if err := atomicfile.Write(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("relay: writing mask key: %w", err)
	}
	return key, nil
}
