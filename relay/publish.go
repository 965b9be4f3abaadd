package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay/hub"
)

// publish is the one ingest path, for the socket and for Publish: each
// incident is prepared on its own (a bad one is rejected by index, the rest
// go on), exact repeats are acknowledged and dropped, new incidents and
// updates get the next sequence number, enter the ring, the history and the
// stats, and are handed to the hub in one go. The caller calls syncHistory
// before acknowledging, so broadcasting never waits for the disk.
//
// A non-nil error means the batch's history lines could not be written:
// the incidents were broadcast but are not safe across a restart, so the
// caller must not acknowledge the batch. The sensor then resends it, and
// the resent copies are written instead of being dropped as repeats.
func (r *Relay) publish(host Host, raws []json.RawMessage) (incident.Ack, error) {
	ack := incident.Ack{Type: incident.TypeAck, Rejected: []incident.Rejection{}}
	preps := make([]prepared, 0, len(raws))
	for i, raw := range raws {
		p, err := r.prepare(raw, &host, false)
		if err != nil {
			ack.Rejected = append(ack.Rejected, incident.Rejection{Index: i, Error: oneLine(err.Error())})
			switch {
			case errors.Is(err, incident.ErrClockAhead):
				r.dm.timeRejected.WithLabelValues(host.Name, "ahead").Inc()
			case errors.Is(err, incident.ErrTooOld):
				r.dm.timeRejected.WithLabelValues(host.Name, "too_old").Inc()
			}
			continue
		}
		preps = append(preps, p)
	}
	r.m.rejected.Add(float64(len(ack.Rejected)))
	if len(preps) == 0 {
		return ack, nil
	}
	now := r.now()
	s := r.store
	frames := make([]*hub.Frame, 0, len(preps))
	lines := make([][]byte, 0, len(preps))
	dups := 0
	var written []*entry // entries whose history lines this batch writes
	s.mu.Lock()
	if s.hist != nil {
		if err := r.reserveHistory(host.Name, preps, now); err != nil {
			s.mu.Unlock()
			return incident.Ack{}, err
		}
	}
	for i := range preps {
		p := &preps[i]
		ack.Accepted++
		if old := s.byID[dedupKey(&p.in)]; old != nil && !p.in.Supersedes(&old.key) {
			dups++
			if old.unsaved { // a resend of a batch that was not stored
				if l, err := historyLine(old.seq, now, old.json); err == nil {
					lines = append(lines, l)
					written = append(written, old)
				}
			}
			continue
		}
		e := newEntry(s.seq+1, p)
		if s.insert(e) {
			r.stats.add(&p.in, now)
		}
		frames = append(frames, &hub.Frame{Seq: e.seq, Data: e.frame})
		if l, err := historyLine(e.seq, now, e.json); err == nil {
			lines = append(lines, l)
			written = append(written, e)
		}
	}
	herr := s.appendHistory(lines)
	if herr == nil && s.hist != nil {
		var n int64
		for _, l := range lines {
			n += int64(len(l)) + 1
		}
		s.quota.add(host.Name, n, now)
	}
	for _, e := range written {
		e.unsaved = herr != nil
	}
	// The hub was closed only at shutdown; the incidents are in the
	// history and will be served after the restart.
	_ = r.hub.Publish(frames...)
	s.mu.Unlock()
	r.m.in.Add(float64(len(frames)))
	r.m.duplicates.Add(float64(dups))
	if herr != nil {
		r.m.histErrors.Add(float64(len(lines)))
		r.log.Warn("history write failed; batch broadcast but not acknowledged", "err", herr)
		return ack, fmt.Errorf("relay: storing the batch: %w", herr)
	}
	return ack, nil
}

// reserveHistory checks that the history lines of preps fit the day's
// budget. It counts what the batch would write at most (exact repeats
// write nothing, unless their first copy was never stored). Called with
// r.store.mu held. Over the budget it counts, logs (once a minute per
// host) and returns an ErrHistoryFull error.
func (r *Relay) reserveHistory(host string, preps []prepared, now time.Time) error {
	s := r.store
	var need int64
	for i := range preps {
		p := &preps[i]
		if old := s.byID[dedupKey(&p.in)]; old != nil && !p.in.Supersedes(&old.key) && !old.unsaved {
			continue
		}
		need += int64(len(p.json)) + historyOverhead
	}
	err := s.quota.check(host, need, now)
	if err == nil {
		return nil
	}
	limit := "per_token"
	if s.quota.perHost <= 0 || s.quota.used[host]+need <= s.quota.perHost {
		limit = "total"
	}
	r.dm.historyFull.WithLabelValues(host, limit).Inc()
	if s.quota.shouldLog(host, now) {
		r.log.Warn("history budget spent: refusing batches (not acknowledged; the sensor sends them again later)",
			"host", host, "limit", limit, "err", err)
	}
	return err
}

// syncHistory fsyncs the history. A failure is counted and logged: the
// incidents were already broadcast and are still acknowledged (a resend
// would only be dropped as a repeat).
func (r *Relay) syncHistory() {
	if err := r.store.syncHistory(); err != nil {
		r.m.histErrors.Inc()
		r.log.Warn("history fsync failed", "err", err)
	}
}
