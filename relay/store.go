package relay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay/hub"
	"github.com/attackmap/attackmap/sensor/journal"
)

// entry is one incident in the ring. frame is the encoded SSE event; json
// is the incident's bytes inside it (the data: line), shared by the feed,
// GeoJSON and every subscriber.
type entry struct {
	seq        uint64
	frame      []byte
	json       []byte
	lat, lon   float64
	hasLoc     bool
	key        incident.Incident // ID, Severity, LastSeen, Count: for Supersedes
	superseded bool              // a newer copy with the same id is in the ring
	// unsaved: broadcast, but its history line could not be written, so
	// it was not acknowledged; a resend writes it rather than being
	// dropped as a repeat.
	unsaved bool
}

func newEntry(seq uint64, p *prepared) *entry {
	const mid = "\nevent: incident\ndata: "
	f := make([]byte, 0, 4+20+len(mid)+len(p.json)+2)
	f = append(f, "id: "...)
	f = strconv.AppendUint(f, seq, 10)
	f = append(f, mid...)
	start := len(f)
	f = append(f, p.json...)
	f = append(f, "\n\n"...)
	e := &entry{seq: seq, frame: f, json: f[start : start+len(p.json)]}
	e.key = incident.Incident{ID: p.in.ID, Host: p.in.Host, Severity: p.in.Severity, LastSeen: p.in.LastSeen, Count: p.in.Count}
	if p.in.HasLocation() {
		e.lat, e.lon, e.hasLoc = *p.in.Lat, *p.in.Lon, true
	}
	return e
}

// store is the ring of recent incidents, the id index for de-duplication,
// the sequence counter and the history files.
type store struct {
	mu   sync.Mutex
	ring []*entry          // circular, len == ring size
	pos  int               // next slot to write
	n    int               // entries in use
	byID map[string]*entry // by dedupKey
	seq  uint64

	dir  string
	hist *journal.Writer // nil without a data directory
	log  *slog.Logger

	quota quota
}

// quota is the history's daily byte budget: per token (host) and in all,
// for the current UTC day (the history file's day).
type quota struct {
	perHost, total int64 // caps; 0 or less: none
	day            string
	used           map[string]int64
	usedAll        int64
	logged         map[string]time.Time // last log line per host
}

// historyOverhead bounds what a history line adds around the incident:
// {"seq":<20 digits>,"at":"<RFC 3339 nano>","incident":...} and '\n'.
const historyOverhead = 96

// quotaLogEvery spaces the log lines about one host's full budget: one a
// minute says a sensor is over its budget without one line per batch.
const quotaLogEvery = time.Minute

// ErrHistoryFull is returned for a batch that the daily history budget
// (Config.HistoryCapPerToken, HistoryCapTotal) has no room for. Nothing of
// it was stored or broadcast; the sensor keeps it and sends it again
// later (the budget renews at midnight UTC).
var ErrHistoryFull = errors.New("history full")

// roll starts a new day's budget when the UTC day changed.
func (q *quota) roll(now time.Time) {
	if d := now.UTC().Format(time.DateOnly); d != q.day {
		q.day, q.used, q.usedAll = d, map[string]int64{}, 0
	}
}

// check reports whether n more bytes from host fit today's budget, and
// which cap they exceed if not.
func (q *quota) check(host string, n int64, now time.Time) error {
	q.roll(now)
	switch {
	case q.perHost > 0 && q.used[host]+n > q.perHost:
		return fmt.Errorf("%w: host %s stored %s of its %s daily history budget; the batch needs %s more; send it again after midnight UTC or raise --history-cap-per-token",
			ErrHistoryFull, host, mib(q.used[host]), mib(q.perHost), mib(n))
	case q.total > 0 && q.usedAll+n > q.total:
		return fmt.Errorf("%w: the relay stored %s of its %s daily history budget; the batch needs %s more; send it again after midnight UTC or raise --history-cap",
			ErrHistoryFull, mib(q.usedAll), mib(q.total), mib(n))
	}
	return nil
}

func (q *quota) add(host string, n int64, now time.Time) {
	q.roll(now)
	q.used[host] += n
	q.usedAll += n
}

// shouldLog reports whether a full budget for host is worth a log line.
func (q *quota) shouldLog(host string, now time.Time) bool {
	if q.logged == nil {
		q.logged = map[string]time.Time{}
	}
	if t, ok := q.logged[host]; ok && now.Sub(t) < quotaLogEvery {
		return false
	}
	q.logged[host] = now
	return true
}

func mib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }

const (
	historyPrefix = "history"
	seqFile       = "seq"
)

