// Package push delivers the incidents journal to relays without losing or
// repeating anything: a Forwarder reads batches from a journal cursor
// (package journal), enriches them, hands them to a Sink (a relay over the
// ingest WebSocket, or the in-process relay) and advances the cursor only
// once the relay acknowledged the whole batch. Failed deliveries are retried
// forever with capped exponential backoff and jitter; incidents the relay
// rejects are logged with its reason and skipped, not retried.
//
// Delivery is at least once on the wire and exactly once in effect: each
// acknowledged batch is recorded in the reader's sent index before the
// cursor moves, so a crash between the ack and the cursor write, an
// unreadable cursor or a replaced journal file skip what was sent instead
// of sending it again; what is left (a crash between the ack and the index
// write) the relay drops as repeats (same id, nothing newer).
//
// A destination may acknowledge before its copy is durable: the embedded
// relay of `run --serve` syncs its store in the background, so its ack means
// "in the page cache". Forwarder.AckDurableAfter says how long after an ack
// the copy is on disk. For such a destination the stored cursor (and the
// sent index) trail the acknowledged position by that long: the cursor file
// holds the position acknowledged at least AckDurableAfter ago, so a power
// cut that loses the destination's last writes is followed by a start that
// sends them again from the cursor (the journal being the durable record),
// and the destination drops what it did keep as repeats. Once the
// destination is closed and synced, Synced stores the last acknowledged
// position.
//
// A cursor that cannot be written (a full disk) does not stop the
// forwarder: it keeps retrying the write, says so once a minute, and keeps
// delivering until maxUnpersisted acknowledged incidents are not yet
// covered by a stored cursor; then it waits for the disk, so that a
// restart in the middle resends no more than the relay still remembers.
package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
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
// promptly (package enrich bounds its remote lookups). It reports which
// incidents it changed (changed[i] for ins[i]; a shorter or nil slice
// means the rest are unchanged): only those are encoded again, the others
// go out as the bytes the detection stage wrote.
type Enricher interface {
	Enrich(ctx context.Context, ins []*incident.Incident) (changed []bool)
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

// maxUnpersisted is how many acknowledged incidents the forwarder may
// deliver beyond the last cursor it could store. 1,000 is a tenth of the
// relay's default de-duplication ring (10,000): a restart while the disk is
// full resends at most that many, and the relay drops them all as repeats.
const maxUnpersisted = 1000

// commitRetry is how often a cursor write that failed is tried again: a
// full disk is freed by a person or a cleanup job, so a few seconds is
// prompt, and a failed attempt costs one small write.
const commitRetry = 2 * time.Second

// reportEvery spaces the log lines about a cursor that cannot be stored.
const reportEvery = time.Minute

// Stats are a Forwarder's counters.
type Stats struct {
	Delivered uint64 // incidents acknowledged as accepted
	Rejected  uint64 // incidents the relay refused (logged, skipped)
	Failures  uint64 // failed delivery attempts (retried)
	Malformed uint64 // journal lines that are not incidents (skipped)
	Torn      uint64 // torn journal lines (a crash or full disk mid-write; skipped)
	Resent    uint64 // lines skipped because the sent index had them
	// CommitFailures counts failed cursor writes (retried); CursorStuck
	// is true while the latest one failed.
	CommitFailures uint64
	CursorStuck    bool
	// IndexFailures counts sent-index writes that failed (a full disk):
	// each may cost a resend later, which the relay drops.
	IndexFailures uint64
	// Connected is true while the last delivery to the relay succeeded;
	// LastAck is when the relay last acknowledged a batch (zero: never).
	Connected bool
	LastAck   time.Time
	// AuthKnown is true once the relay answered or refused (the probe at
	// start or a delivery); TokenRejected is true while the relay refuses
	// the token (ErrTokenRejected); LastError is the last attempt's error,
	// "" after a success.
	AuthKnown     bool
	TokenRejected bool
	LastError     string
	// URL is the relay URL in use (or tried next), URLIndex its place in
	// the destination's list of URLCount, Failovers the moves from one URL
	// to the next; all zero for a sink without URLs (the embedded relay).
	URL       string
	URLIndex  int
	URLCount  int
	Failovers uint64
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
	// AckDurableAfter is how long after its ack the destination's copy is
	// on disk: the cursor and the sent index record a batch only that long
	// after its ack (see the package doc). 0 (remote relays, which fsync
	// before they acknowledge) records it at once.
	AckDurableAfter time.Duration
	// Host and TokenID name this sensor and its token in the ERROR line
	// about a rejected token (optional): the sensor's host setting and the
	// first hex digits of the token's SHA-256 (WS.TokenID), which the
	// relay's token file holds whole.
	Host, TokenID string

	delivered, rejected, failures, malformed atomic.Uint64
	// up is 1 while the last delivery attempt succeeded (the relay is
	// reachable and takes our token), else 0 (also before the first one).
	// lastAck is the time of the last ack (Unix ns).
	up      atomic.Int32
	lastAck atomic.Int64

	c atomic.Pointer[committer] // set by Run, read by Stats
	h health
}

// CheckLine is the journal.ReaderOptions.Check for incidents journals: a
// line that is not valid UTF-8, over incident.MaxBytes or not one JSON
// object is malformed and skipped (a relay would refuse it, and it must
// not hold up the lines after it). It only scans the line (json.Valid, no
// allocation): the forwarder decodes each line once, in prepare, and skips
// the few objects that are not incidents there, counting them as
// malformed too. Incidents that decode but do not validate are sent
// anyway so that the relay's reason is logged.
func CheckLine(line []byte) error {
	if !utf8.Valid(line) {
		return errors.New("incident: not valid UTF-8")
	}
	if len(line) > incident.MaxBytes {
		return fmt.Errorf("incident: %d bytes, over the %d byte limit", len(line), incident.MaxBytes)
	}
	if len(line) == 0 || line[0] != '{' || !json.Valid(line) {
		return errors.New("incident: not one JSON object")
	}
	return nil
}

// Stats returns the counters.
func (f *Forwarder) Stats() Stats {
	s := Stats{Delivered: f.delivered.Load(), Rejected: f.rejected.Load(), Failures: f.failures.Load(),
		Malformed: f.malformed.Load(), Connected: f.up.Load() == 1}
	if t := f.lastAck.Load(); t != 0 {
		s.LastAck = time.Unix(0, t)
	}
	f.h.mu.Lock()
	s.AuthKnown, s.TokenRejected, s.LastError = f.h.known, f.h.rejected, f.h.lastErr
	f.h.mu.Unlock()
	if e, ok := f.Sink.(Endpoint); ok {
		s.URL, s.URLIndex, s.URLCount = e.URL()
		s.Failovers = e.Failovers()
	}
	if f.Reader != nil {
		s.Malformed += f.Reader.Malformed()
		s.Torn = f.Reader.Torn()
		s.Resent = f.Reader.Resent()
	}
	if c := f.c.Load(); c != nil {
		c.mu.Lock()
		s.CommitFailures, s.CursorStuck, s.IndexFailures = c.commitFailures, c.err != nil, c.indexFailures
		c.mu.Unlock()
	}
	return s
}

// Run forwards until ctx ends, and returns nil then. A cursor that cannot
// be stored is retried, not fatal (see the package doc).
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
	// Connect at start: a wrong token or an unreachable relay is
	// reported now, not at the first incident.
	if p, ok := f.Sink.(Prober); ok {
		if f.probe(ctx, p, log) != nil {
			return nil // ctx ended
		}
	}
	c := newCommitter(f.Reader, f.Name, f.AckDurableAfter, log)
	f.c.Store(c)
	defer c.stop()
	for {
		// Stop advancing what cannot be persisted: wait for the cursor
		// once too much was delivered beyond the stored one.
		// A healthy committer stores within milliseconds and wakes us
		// (stored); a failing one is retried every commitRetry.
		for c.unpersisted() >= maxUnpersisted {
			t := time.NewTimer(commitRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-c.stored:
				t.Stop()
			case <-t.C:
			}
		}
		b, err := f.Reader.Next(ctx, incident.MaxBatchIncidents)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("push %s: reading the journal: %w", f.Name, err)
		}
		var sent []uint64
		file := ""
		if len(b.Lines) > 0 {
			// Hashes now: the lines' bytes are reused by the next Next.
			file, sent = b.Lines[0].File, make([]uint64, len(b.Lines))
			for i, l := range b.Lines {
				sent[i] = l.Hash
			}
			msgs, ids := f.prepare(ctx, b.Lines, log)
			for i, m := range msgs {
				if err := f.deliver(ctx, m, ids[i], log); err != nil {
					return nil // ctx ended
				}
			}
		}
		c.commit(b.End, file, sent)
	}
}

