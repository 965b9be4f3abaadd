package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/attackmap/attackmap/incident"
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

// store is the ring of recent incidents, filled from the stream by the
// consumer (consume.go), with the id index that recognises repeats and
// updates, the last sequence number applied and the history's daily byte
// budget. See durable.go for what the relay promises about storage.
type store struct {
	mu     sync.Mutex
	ring   []*entry          // circular, len == ring size
	pos    int               // next slot to write
	n      int               // entries in use
	byID   map[string]*entry // by dedupKey
	seq    uint64            // last stream sequence applied
	tick   chan struct{}     // closed and replaced when seq grows
	closed bool

	dir string // the data directory ("" in memory)
	log *slog.Logger

	// Full-disk state (see Relay.refuse).
	full        bool
	fullSince   time.Time
	fullLogged  time.Time
	fullRefused int
	logged      map[string]time.Time // last refusal log line by reason

	quota quota
}

// quota is the history's daily byte budget: per token (host) and in all,
// for the current UTC day, counted from the stream as the consumer reads
// it (so every relay of a cluster counts every relay's ingest).
type quota struct {
	perHost, total int64 // caps; 0 or less: none
	day            string
	used           map[string]int64
	usedAll        int64
	logged         map[string]time.Time // last log line per host
}

// historyOverhead bounds what the stream adds to an incident's bytes: the
// subject, the Nats-Msg-Id header and the store's record framing.
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

// historyPrefix names the history files of relays before the stream
// (history-YYYY-MM-DD.jsonl), which the migration imports.
const historyPrefix = "history"

// historyRecord is one line of such a file.
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

// waitApplied waits until the consumer applied sequence seq (or a later
// one), up to timeout; false when it did not.
func (s *store) waitApplied(seq uint64, timeout time.Duration) bool {
	var timer *time.Timer
	for {
		s.mu.Lock()
		done, tick := s.seq >= seq || s.closed, s.tick
		s.mu.Unlock()
		if done {
			if timer != nil {
				timer.Stop()
			}
			return true
		}
		if timer == nil {
			timer = time.NewTimer(timeout)
		}
		select {
		case <-tick:
		case <-timer.C:
			return false
		}
	}
}

// advance records seq as applied and wakes waitApplied. Called with s.mu
// held.
func (s *store) advance(seq uint64) {
	if seq <= s.seq {
		return
	}
	s.seq = seq
	close(s.tick)
	s.tick = make(chan struct{})
}

// close stops the store: no batch is taken after it.
func (s *store) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}