// historyRecord is one line of a history file.
type historyRecord struct {
	Seq      uint64          `json:"seq"`
	At       time.Time       `json:"at"`
	Incident json.RawMessage `json:"incident"`
}

// dedupKey is what de-duplication and updates match on: the id within
// the host that sent it (stamped from its token). Ids are chosen by
// sensors, so two hosts may raise the same id (one scanner, two servers,
// one minute), and a sensor must not be able to drop or replace another
// host's incidents by reusing their ids.
func dedupKey(in *incident.Incident) string { return in.Host + "\x00" + in.ID }

// insert adds e as the newest entry, marking an older copy with the same id
// superseded and forgetting the evicted entry's id.
func (s *store) insert(e *entry) (isNew bool) {
	if old := s.ring[s.pos]; old != nil && s.byID[dedupKey(&old.key)] == old {
		delete(s.byID, dedupKey(&old.key))
	}
	s.ring[s.pos] = e
	s.pos = (s.pos + 1) % len(s.ring)
	s.n = min(s.n+1, len(s.ring))
	prev := s.byID[dedupKey(&e.key)]
	if prev != nil {
		prev.superseded = true
	}
	s.byID[dedupKey(&e.key)] = e
	s.seq = e.seq
	return prev == nil
}

// recent returns up to limit current (not superseded) entries, oldest
// first; withLoc keeps only located ones. Called with s.mu held.
func (s *store) recent(limit int, withLoc bool) []*entry {
	out := make([]*entry, 0, min(limit, s.n))
	for i := 1; i <= s.n && len(out) < limit; i++ {
		e := s.ring[(s.pos-i+len(s.ring))%len(s.ring)]
		if e.superseded || withLoc && !e.hasLoc {
			continue
		}
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// openHistory loads the history under the store's directory, feeding the
// ring, the stats and the hub, then opens today's file for appending.
func (r *Relay) openHistory() error {
	s := &store{ring: make([]*entry, r.cfg.RingSize), byID: map[string]*entry{}, dir: r.cfg.DataDir, log: r.log}
	s.quota = quota{perHost: r.cfg.HistoryCapPerToken, total: r.cfg.HistoryCapTotal}
	s.quota.roll(r.now())
	r.store = s
	if s.dir == "" {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.dir, seqFile)); err == nil {
		n, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil {
			return fmt.Errorf("relay: %s: not a sequence number", filepath.Join(s.dir, seqFile))
		}
		s.seq = n
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("relay: reading sequence state: %w", err)
	}
	files, err := r.historyFiles()
	if err != nil {
		return err
	}
	var frames []*hub.Frame
	loaded := 0
	stateSeq, last := s.seq, uint64(0)
	for _, name := range files {
		n, err := r.loadHistoryFile(filepath.Join(s.dir, name), &frames, &last)
		loaded += n
		if err != nil {
			return err
		}
	}
	s.seq = max(stateSeq, last)
	// The hub keeps as many frames as the ring: only the newest matter.
	if len(frames) > r.cfg.RingSize {
		frames = frames[len(frames)-r.cfg.RingSize:]
	}
	if err := r.hub.Preload(frames...); err != nil {
		return fmt.Errorf("relay: replaying history: %w", err)
	}
	if loaded > 0 {
		r.log.Info("history loaded", "incidents", loaded, "files", len(files), "seq", s.seq)
	}
	retention := r.cfg.RetentionDays
	if retention < 0 {
		retention = 0 // journal: 0 keeps files for ever
	}
	s.hist, err = journal.Open(s.dir, journal.Options{
		Prefix:        historyPrefix,
		RetentionDays: retention,
		// The relay fsyncs before acknowledging a batch (group commit:
		// one fsync covers every batch appended before it), so an
		// acknowledged incident survives a power loss. The interval is a
		// backstop for in-process publishes and must be positive: the
		// journal only tracks unsynced writes then.
		SyncInterval: time.Second,
		Now:          r.now,
	})
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	// Record the sequence now, so it stays monotonic even if every history
	// file expires before the next start.
	return s.saveSeq()
}

// historyFiles picks the history files to replay, oldest first: the newest
// ones until they hold a ring's worth of lines and cover the last 24 hours
// (for /api/stats), never files past retention.
func (r *Relay) historyFiles() ([]string, error) {
	names, err := journal.List(r.cfg.DataDir, historyPrefix)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	now := r.now().UTC()
	today, _ := time.Parse(time.DateOnly, now.Format(time.DateOnly))
	var pick []string
	lines := 0
	for i := len(names) - 1; i >= 0; i-- {
		d, _ := journal.ParseFileName(historyPrefix, names[i])
		if r.cfg.RetentionDays > 0 && d.Before(today.AddDate(0, 0, -r.cfg.RetentionDays)) {
			break
		}
		if lines >= r.cfg.RingSize && d.Before(today.AddDate(0, 0, -1)) {
			break
		}
		n, err := countLines(filepath.Join(r.cfg.DataDir, names[i]))
		if err != nil {
			return nil, err
		}
		lines += n
		pick = append(pick, names[i])
	}
	for i, j := 0, len(pick)-1; i < j; i, j = i+1, j-1 {
		pick[i], pick[j] = pick[j], pick[i]
	}
	return pick, nil
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("relay: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n := 0
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("relay: reading %s: %w", path, err)
		}
	}
}

