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
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/relay/hub"
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
	// unsaved: broadcast, but its history line may not be on disk (an
	// fsync failed after it was written), so it was not acknowledged; a
	// resend writes it again rather than being dropped as a repeat.
	unsaved bool
	vh      uint64 // version hash, for the index (seen)
	gen     uint64 // history write generation of its line
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
	e.key = incident.Incident{ID: p.in.ID, Host: p.in.Host, Severity: p.in.Severity, LastSeen: p.in.LastSeen, Count: p.in.Count, Action: p.in.Action}
	if p.in.HasLocation() {
		e.lat, e.lon, e.hasLoc = *p.in.Lat, *p.in.Lon, true
	}
	return e
}

// store is the ring of recent incidents, the id index for de-duplication,
// the sequence counter and the history files. See durable.go for what it
// promises about storage.
type store struct {
	mu       sync.Mutex
	ring     []*entry          // circular, len == ring size
	pos      int               // next slot to write
	n        int               // entries in use
	byID     map[string]*entry // by dedupKey
	seen     *seen             // versions stored within retention
	seq      uint64            // last number published
	reserved uint64            // highest number reserved in the state file
	closed   bool

	dir  string
	hist *jsonl.Writer // nil without a data directory
	log  *slog.Logger

	// Group commit: gen counts history lines written, syncedGen the ones
	// an fsync covered; unsynced are the entries in between, oldest first.
	syncMu    sync.Mutex // one fsync at a time; taken before mu
	gen       uint64
	syncedGen uint64
	unsynced  []*entry

	// Full-disk state (see Relay.refuse).
	full        bool
	fullSince   time.Time
	fullLogged  time.Time
	fullRefused int

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
// ring, the index, the stats and the hub, then opens today's file for
// appending. It writes nothing, so the relay starts on a full disk.
func (r *Relay) openHistory() error {
	s := &store{ring: make([]*entry, r.cfg.RingSize), byID: map[string]*entry{}, seen: newSeen(), dir: r.cfg.DataDir, log: r.log}
	s.quota = quota{perHost: r.cfg.HistoryCapPerToken, total: r.cfg.HistoryCapTotal}
	s.quota.roll(r.now())
	r.store = s
	if s.dir == "" {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	var stateSeq uint64
	corrupt := false
	if b, err := os.ReadFile(filepath.Join(s.dir, seqFile)); err == nil {
		var ok bool
		if stateSeq, ok = s.loadSeq(b); !ok {
			corrupt = true
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("relay: reading sequence state: %w", err)
	}
	ring, index, err := r.historyFiles()
	if err != nil {
		return err
	}
	var frames []*hub.Frame
	loaded := 0
	var last, lastIndexed uint64
	var skip skipped
	for _, name := range index {
		if err := r.indexHistoryFile(filepath.Join(s.dir, name), &lastIndexed, &skip); err != nil {
			return err
		}
	}
	for _, name := range ring {
		n, err := r.loadHistoryFile(filepath.Join(s.dir, name), &frames, &last, &skip)
		loaded += n
		if err != nil {
			return err
		}
	}
	last = max(last, lastIndexed)
	s.seq = max(stateSeq, last)
	if corrupt {
		s.seq = last + seqCorruptJump
		r.log.Error("relay: the sequence state file does not hold a number; continuing far past the history so that no number is reused",
			"path", filepath.Join(s.dir, seqFile), "history_seq", last, "next", s.seq+1)
	}
	// Whatever the file says may have been used; nothing above it.
	s.reserved = s.seq
	s.seen.compact()
	if skip.torn > 0 {
		r.dm2.skipped.WithLabelValues("torn").Add(float64(skip.torn))
	}
	if skip.bad > 0 {
		r.dm2.skipped.WithLabelValues("malformed").Add(float64(skip.bad))
	}
	// The hub keeps as many frames as the ring: only the newest matter.
	if len(frames) > r.cfg.RingSize {
		frames = frames[len(frames)-r.cfg.RingSize:]
	}
	if err := r.hub.Preload(frames...); err != nil {
		return fmt.Errorf("relay: replaying history: %w", err)
	}
	if loaded > 0 || s.seen.len() > 0 {
		r.log.Info("history loaded", "incidents", loaded, "files", len(ring), "indexed_files", len(index),
			"indexed_versions", s.seen.len(), "seq", s.seq)
	}
	retention := r.cfg.RetentionDays
	if retention < 0 {
		retention = 0 // jsonl: 0 keeps files for ever
	}
	s.hist, err = jsonl.Open(s.dir, jsonl.Options{
		Prefix:        historyPrefix,
		RetentionDays: retention,
		// The relay fsyncs explicitly before acknowledging (syncHistory,
		// group commit) and must see every fsync error, so the journal
		// never fsyncs on its own (its timer would swallow an error and
		// leave the next Sync nothing to do). It still tracks unsynced
		// writes for Sync.
		SyncInterval: -1,
		// No backlog: a line the disk refuses must fail the batch, never
		// be held in memory behind an ack.
		Backlog: 0,
		Now:     r.now,
		// The journal logs the torn tails it cuts, and the disk state.
		Logger: r.log,
	})
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}

// skipped counts the history lines a load could not use.
type skipped struct{ torn, bad int }

// historyFiles picks the history files to replay into the ring, oldest
// first: the newest ones until they hold a ring's worth of lines and cover
// the last 24 hours (for /api/stats). index are the older files still
// within retention, read only for the de-duplication index.
func (r *Relay) historyFiles() (ring, index []string, err error) {
	names, err := jsonl.List(r.cfg.DataDir, historyPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("relay: %w", err)
	}
	now := r.now().UTC()
	today, _ := time.Parse(time.DateOnly, now.Format(time.DateOnly))
	lines := 0
	for i := len(names) - 1; i >= 0; i-- {
		d, _ := jsonl.ParseFileName(historyPrefix, names[i])
		if r.cfg.RetentionDays > 0 && d.Before(today.AddDate(0, 0, -r.cfg.RetentionDays)) {
			break
		}
		if lines >= r.cfg.RingSize && d.Before(today.AddDate(0, 0, -1)) {
			index = append(index, names[i])
			continue
		}
		n, err := countLines(filepath.Join(r.cfg.DataDir, names[i]))
		if err != nil {
			return nil, nil, err
		}
		lines += n
		ring = append(ring, names[i])
	}
	slices.Reverse(ring)
	slices.Reverse(index)
	return ring, index, nil
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

// loadHistoryFile replays one file into the ring and the index. A line
// without its newline at the end of the file is torn (a crash in the
// middle of a write; it was never acknowledged, and the journal cuts it
// when it opens the file): it is counted as torn, never joined to anything.
// A line that holds a fragment and then a whole line (a torn tail an older
// writer appended to) yields the whole line and counts one torn. Lines that
// do not parse or validate otherwise (a hand edit, a damaged disk) are
// skipped and counted as malformed. Each file with skipped lines gets one
// log line.
func (r *Relay) loadHistoryFile(path string, frames *[]*hub.Frame, last *uint64, skip *skipped) (int, error) {
	s := r.store
	// Today's file counts against today's budget, so a restart does not
	// hand every sensor a fresh one.
	d, _ := jsonl.ParseFileName(historyPrefix, filepath.Base(path))
	day := d.Format(time.DateOnly)
	today := day == s.quota.day
	loaded := 0
	err := r.readHistory(path, skip, func(line []byte) error {
		var rec historyRecord
		var p prepared
		err := json.Unmarshal(line, &rec)
		if err == nil {
			p, err = r.prepare(rec.Incident, nil, true)
		}
		if err == nil && rec.Seq <= *last {
			err = fmt.Errorf("seq %d not after %d", rec.Seq, *last)
		}
		if today {
			host := ""
			if err == nil {
				host = p.in.Host
			}
			s.quota.add(host, int64(len(line))+1, r.now())
		}
		if err != nil {
			return err
		}
		*last = rec.Seq
		vh := s.seen.hash(&p.in)
		s.seen.add(day, vh)
		if old := s.byID[dedupKey(&p.in)]; old != nil && !updates(&p.in, &old.key) {
			return nil
		}
		e := newEntry(rec.Seq, &p)
		e.vh = vh
		if s.insert(e) {
			r.stats.add(&p.in, r.now())
		}
		*frames = append(*frames, &hub.Frame{Seq: e.seq, Data: e.frame})
		if len(*frames) > 2*r.cfg.RingSize {
			*frames = append((*frames)[:0], (*frames)[len(*frames)-r.cfg.RingSize:]...)
		}
		loaded++
		return nil
	})
	return loaded, err
}

// indexRecord is what indexHistoryFile decodes of a history line: the
// fields of the version hash.
type indexRecord struct {
	Seq      uint64 `json:"seq"`
	Incident struct {
		ID       string            `json:"id"`
		Host     string            `json:"host"`
		Severity incident.Severity `json:"severity"`
		LastSeen time.Time         `json:"last_seen"`
		Count    int               `json:"count"`
		Action   string            `json:"action"`
	} `json:"incident"`
}

// indexHistoryFile feeds the de-duplication index from a file older than
// the ring needs, decoding only the fields of the version hash.
func (r *Relay) indexHistoryFile(path string, last *uint64, skip *skipped) error {
	s := r.store
	d, _ := jsonl.ParseFileName(historyPrefix, filepath.Base(path))
	day := d.Format(time.DateOnly)
	return r.readHistory(path, skip, func(line []byte) error {
		var rec indexRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			return err
		}
		if rec.Incident.ID == "" {
			return errors.New("no incident id")
		}
		in := incident.Incident{ID: rec.Incident.ID, Host: rec.Incident.Host, Severity: rec.Incident.Severity,
			LastSeen: rec.Incident.LastSeen, Count: rec.Incident.Count, Action: rec.Incident.Action}
		s.seen.add(day, s.seen.hash(&in))
		*last = max(*last, rec.Seq)
		return nil
	})
}

// lineStart is how every history line begins (historyLine marshals the
// record with seq first). It cannot occur inside one: quotes within JSON
// strings are escaped.
var lineStart = []byte(`{"seq":`)

// readHistory calls use for each line of path, with the torn and malformed
// handling of loadHistoryFile. A line use refuses is tried once more from
// the last lineStart inside it (a fragment glued to a whole line).
func (r *Relay) readHistory(path string, skip *skipped, use func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var torn, bad int
	var first string
	note := func(lineNo int, what string, err error) {
		if torn+bad == 1 {
			first = fmt.Sprintf("line %d: %s: %s", lineNo, what, oneLine(err.Error()))
		}
	}
	for lineNo := 1; ; lineNo++ {
		line, complete, err := readLine(br, 2*incident.MaxBytes)
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, errLongLine) {
			return fmt.Errorf("relay: reading %s: %w", path, err)
		}
		if !complete {
			torn++
			note(lineNo, "torn", errors.New("no newline at the end of the file"))
			break
		}
		if err == nil {
			err = use(line)
		}
		if err == nil {
			continue
		}
		if i := bytes.LastIndex(line, lineStart); i > 0 && use(line[i:]) == nil {
			torn++
			note(lineNo, "torn", errors.New("a fragment glued to a whole line"))
			continue
		}
		bad++
		note(lineNo, "malformed", err)
	}
	skip.torn += torn
	skip.bad += bad
	if torn > 0 || bad > 0 {
		r.log.Warn("history lines skipped", "file", path, "torn", torn, "malformed", bad, "first", first)
	}
	return nil
}

var errLongLine = errors.New("line too long")

// readLine returns the next line without its newline. A line longer than
// max is consumed and reported as errLongLine. Bytes after the last
// newline are returned with complete false; io.EOF means nothing is left.
func readLine(br *bufio.Reader, max int) (line []byte, complete bool, err error) {
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
				return nil, true, errLongLine
			}
			return line[:len(line)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && (len(line) > 0 || long):
			return line, false, nil
		default:
			return nil, false, err
		}
	}
}

func historyLine(seq uint64, at time.Time, js []byte) ([]byte, error) {
	return json.Marshal(historyRecord{Seq: seq, At: at.UTC(), Incident: js})
}

// close stops the store: no batch is taken after it, the exact last
// sequence number is written (so the next start does not skip the rest of
// the reserved block; if the write fails the reservation stands, which is
// just as safe), and the history is synced and closed.
func (s *store) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.hist == nil {
		return nil
	}
	var err error
	if s.seq < s.reserved {
		if err = s.writeSeq(s.seq); err != nil {
			err = fmt.Errorf("relay: saving sequence state (the reservation stands): %w", err)
		} else {
			s.reserved = s.seq
		}
	}
	if cerr := s.hist.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("relay: closing history: %w", cerr)
	}
	return err
}
