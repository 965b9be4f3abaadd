package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/attackmap/attackmap/relay/hub"
)

// The consumer: each relay reads the stream once, in order, with an
// ordered consumer (an ephemeral consumer the client library recreates
// from the next sequence after any failure, so nothing is skipped or read
// twice), into its ring of pre-encoded frames, its stats and its hub. The
// fan-out to subscribers is the hub's, exactly as for a relay on its own;
// every relay of a cluster applies the same messages in the same order, so
// they serve the same feed with the same SSE ids.

// applyTimeout bounds how long an ingest ack waits for the relay's own
// consumer to apply what was just stored (normally well under a
// millisecond in process): the ack then means "stored and broadcast", as
// it always did. Past it the batch is still acknowledged (it is stored);
// the wait only keeps what a sensor sees consistent with the map.
const applyTimeout = 5 * time.Second

// startConsumer reads the stream from where the ring and the stats need it
// (the newest RingSize messages, and everything of the last 24 hours) and
// waits until what the stream held at start has been applied (as Preload,
// not counted as fan-out).
func (r *Relay) startConsumer(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var info *jetstream.StreamInfo
	if err := retry(ctx, r, "reading the stream state", func(ctx context.Context) error {
		var err error
		info, err = r.nats.stream.Info(ctx)
		return err
	}); err != nil {
		return err
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	start := first
	if info.State.Msgs > 0 {
		if last >= uint64(r.cfg.RingSize) {
			start = max(first, last-uint64(r.cfg.RingSize)+1)
		}
		var day uint64
		var ok bool
		if err := retry(ctx, r, "finding the last 24 hours in the stream", func(ctx context.Context) error {
			var err error
			day, ok, err = r.firstSeqSince(ctx, r.now().Add(-24*time.Hour))
			return err
		}); err != nil {
			return err
		}
		if ok {
			start = min(start, day)
		}
	} else {
		start = last + 1
	}
	r.preloadTo.Store(last)
	s := r.store
	s.mu.Lock()
	// Nothing before start is applied: a stream that starts later
	// (expired messages, a migrated stream) does not look like a gap.
	if start > 0 {
		s.seq = start - 1
	}
	s.mu.Unlock()
	if err := retry(ctx, r, "reading the stream", func(ctx context.Context) error {
		return r.consume(ctx, max(start, 1))
	}); err != nil {
		return err
	}
	go r.watchConsumer()
	if !s.waitApplied(last, time.Until(deadline(ctx))) {
		return fmt.Errorf("relay: loading the stream up to %d: timed out", last)
	}
	s.mu.Lock()
	n := s.n
	s.mu.Unlock()
	if n > 0 {
		r.log.Info("stream loaded", "incidents", n, "first", start, "seq", last)
	}
	return nil
}

// consume starts an ordered consumer from sequence from into applyMsg,
// replacing the one running.
func (r *Relay) consume(ctx context.Context, from uint64) error {
	// From here on only the new consumer's messages are applied: a
	// replaced consumer that was slow rather than dead may still deliver
	// a message past the ones the new consumer has yet to send, which
	// would move the applied sequence beyond them and drop them as
	// already seen (a gap in every feed of this relay).
	gen := r.consumerGen.Add(1)
	cons, err := r.nats.js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { r.applyMsg(gen, m) }, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		r.consumeErr(err)
	}),
		// The server sends a heartbeat every second while it has nothing
		// to deliver; two missed ones make the client recreate the
		// consumer, so a consumer whose NATS node died resumes on another
		// within seconds (the default, 15 s, would stall the live feed).
		jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return err
	}
	r.swapConsumer(cc)
	return nil
}

// swapConsumer makes cc (nil: none) the running consumer and stops the
// one it replaces.
func (r *Relay) swapConsumer(cc jetstream.ConsumeContext) {
	r.mu.Lock()
	old := r.consumer
	r.consumer = cc
	r.mu.Unlock()
	if old != nil {
		old.Stop()
	}
}

// consumerStall is how long the ring may stay behind the stream before
// the relay replaces its consumer. The client library recreates an ordered
// consumer itself, but when the node that held it died it first waits for
// the old one's deletion and each creation up to 10 s, with a backoff: 20
// to 60 s of a frozen live feed. Five seconds without progress while the
// stream holds newer messages is a stuck consumer, not a quiet one.
const consumerStall = 5 * time.Second

// watchConsumer replaces a stuck consumer with a new one from the next
// sequence the ring needs (apply drops what it already has), every
// second's check, until the relay stops.
func (r *Relay) watchConsumer() {
	s := r.store
	var behindSince time.Time
	var lastSeen uint64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
		info, err := r.nats.stream.Info(ctx)
		cancel()
		s.mu.Lock()
		applied := s.seq
		s.mu.Unlock()
		if err != nil || info.State.LastSeq <= applied || applied != lastSeen {
			behindSince, lastSeen = time.Time{}, applied
			continue
		}
		if behindSince.IsZero() {
			behindSince = time.Now()
			continue
		}
		if time.Since(behindSince) < consumerStall {
			continue
		}
		ctx, cancel = context.WithTimeout(r.ctx, 5*time.Second)
		err = r.consume(ctx, applied+1)
		cancel()
		if err == nil {
			r.m2.resets.Inc()
			r.log.Warn("relay: the stream consumer was stuck; replaced it", "from", applied+1, "stream_last", info.State.LastSeq)
			behindSince = time.Time{}
		}
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// firstSeqSince returns the sequence of the first message stored at or
// after t, if any. An error means the stream did not answer.
func (r *Relay) firstSeqSince(ctx context.Context, t time.Time) (uint64, bool, error) {
	c, err := r.nats.js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &t,
		HeadersOnly:   true,
	})
	if err != nil {
		return 0, false, err
	}
	// One message, at most a second: the server answers at once when
	// there is one.
	b, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		return 0, false, err
	}
	for m := range b.Messages() {
		if md, err := m.Metadata(); err == nil {
			return md.Sequence.Stream, true, nil
		}
	}
	return 0, false, nil
}

