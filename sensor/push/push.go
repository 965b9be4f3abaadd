// Package push delivers the incidents journal to relays without losing or
// repeating anything: a Forwarder reads batches from a journal cursor
// (package journal), enriches them, hands them to a Sink (a relay over the
// ingest WebSocket, or the in-process relay) and advances the cursor only
// once the relay acknowledged the whole batch. Failed deliveries are retried
// forever with capped exponential backoff and jitter; incidents the relay
// rejects are logged with its reason and skipped, not retried.
//
// Delivery is at least once: after a crash between the ack and the cursor
// write, the batch is sent again, and the relay drops the repeats (same id,
// nothing newer).
package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/journal"
)

// Sink delivers one batch (at most incident.MaxBatchIncidents incidents and
// incident.MaxMessageBytes encoded) and returns the relay's ack. An error
// means nothing is known to be delivered; the batch is sent again.
type Sink interface {
	Deliver(ctx context.Context, batch []json.RawMessage) (incident.Ack, error)
}

// SinkFunc adapts a function (the in-process relay's Publish) to a Sink.
type SinkFunc func(ctx context.Context, batch []json.RawMessage) (incident.Ack, error)

// Deliver calls f.
func (f SinkFunc) Deliver(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
	return f(ctx, batch)
}

// Enricher fills incidents in place before they are sent; it must return
// promptly (package enrich bounds its remote lookups).
type Enricher interface {
	Enrich(ctx context.Context, ins []*incident.Incident)
}

// Backoff is the retry policy: the wait after the n-th consecutive failure
// is a random duration between half and all of min(Max, Min*2^n).
type Backoff struct {
	// Min defaults to 250 ms: a relay restarting takes about that long.
	Min time.Duration
	// Max defaults to 30 s: a relay that is down for an hour is retried
	// 120 times, cheap for both sides, and picked up within 30 s of its
	// return.
	Max time.Duration
}

func (b Backoff) wait(failures int) time.Duration {
	d := b.Min
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	// Jitter spreads the reconnects of many sensors after a relay restart.
	return d/2 + rand.N(d/2+1)
}

// Stats are a Forwarder's counters.
type Stats struct {
	Delivered uint64 // incidents acknowledged as accepted
	Rejected  uint64 // incidents the relay refused (logged, skipped)
	Failures  uint64 // failed delivery attempts (retried)
	Malformed uint64 // journal lines that are not incidents (skipped)
}

// Forwarder moves incidents from a journal reader to a sink.
type Forwarder struct {
	// Name identifies the destination in logs ("relay.example.org",
	// "local").
	Name   string
	Reader *journal.Reader
	Sink   Sink
	// Enricher is optional.
	Enricher Enricher
	Backoff  Backoff
	Logger   *slog.Logger
	// Delivered, when set, is called after each acknowledged batch with
	// the accepted incidents' journal lines (benchmarks and tests).
	Delivered func(n int)

	delivered, rejected, failures atomic.Uint64
}

// CheckLine is the journal.ReaderOptions.Check for incidents journals: a
// line that is not valid UTF-8 or does not decode as an incident is
// malformed and skipped (a relay would refuse it, and it must not hold up
// the lines after it). Incidents that decode but do not validate are sent
// anyway so that the relay's reason is logged.
func CheckLine(line []byte) error {
	if !utf8.Valid(line) {
		return errors.New("incident: not valid UTF-8")
	}
	_, err := incident.Decode(line)
	return err
}

// Stats returns the counters.
func (f *Forwarder) Stats() Stats {
	s := Stats{Delivered: f.delivered.Load(), Rejected: f.rejected.Load(), Failures: f.failures.Load()}
	if f.Reader != nil {
		s.Malformed = f.Reader.Malformed()
	}
	return s
}

// Run forwards until ctx ends. It returns nil when ctx ends, or an error
// when the cursor cannot be stored (the disk is gone: continuing would
// resend everything after a restart).
func (f *Forwarder) Run(ctx context.Context) error {
	if f.Backoff.Min <= 0 {
		f.Backoff.Min = 250 * time.Millisecond
	}
	if f.Backoff.Max <= 0 {
		f.Backoff.Max = 30 * time.Second
	}
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The cursor is written by a committer goroutine so that its fsyncs
	// overlap the next batch's round trip. It always writes the latest
	// acknowledged position (older ones are superseded, never reordered),
	// so a crash costs at most a redelivery of what was acked since the
	// last write, which the relay drops as repeats.
	c := newCommitter(f.Reader)
	defer c.stop()
	for {
		if err := c.failed(); err != nil {
			return fmt.Errorf("push %s: %w", f.Name, err)
		}
		b, err := f.Reader.Next(ctx, incident.MaxBatchIncidents)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("push %s: reading the journal: %w", f.Name, err)
		}
		if len(b.Lines) > 0 {
			msgs, ids := f.prepare(ctx, b.Lines, log)
			for i, m := range msgs {
				if err := f.deliver(ctx, m, ids[i], log); err != nil {
					return nil // ctx ended
				}
			}
		}
		c.commit(b.End)
	}
}