// loadHistoryFile replays one file. Lines that do not parse or validate (a
// torn last line after a power cut, a hand edit) are skipped and reported
// once per file; they never reach the ring.
func (r *Relay) loadHistoryFile(path string, frames *[]*hub.Frame, last *uint64) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("relay: %w", err)
	}
	defer f.Close()
	s := r.store
	// Today's file counts against today's budget, so a restart does not
	// hand every sensor a fresh one.
	d, _ := journal.ParseFileName(historyPrefix, filepath.Base(path))
	today := d.Format(time.DateOnly) == s.quota.day
	br := bufio.NewReaderSize(f, 64<<10)
	var bad int
	var firstBad string
	loaded := 0
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(br, 2*incident.MaxBytes)
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, errLongLine) {
			return loaded, fmt.Errorf("relay: reading %s: %w", path, err)
		}
		var rec historyRecord
		var p prepared
		perr := err
		if perr == nil {
			perr = json.Unmarshal(line, &rec)
		}
		if perr == nil {
			p, perr = r.prepare(rec.Incident, nil, true)
		}
		if perr == nil && rec.Seq <= *last {
			perr = fmt.Errorf("seq %d not after %d", rec.Seq, *last)
		}
		if today {
			host := ""
			if perr == nil {
				host = p.in.Host
			}
			s.quota.add(host, int64(len(line))+1, r.now())
		}
		if perr != nil {
			if bad == 0 {
				firstBad = fmt.Sprintf("line %d: %s", lineNo, oneLine(perr.Error()))
			}
			bad++
			continue
		}
		*last = rec.Seq
		if old := s.byID[dedupKey(&p.in)]; old != nil && !p.in.Supersedes(&old.key) {
			continue
		}
		e := newEntry(rec.Seq, &p)
		if s.insert(e) {
			r.stats.add(&p.in, r.now())
		}
		*frames = append(*frames, &hub.Frame{Seq: e.seq, Data: e.frame})
		if len(*frames) > 2*r.cfg.RingSize {
			*frames = append((*frames)[:0], (*frames)[len(*frames)-r.cfg.RingSize:]...)
		}
		loaded++
	}
	if bad > 0 {
		r.log.Warn("history lines skipped", "file", path, "lines", bad, "first", firstBad)
	}
	return loaded, nil
}

var errLongLine = errors.New("line too long")

// readLine returns the next '\n'-terminated line without the newline. A
// line longer than max is consumed and reported as errLongLine; a partial
// last line is ignored (io.EOF).
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	long := false
	for {
		chunk, err := br.ReadSlice('\n')
		if !long {
			if len(line)+len(chunk) > max+1 {
				long, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case err == nil:
			if long {
				return nil, errLongLine
			}
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}

// appendHistory writes the lines for one batch. Called with s.mu held so
// the files hold the sequence in order.
func (s *store) appendHistory(lines [][]byte) error {
	if s.hist == nil {
		return nil
	}
	var first error
	for _, l := range lines {
		if err := s.hist.Append(l); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *store) syncHistory() error {
	if s.hist == nil {
		return nil
	}
	return s.hist.Sync()
}

func historyLine(seq uint64, at time.Time, js []byte) ([]byte, error) {
	return json.Marshal(historyRecord{Seq: seq, At: at.UTC(), Incident: js})
}

func (s *store) saveSeq() error {
	if s.dir == "" {
		return nil
	}
	s.mu.Lock()
	seq := s.seq
	s.mu.Unlock()
	if err := journal.WriteFileAtomic(filepath.Join(s.dir, seqFile), []byte(strconv.FormatUint(seq, 10)+"\n"), 0o640); err != nil {
		return fmt.Errorf("relay: saving sequence state: %w", err)
	}
	return nil
}

func (s *store) close() error {
	if s.hist == nil {
		return nil
	}
	err := s.saveSeq()
	if cerr := s.hist.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("relay: closing history: %w", cerr)
	}
	return err
}