// Synced stores the last acknowledged position and records its lines as
// sent, without waiting AckDurableAfter: call it once Run returned and the
// destination was closed with its store synced (a clean shutdown). Without
// it, the next start sends the last AckDurableAfter of incidents again,
// which the destination drops as repeats. It does nothing for a forwarder
// whose acks are durable at once (Run stored everything on its way out).
func (f *Forwarder) Synced() error {
	c := f.c.Load()
	if c == nil {
		return nil
	}
	p, pending, _, behind := c.drain(true)
	if !pending {
		return nil
	}
	c.store(p, behind)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// committer writes cursor positions in the background, latest first, after
// recording the delivered lines in the sent index. A failed cursor write is
// retried every commitRetry and reported once a minute.
//
// With a durability delay, acknowledged positions wait in trail until the
// delay passed; only then do they become the position to store.
type committer struct {
	r     *journal.Reader
	name  string
	log   *slog.Logger
	delay time.Duration
	wake  chan struct{} // capacity 1: a pending write covers later positions
	done  chan struct{}
	// stored is poked (capacity 1) after each cursor write that
	// succeeded, for a forwarder waiting on unpersisted.
	stored chan struct{}

	mu             sync.Mutex
	next           journal.Position
	sent           []sentBatch // recorded before next is written
	pending        bool
	quit           bool
	behind         int   // lines acknowledged since the last stored cursor
	err            error // the last cursor write failed with this
	reportAt       time.Time
	commitFailures uint64
	indexFailures  uint64
	retry          *time.Timer
	// trail holds acknowledged batches not yet durable at the
	// destination, oldest first; ripe moves them out once their time
	// came. It holds the delay's worth of batches (one entry and 8 bytes
	// a line each: about 1 MiB for 3 s at 40,000 incidents/s), and is not
	// counted in behind: a restart resends it, which the destination's
	// de-duplication drops, so it needs no cap of its own.
	trail []acked
	ripe  *time.Timer
}

// acked is a batch acknowledged at a time, waiting for the destination's
// sync.
type acked struct {
	at   time.Time
	p    journal.Position
	sent sentBatch
}

type sentBatch struct {
	file   string
	hashes []uint64
}

func newCommitter(r *journal.Reader, name string, delay time.Duration, log *slog.Logger) *committer {
	c := &committer{r: r, name: name, log: log, delay: max(delay, 0), wake: make(chan struct{}, 1),
		done: make(chan struct{}), stored: make(chan struct{}, 1)}
	go c.loop()
	return c
}

func (c *committer) commit(p journal.Position, file string, hashes []uint64) {
	c.mu.Lock()
	if c.delay > 0 {
		c.trail = append(c.trail, acked{at: time.Now(), p: p, sent: sentBatch{file, hashes}})
		if c.ripe == nil && !c.quit {
			c.ripe = time.AfterFunc(c.delay, c.ripen)
		}
		c.mu.Unlock()
		return
	}
	c.take(p, file, hashes)
	c.mu.Unlock()
	c.poke()
}

// take makes p the position to store next. Called with c.mu held.
func (c *committer) take(p journal.Position, file string, hashes []uint64) {
	c.next, c.pending = p, true
	if len(hashes) > 0 {
		c.sent = append(c.sent, sentBatch{file, hashes})
		c.behind += len(hashes)
	}
}

// settle takes the trailing batches acknowledged at or before cutoff (all
// of them for the zero time). Called with c.mu held.
func (c *committer) settle(cutoff time.Time) (took bool) {
	n := 0
	for ; n < len(c.trail) && (cutoff.IsZero() || !c.trail[n].at.After(cutoff)); n++ {
		a := c.trail[n]
		c.take(a.p, a.sent.file, a.sent.hashes)
	}
	c.trail = append(c.trail[:0], c.trail[n:]...)
	return n > 0
}

// ripen stores what became durable and waits for the next batch's time.
func (c *committer) ripen() {
	c.mu.Lock()
	c.ripe = nil
	took := c.settle(time.Now().Add(-c.delay))
	if len(c.trail) > 0 && !c.quit {
		c.ripe = time.AfterFunc(time.Until(c.trail[0].at.Add(c.delay)), c.ripen)
	}
	c.mu.Unlock()
	if took {
		c.poke()
	}
}

func (c *committer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// unpersisted is how many acknowledged lines no stored cursor covers yet:
// a few batches while the committer writes, growing while the disk
// refuses the cursor.
func (c *committer) unpersisted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.behind
}

// drain takes what is to be written: it records the delivered lines in the
// sent index (a failed write is counted; it costs at most a resend, which
// the relay drops) and returns the position to store, if one is pending,
// with the lines it covers. all also takes the batches still trailing
// (see Synced).
func (c *committer) drain(all bool) (p journal.Position, pending, quit bool, behind int) {
	c.mu.Lock()
	if all {
		c.settle(time.Time{})
	}
	p, pending, quit, sent, behind := c.next, c.pending, c.quit, c.sent, c.behind
	c.pending, c.sent = false, nil
	c.mu.Unlock()
	for _, b := range sent {
		if err := c.r.MarkSent(b.file, b.hashes); err != nil {
			c.mu.Lock()
			c.indexFailures++
			c.mu.Unlock()
		}
	}
	return p, pending, quit, behind
}

func (c *committer) loop() {
	defer close(c.done)
	for range c.wake {
		p, pending, quit, behind := c.drain(false)
		if pending {
			c.store(p, behind)
		}
		if quit {
			return
		}
	}
}

// store writes p, or records the failure and schedules a retry.
func (c *committer) store(p journal.Position, behind int) {
	err := c.r.Commit(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		if c.err != nil {
			c.log.Info("push: cursor stored again", "relay", c.name, "failed_writes", c.commitFailures)
		}
		c.err = nil
		c.behind -= behind
		select {
		case c.stored <- struct{}{}:
		default:
		}
		return
	}
	c.commitFailures++
	first := c.err == nil
	c.err = err
	if !c.pending {
		c.next, c.pending = p, true // try this position again
	}
	now := time.Now()
	if first || now.Sub(c.reportAt) >= reportEvery {
		c.reportAt = now
		// The bare cause: the path is its own field, and wrapping would
		// repeat the prefixes of every layer.
		var pe *os.PathError
		cause := err
		if errors.As(err, &pe) {
			cause = pe.Err
		}
		dir := filepath.Dir(p.File)
		if pe != nil {
			dir = filepath.Dir(pe.Path)
		}
		c.log.Warn("push: cannot store the cursor; delivering on and retrying", "relay", c.name,
			"dir", dir, "free_bytes", jsonl.FreeBytes(dir), "err", cause, "unstored", c.behind)
	}
	if c.retry == nil && !c.quit {
		c.retry = time.AfterFunc(commitRetry, func() {
			c.mu.Lock()
			c.retry = nil
			c.mu.Unlock()
			c.poke()
		})
	}
}

// stop writes the last position and waits for it.
func (c *committer) stop() {
	c.mu.Lock()
	c.quit = true
	if c.retry != nil {
		c.retry.Stop()
	}
	if c.ripe != nil {
		c.ripe.Stop()
		c.ripe = nil
	}
	// What is durable by now is stored on the way out; the rest waits for
	// Synced, or is sent again at the next start.
	if c.delay > 0 {
		c.settle(time.Now().Add(-c.delay))
	}
	c.mu.Unlock()
	// Not a blocking send: a retry timer that fired meanwhile may hold
	// wake's one slot while the loop returns on an earlier wake, and the
	// send would wait for ever. A poke that finds the slot taken is not
	// needed: the wake in it is read after quit was set.
	c.poke()
	<-c.done
}

// envelope is the room a batch message needs besides its incidents:
// {"type":"incidents","batch":N,"incidents":[...]} and the commas.
const envelope = 64

// item is one incident on its way from the journal to a relay: the struct
// (for enrichment, ids and logs) and its bytes, which are the journal
// line itself until enrichment changes the struct, and are encoded again
// only then. This is the sensor's "one encode per trust boundary": the
// detection stage encoded the incident once, and push adds at most one
// re-encode for what enrichment added. Mercure's serializedUpdate carries
// an update the same way.
type item struct {
	in  *incident.Incident // nil when the line is not a valid incident
	raw json.RawMessage
	id  string // for the rejection log; "" when unknown
}

// prepare decodes each line once, validates it once, enriches the valid
// ones, re-encodes only those enrichment changed, and splits the lines into
// messages within the ingest limits (100 incidents, 256 KiB). A line that
// does not decode as an incident is counted as malformed and skipped; one
// that decodes but does not validate is sent as written so that the
// relay's reason is logged.
func (f *Forwarder) prepare(ctx context.Context, lines []journal.Line, log *slog.Logger) (msgs [][]json.RawMessage, ids [][]string) {
	items := make([]item, 0, len(lines))
	var valid []*incident.Incident
	for _, l := range lines {
		// The line's bytes are reused by the next Next: keep a copy.
		raw := append(json.RawMessage(nil), l.Data...)
		in, err := incident.Decode(raw)
		if err != nil {
			f.malformed.Add(1)
			log.Warn("push: skipping a journal line that is not an incident", "relay", f.Name,
				"file", l.File, "err", incident.CleanText(err.Error(), 200))
			continue
		}
		it := item{raw: raw, id: in.ID}
		if in.Validate() == nil {
			it.in = &in
			valid = append(valid, &in)
		}
		items = append(items, it)
	}
	if f.Enricher != nil && len(valid) > 0 {
		changed := f.Enricher.Enrich(ctx, valid)
		k := 0
		for i := range items {
			it := &items[i]
			if it.in == nil {
				continue // invalid as written: sent as is, the relay rejects it
			}
			if k < len(changed) && changed[k] {
				if b, err := encode(it.in); err == nil {
					it.raw = b
				} else {
					// The enriched copy is too big or does not encode:
					// the incident goes out as the detector wrote it.
					log.Warn("push: enriched incident not re-encoded; sending it as journaled", "id", it.id, "err", err)
				}
			}
			k++
		}
	}
	var cur []json.RawMessage
	var curIDs []string
	size := envelope
	for _, it := range items {
		if len(cur) == incident.MaxBatchIncidents || len(cur) > 0 && size+len(it.raw)+1 > incident.MaxMessageBytes {
			msgs, ids = append(msgs, cur), append(ids, curIDs)
			cur, curIDs, size = nil, nil, envelope
		}
		cur = append(cur, it.raw)
		curIDs = append(curIDs, it.id)
		size += len(it.raw) + 1
	}
	if len(cur) > 0 {
		msgs, ids = append(msgs, cur), append(ids, curIDs)
	}
	return msgs, ids
}

// encode is push's one re-encode, with the size checked on its bytes.
func encode(in *incident.Incident) (json.RawMessage, error) {
	b, err := incident.Marshal(in)
	if err == nil {
		err = incident.CheckSize(b)
	}
	return b, err
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
			f.noteSuccess(failures, log)
			f.lastAck.Store(time.Now().UnixNano())
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
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failures++
		if err := f.backOff(ctx, err, failures, log); err != nil {
			return err
		}
	}
}

// backOff notes the failures-th failure in a row and waits the backoff
// before the next try; it returns ctx's error if ctx ends first.
func (f *Forwarder) backOff(ctx context.Context, err error, failures int, log *slog.Logger) error {
	wait := f.Backoff.wait(failures)
	if s, ok := f.Sink.(scheduler); ok {
		wait = s.retryIn(f.Backoff)
	}
	f.noteFailure(err, failures, wait, log)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// scheduler is a Sink with a retry schedule of its own: WS keeps a backoff
// per URL and, after a failover, the next URL may be tried at once.
type scheduler interface {
	retryIn(b Backoff) time.Duration
}

// Endpoint is a Sink that reaches its destination at one of several URLs
// (WS): the metrics and /healthz say which one is in use.
type Endpoint interface {
	URL() (url string, index, count int)
	Failovers() uint64
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