// committer writes cursor positions in the background, latest first.
type committer struct {
	r    *journal.Reader
	wake chan struct{} // capacity 1: a pending write covers later positions
	done chan struct{}

	mu      sync.Mutex
	next    journal.Position
	pending bool
	err     error
	quit    bool
}

func newCommitter(r *journal.Reader) *committer {
	c := &committer{r: r, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.loop()
	return c
}

func (c *committer) commit(p journal.Position) {
	c.mu.Lock()
	c.next, c.pending = p, true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *committer) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *committer) loop() {
	defer close(c.done)
	for range c.wake {
		c.mu.Lock()
		p, pending, quit := c.next, c.pending, c.quit
		c.pending = false
		c.mu.Unlock()
		if pending {
			if err := c.r.Commit(p); err != nil {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
			}
		}
		if quit {
			return
		}
	}
}

// stop writes the last position and waits for it.
func (c *committer) stop() {
	c.mu.Lock()
	c.quit = true
	c.mu.Unlock()
	c.wake <- struct{}{} // the loop drains wake, so this cannot block long
	<-c.done
}

// envelope is the room a batch message needs besides its incidents:
// {"type":"incidents","batch":N,"incidents":[...]} and the commas.
const envelope = 64

// prepare decodes, enriches and re-encodes the lines, and splits them into
// messages within the ingest limits (100 incidents, 256 KiB).
func (f *Forwarder) prepare(ctx context.Context, lines []journal.Line, log *slog.Logger) (msgs [][]json.RawMessage, ids [][]string) {
	ins := make([]*incident.Incident, 0, len(lines))
	raws := make([]json.RawMessage, 0, len(lines))
	for _, l := range lines {
		in, err := incident.Decode(l.Data)
		if err != nil {
			// CheckLine let it through, so this cannot happen; send the
			// line as it is and let the relay say what is wrong.
			raws = append(raws, append(json.RawMessage(nil), l.Data...))
			ins = append(ins, nil)
			continue
		}
		ins = append(ins, &in)
		raws = append(raws, append(json.RawMessage(nil), l.Data...))
	}
	if f.Enricher != nil {
		var valid []*incident.Incident
		for _, in := range ins {
			if in != nil && in.Validate() == nil {
				valid = append(valid, in)
			}
		}
		f.Enricher.Enrich(ctx, valid)
	}
	for i, in := range ins {
		if in == nil || in.Validate() != nil {
			continue // invalid as written: sent as is, the relay rejects it
		}
		if b, err := incident.Marshal(in); err == nil {
			raws[i] = b
		} else {
			log.Warn("push: re-encoding an enriched incident", "err", err)
		}
	}
	var cur []json.RawMessage
	var curIDs []string
	size := envelope
	for i, r := range raws {
		if len(cur) == incident.MaxBatchIncidents || len(cur) > 0 && size+len(r)+1 > incident.MaxMessageBytes {
			msgs, ids = append(msgs, cur), append(ids, curIDs)
			cur, curIDs, size = nil, nil, envelope
		}
		cur = append(cur, r)
		id := ""
		if ins[i] != nil {
			id = ins[i].ID
		}
		curIDs = append(curIDs, id)
		size += len(r) + 1
	}
	if len(cur) > 0 {
		msgs, ids = append(msgs, cur), append(ids, curIDs)
	}
	return msgs, ids
}

// deliver sends one message until it is acknowledged; it fails only when
// ctx ends.
func (f *Forwarder) deliver(ctx context.Context, msg []json.RawMessage, ids []string, log *slog.Logger) error {
	failures := 0
	for {
		ack, err := f.Sink.Deliver(ctx, msg)
		if err == nil {
			err = checkAck(ack, len(msg))
		}
		if err == nil {
			for _, r := range ack.Rejected {
				id := ""
				if r.Index >= 0 && r.Index < len(ids) {
					id = ids[r.Index]
				}
				log.Warn("push: relay rejected an incident, skipping it", "relay", f.Name,
					"id", incident.CleanText(id, 120), "reason", incident.CleanText(r.Error, 300))
			}
			f.rejected.Add(uint64(len(ack.Rejected)))
			f.delivered.Add(uint64(ack.Accepted))
			if f.Delivered != nil {
				f.Delivered(ack.Accepted)
			}
			if failures > 0 {
				log.Info("push: delivering again", "relay", f.Name, "after_failures", failures)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failures++
		f.failures.Add(1)
		wait := f.Backoff.wait(failures)
		// The first failure and then every tenth are logged: a relay down
		// for an hour gives a dozen lines, not thousands.
		if failures == 1 || failures%10 == 0 {
			log.Warn("push: delivery failed, retrying", "relay", f.Name, "err", err, "failures", failures, "retry_in", wait.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// checkAck refuses an ack that does not account for the batch: rejections
// out of range, or more incidents than were sent.
func checkAck(ack incident.Ack, n int) error {
	if ack.Accepted < 0 || ack.Accepted+len(ack.Rejected) > n {
		return fmt.Errorf("push: ack for %d incidents names %d accepted and %d rejected", n, ack.Accepted, len(ack.Rejected))
	}
	for _, r := range ack.Rejected {
		if r.Index < 0 || r.Index >= n {
			return errors.New("push: ack rejects an index outside the batch")
		}
	}
	return nil
}