// consumeErr logs a consumer error at most once a minute; the ordered
// consumer recovers by itself.
func (r *Relay) consumeErr(err error) {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrNoHeartbeat) {
		r.m2.resets.Inc()
	}
	now := time.Now()
	r.mu.Lock()
	logIt := now.Sub(r.consumeLogged) >= time.Minute
	if logIt {
		r.consumeLogged = now
	}
	r.mu.Unlock()
	if logIt {
		r.log.Warn("relay: reading the stream: retrying", "err", err)
	}
}

// applyMsg applies one stream message: validated again (a stream in an
// external cluster may have other writers; what this relay published
// itself was validated in publish and is not prepared twice, see
// ownPrepared), then into the ring, the stats, the day's budget and the
// hub.
func (r *Relay) applyMsg(gen uint64, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	at := md.Timestamp
	if h := m.Headers().Get(atHeader); h != "" {
		// Imported from an old history file: counted on its own day.
		if t, err := time.Parse(time.RFC3339Nano, h); err == nil {
			at = t
		}
	}
	r.apply(gen, md.Sequence.Stream, at, m.Data(), m.Headers().Get(jetstream.MsgIDHeader), md.NumPending)
}

// apply applies the message of stream sequence seq, stored at at with the
// message id msgID. What this relay published itself is applied as it was
// prepared then (see ownPrepared), the rest is prepared again.
func (r *Relay) apply(gen, seq uint64, at time.Time, data []byte, msgID string, pending uint64) {
	p, ok := r.own.take(msgID, data)
	var perr error
	if !ok {
		p, perr = r.prepare(data, nil, true)
	}
	s := r.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != r.consumerGen.Load() {
		return // from a replaced consumer (see consume)
	}
	r.pending.Store(pending)
	if seq <= s.seq {
		return // read again after a consumer reset
	}
	defer s.advance(seq)
	if perr != nil {
		r.dm2.skipped.WithLabelValues("malformed").Inc()
		r.log.Debug("relay: skipped a stream message that does not validate", "seq", seq, "err", perr)
		return
	}
	now := r.now()
	if at.UTC().Format(time.DateOnly) == now.UTC().Format(time.DateOnly) {
		s.quota.add(p.in.Host, int64(len(data))+historyOverhead, now)
	}
	if old := s.byID[dedupKey(&p.in)]; old != nil && !updates(&p.in, &old.key) {
		return // an older or equal copy stored by a race of two relays
	}
	e := newEntry(seq, &p)
	s.insert(e)
	// Every copy: stats count an incident once and move it on updates.
	r.stats.add(&p.in, now)
	f := &hub.Frame{Seq: seq, Data: e.frame}
	// The hub was closed only at shutdown; the incident is in the
	// stream and will be served after the restart.
	if seq <= r.preloadTo.Load() {
		_ = r.hub.Preload(f)
	} else {
		_ = r.hub.Publish(f)
	}
}

// catchUpMaxBytes bounds the frames a resuming stream is sent from the
// stream (not the ring) before it joins the hub: they are held for it
// until its socket takes them, so a burst of reconnects after a restart
// must not hold much each; 1 MiB is the ResumeWindow's 500 incidents at a
// typical 1.3 KiB with room to spare. A longer catch-up gets the hub's
// reset instead.
const catchUpMaxBytes = 1 << 20

// catchUpWait bounds reading the catch-up from the stream: it answers at
// once when it holds the messages; past this the stream gets the reset.
const catchUpWait = 2 * time.Second

// catchUp returns the SSE frames of the stream's messages after sequence
// after up to upTo (those that left the ring), at most max of them, and
// the sequence of the last one; ok is false when they could not all be
// read within the bounds (the caller then lets the hub send its reset).
func (r *Relay) catchUp(ctx context.Context, after, upTo uint64, max int) (frames []byte, last uint64, ok bool) {
	if upTo <= after || int(upTo-after) > max {
		return nil, 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	cons, err := r.nats.js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   after + 1,
	})
	if err != nil {
		return nil, 0, false
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(min(max, 256)))
	if err != nil {
		return nil, 0, false
	}
	defer it.Stop()
	last = after
	for last < upTo {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, 0, false
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, 0, false
		}
		seq := md.Sequence.Stream
		if seq > upTo {
			break
		}
		last = seq
		p, err := r.prepare(m.Data(), nil, true)
		if err != nil {
			continue // skipped by the consumer too
		}
		frames = append(frames, newEntry(seq, &p).frame...)
		if len(frames) > catchUpMaxBytes {
			return nil, 0, false
		}
		if md.NumPending == 0 {
			break
		}
	}
	return frames, last, true
}

// stopConsumer stops reading the stream.
func (r *Relay) stopConsumer() { r.swapConsumer(nil) }
