package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
)

// published is what publish did with a batch, for the acknowledgement.
type published struct {
	ack incident.Ack
	// futs are the batch's messages on their way to the stream: the
	// ack waits for JetStream's ack of every one (confirm).
	futs []jetstream.PubAckFuture
	at   time.Time
	host string
}

// publish is the one ingest path, for the socket and for Publish: each
// incident is prepared on its own (a bad one is rejected by index, the rest
// go on), repeats still in the ring are acknowledged and dropped, and the
// rest is published to the stream with its version id (so the stream drops
// what it already holds within its de-duplication window). It does not
// wait for the stream: the caller calls confirm before acknowledging, so
// the read loop takes the next batch while JetStream stores this one.
// Nothing is broadcast here: the consumer broadcasts what the stream
// stored, on every relay.
//
// A non-nil error means the batch could not be stored whole (the daily
// budget, a full disk, a lost stream): the caller must not acknowledge it.
// The sensor then resends it; what was stored of it is dropped as a repeat,
// the rest is stored.
func (r *Relay) publish(host Host, raws []json.RawMessage) (published, error) {
	out := published{ack: incident.Ack{Type: incident.TypeAck, Rejected: []incident.Rejection{}}, host: host.Name}
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
	out.at = now
	s := r.store
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		r.dm2.refused.WithLabelValues("closed").Inc()
		return out, fmt.Errorf("relay: %w: the relay is stopping; send the batch again", ErrNotStored)
	}
	if !r.nats.nc.IsConnected() {
		err := r.refuse("stream_unavailable", r.natsWhere(), errors.New("no connection to NATS"), now)
		s.mu.Unlock()
		return out, err
	}
	if err := r.reserveHistory(host.Name, preps, now); err != nil {
		s.mu.Unlock()
		return out, err
	}
	send := preps[:0]
	dups := 0
	var need int64
	for i := range preps {
		p := &preps[i]
		if old := s.byID[dedupKey(&p.in)]; old != nil && !updates(&p.in, &old.key) {
			dups++
			continue
		}
		send = append(send, *p)
		need += int64(len(p.json)) + historyOverhead
	}
	if d := r.nats.storeDir; d != "" && len(send) > 0 {
		if free := jsonl.FreeBytes(d); free >= 0 && free < diskReserve+2*need {
			err := r.refuse("disk_full", d, fmt.Errorf("%d bytes free, the batch needs %d and the store keeps %d in reserve", free, need, diskReserve), now)
			s.mu.Unlock()
			return out, err
		}
	}
	s.mu.Unlock()
	r.m.duplicates.Add(float64(dups))
	ack.Accepted = dups
	for i := range send {
		p := &send[i]
		id := versionID(&p.in)
		msg := &nats.Msg{Subject: hostSubject(p.in.Host), Data: p.json}
		// Before the publish: the consumer may read it back at once.
		r.own.put(id, *p)
		f, err := r.nats.js.PublishMsgAsync(msg, jetstream.WithMsgID(id))
		if err != nil {
			// Not sent. The batch's earlier messages may be stored:
			// theirs stay until read back (or evicted, see ownPrepared).
			r.own.drop(id, p.json)
			s.mu.Lock()
			err = r.refuse(pubReason(err), r.natsWhere(), err, now)
			s.mu.Unlock()
			return out, err
		}
		out.futs = append(out.futs, f)
	}
	ack.Accepted += len(send)
	return out, nil
}

// confirm waits for JetStream's ack of every message of a batch, then for
// the relay's own consumer to have applied them (so an acknowledged
// incident is in the feed), and returns the error that refuses the batch
// when one was not stored.
func (r *Relay) confirm(p *published) error {
	if len(p.futs) == 0 {
		return nil
	}
	// Each publish times out after publishAttempt and is sent again
	// (same Nats-Msg-Id, so it is stored once) until publishTimeout.
	deadline := time.Now().Add(publishTimeout)
	var last uint64
	in, dups := 0, 0
	var err error
	for i, f := range p.futs {
		var a *jetstream.PubAck
		if a, err = r.awaitAck(f, deadline); err != nil {
			// Not known to be stored: what it and the rest would bring
			// back is prepared from the stream should it come.
			for _, f := range p.futs[i:] {
				r.dropOwn(f.Msg())
			}
			break
		}
		last = max(last, a.Sequence)
		if a.Duplicate {
			// The stream already held this version: nothing comes back.
			r.dropOwn(f.Msg())
			dups++
		} else {
			in++
		}
	}
	r.m.in.Add(float64(in))
	r.m.duplicates.Add(float64(dups))
	r.dm2.oldDups.Add(float64(dups))
	s := r.store
	if err != nil {
		r.m.histErrors.Inc()
		reason := pubReason(err)
		where := r.natsWhere()
		if d := r.nats.storeDir; d != "" {
			where = d
			if free := jsonl.FreeBytes(d); free >= 0 && free < diskReserve {
				reason = "disk_full"
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return r.refuse(reason, where, err, p.at)
	}
	s.mu.Lock()
	r.stored()
	s.mu.Unlock()
	if !s.waitApplied(last, applyTimeout) {
		r.log.Warn("relay: stored incidents not read back from the stream in time", "seq", last, "timeout", applyTimeout)
	}
	return nil
}

// dropOwn forgets what publish prepared for a message that will not be
// read back (see ownPrepared.drop).
func (r *Relay) dropOwn(m *nats.Msg) {
	r.own.drop(m.Header.Get(jetstream.MsgIDHeader), m.Data)
}

// awaitAck waits for one message's ack, sending it again after a timeout
// or a "no responders" (no stream leader yet) until deadline.
func (r *Relay) awaitAck(f jetstream.PubAckFuture, deadline time.Time) (*jetstream.PubAck, error) {
	// A backstop should the client's own timeout not fire.
	timer := time.NewTimer(time.Until(deadline) + time.Second)
	defer timer.Stop()
	for {
		select {
		case a := <-f.Ok():
			return a, nil
		case err := <-f.Err():
			retriable := errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, nats.ErrNoResponders) ||
				errors.Is(err, nats.ErrTimeout)
			if !retriable || time.Now().After(deadline) {
				return nil, err
			}
			// Give a new leader a moment rather than spinning.
			time.Sleep(100 * time.Millisecond)
			nf, perr := r.nats.js.PublishMsgAsync(f.Msg())
			if perr != nil {
				return nil, perr
			}
			f = nf
		case <-timer.C:
			return nil, jetstream.ErrAsyncPublishTimeout
		}
	}
}

// pubReason names a failed publish for refuse.
func pubReason(err error) string {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10023, // insufficient resources
			10047, // storage resources exceeded
			10077: // stream store failed
			return "disk_full"
		}
		return "write_error"
	}
	return "stream_unavailable"
}

// natsWhere names the NATS servers for a log line.
func (r *Relay) natsWhere() string {
	if r.nats.ns != nil {
		return "embedded NATS"
	}
	return r.nats.nc.ConnectedUrlRedacted()
}

// reserveHistory checks that the stream messages of preps fit the day's
// budget. It counts what the batch would store at most (repeats still in
// the ring store nothing). Called with r.store.mu held. Over the budget it
// counts, logs (once a minute per host) and returns an ErrHistoryFull
// error.
func (r *Relay) reserveHistory(host string, preps []prepared, now time.Time) error {
	s := r.store
	var need int64
	for i := range preps {
		p := &preps[i]
		if old := s.byID[dedupKey(&p.in)]; old != nil && !updates(&p.in, &old.key) {
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
