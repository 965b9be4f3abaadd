package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/relay/hub"
)

// published is what publish did with a batch, for the acknowledgement.
type published struct {
	ack incident.Ack
	// gen is the history's write generation after the batch: the ack
	// waits for an fsync that covers it.
	gen uint64
	// check are the entries the batch wrote or matched as repeats while
	// still in the ring: the ack is refused if one of them turns out not
	// to be on disk (a failed fsync).
	check []*entry
}

// publish is the one ingest path, for the socket and for Publish: each
// incident is prepared on its own (a bad one is rejected by index, the rest
// go on), repeats are acknowledged and dropped (in the ring, or, after they
// left it, by the retention-long index), new incidents and updates get the
// next sequence number, their history line is written, and only then they
// enter the ring, the index and the stats and are handed to the hub. The
// caller calls syncHistory before acknowledging, so broadcasting never
// waits for fsync.
//
// A non-nil error means the batch could not be stored whole (the daily
// budget, a full disk, the sequence reservation, a write error): what was
// not stored was not broadcast, and the caller must not acknowledge the
// batch. The sensor then resends it; what was stored of it is dropped as a
// repeat, the rest is stored.
func (r *Relay) publish(host Host, raws []json.RawMessage) (published, error) {
	out := published{ack: incident.Ack{Type: incident.TypeAck, Rejected: []incident.Rejection{}}}
	ack := &out.ack
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
		return out, nil
	}
	now := r.now()
	day := now.UTC().Format(time.DateOnly)
	s := r.store
	frames := make([]*hub.Frame, 0, len(preps))
	dups, oldDups := 0, 0
	var herr error
	var written int64 // history bytes this batch added
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		r.dm2.refused.WithLabelValues("closed").Inc()
		return out, fmt.Errorf("relay: %w: the relay is stopping; send the batch again", ErrNotStored)
	}
	if s.hist != nil {
		if err := r.reserveHistory(host.Name, preps, now); err != nil {
			s.mu.Unlock()
			return out, err
		}
	}
	// A new day: forget the index's days past retention, as the journal
	// removes their files (incidents that old are refused anyway).
	if r.cfg.RetentionDays > 0 && day > s.seen.newest {
		s.seen.expire(now.AddDate(0, 0, -r.cfg.RetentionDays))
	}
	// Reserve sequence numbers for every incident of the batch before
	// any is published (repeats leave a few unused: gaps are allowed).
	if err := s.reserveSeq(s.seq + uint64(len(preps))); err != nil {
		reason := "seq_state"
		if jsonl.DiskFull(err) {
			reason = "disk_full"
		}
		herr = r.refuse(reason, filepath.Join(s.dir, seqFile), err, now)
		s.mu.Unlock()
		return out, herr
	}
	// write appends one history line; false after a failure (herr set).
	write := func(e *entry) bool {
		if s.hist == nil {
			return true
		}
		l, err := historyLine(e.seq, now, e.json)
		if err == nil {
			err = s.hist.Append(l)
		}
		if err != nil {
			herr = r.refuse(writeReason(err), s.dir, err, now)
			return false
		}
		r.stored()
		written += int64(len(l)) + 1
		s.gen++
		e.gen = s.gen
		s.unsynced = append(s.unsynced, e)
		return true
	}
	for i := range preps {
		p := &preps[i]
		vh := s.seen.hash(&p.in)
		old := s.byID[dedupKey(&p.in)]
		switch {
		case old != nil && old.unsaved && !updates(&p.in, &old.key):
			// A resend of a line that may not have reached the disk:
			// write it again, do not broadcast it again.
			if !write(old) {
				break
			}
			old.unsaved = false
			s.seen.add(day, old.vh)
			out.check = append(out.check, old)
			ack.Accepted++
			dups++
			continue
		case s.seen.has(vh):
			if old == nil {
				oldDups++
			} else {
				out.check = append(out.check, old)
			}
			ack.Accepted++
			dups++
			continue
		case old != nil && !updates(&p.in, &old.key):
			out.check = append(out.check, old)
			ack.Accepted++
			dups++
			continue
		default:
			e := newEntry(s.seq+1, p)
			e.vh = vh
			if !write(e) {
				break
			}
			if s.insert(e) {
				r.stats.add(&p.in, now)
			}
			s.seen.add(day, vh)
			frames = append(frames, &hub.Frame{Seq: e.seq, Data: e.frame})
			out.check = append(out.check, e)
			ack.Accepted++
			continue
		}
		break // a write failed: the rest of the batch is not stored
	}
	if s.hist != nil && written > 0 {
		s.quota.add(host.Name, written, now)
	}
	out.gen = s.gen
	// The hub was closed only at shutdown; the incidents are in the
	// history and will be served after the restart.
	_ = r.hub.Publish(frames...)
	s.mu.Unlock()
	r.m.in.Add(float64(len(frames)))
	r.m.duplicates.Add(float64(dups))
	r.dm2.oldDups.Add(float64(oldDups))
	if herr != nil {
		r.m.histErrors.Inc()
		return out, herr
	}
	return out, nil
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
		if old := s.byID[dedupKey(&p.in)]; old != nil && !updates(&p.in, &old.key) && !old.unsaved {
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
