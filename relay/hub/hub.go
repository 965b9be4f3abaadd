// Package hub fans pre-encoded Server-Sent Events frames out to many
// subscribers with a small fixed pool of writer goroutines.
//
// A subscriber is not a goroutine: it is a Sink (normally a raw TCP socket
// taken over from net/http) plus a cursor into the hub's shared ring of
// frames. Each frame is encoded once and its bytes are shared by every
// subscriber. Writers hand a subscriber everything it has not received yet in
// one non-blocking writev; what the socket cannot take stays pending as a
// slice of the shared bytes. A subscriber that stays behind (its queue of
// unsent live frames exceeds Options.MaxQueue, it has had unsent data for
// longer than Options.WriteTimeout, or its next frame already left the ring)
// is cut off, never waited on. That keeps the relay's memory per subscriber
// at a few hundred bytes plus the kernel's socket buffers, and one slow
// client never delays anyone else.
//
// Resume is gap-free by construction: a subscriber is registered with the
// sequence number it wants next, and frames are only ever read from the ring,
// so nothing published between "look up the resume point" and "start
// delivering" can be lost or sent twice. A resume point further back than
// Options.ResumeWindow frames (or older than the ring) is not replayed in
// full: the subscriber gets a reset event (see ResetFrame) and the recent
// window.
//
// On Linux the hub also watches every raw socket for the peer's close
// (EPOLLRDHUP on one epoll instance for all subscribers, one goroutine), so
// a subscriber that goes away is removed at once rather than at the next
// failed write, and whatever its owner counts (per-address slots) is freed
// immediately.
package hub

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Frame is one encoded SSE event. Data is shared by every subscriber and must
// not be changed after Publish.
type Frame struct {
	Seq  uint64
	Data []byte
	idx  uint64    // position in the hub's publish order, set by Publish
	at   time.Time // when Publish took it, for OnFanout
}

// Reason says why a subscriber left.
type Reason int

// Reasons a subscriber is removed.
const (
	// ReasonError: a write failed (the client went away).
	ReasonError Reason = iota
	// ReasonSlow: the subscriber could not keep up and was cut off.
	ReasonSlow
	// ReasonShutdown: the hub was closed.
	ReasonShutdown
	// ReasonClosed: the subscriber was closed by its owner (Sub.Close).
	ReasonClosed
)

func (r Reason) String() string {
	switch r {
	case ReasonError:
		return "error"
	case ReasonSlow:
		return "slow"
	case ReasonShutdown:
		return "shutdown"
	case ReasonClosed:
		return "closed"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Heartbeat is the comment frame written to idle subscribers so proxies do
// not close quiet streams.
var Heartbeat = []byte(": keep-alive\n\n")

// ErrClosed is returned by Subscribe and Publish after Close.
var ErrClosed = errors.New("hub: closed")

// Options configure a Hub. Zero values take the documented defaults.
type Options struct {
	// RingSize is how many recent frames are kept for resume (Last-Event-ID)
	// and for subscribers that are catching up. Default 10,000: at about
	// 1 KiB per incident that is ~10 MiB shared by all subscribers.
	RingSize int
	// Writers is the number of writer goroutines; subscribers are spread
	// over them. Default max(2, GOMAXPROCS): writes are non-blocking
	// syscalls, so more goroutines than cores only adds scheduling.
	Writers int
	// MaxQueue is how many live frames (published after the subscriber
	// joined) may wait unsent for one subscriber before it is cut off.
	// Default 1024 (about 1 MiB at 1 KiB per incident): room for several full
	// ingest batches of 100 arriving at once on a slow link. The frames
	// themselves live in the shared ring, so the queue costs the relay no
	// memory per subscriber; the bound is about not serving stale data.
	MaxQueue int
	// WriteTimeout cuts off a subscriber that has had unsent data for this
	// long without catching up. Default 5 s: far more than any working
	// client needs to drain a burst, short enough that a stalled socket is
	// not served for long.
	WriteTimeout time.Duration
	// HeartbeatInterval is how often an idle subscriber gets a comment line.
	// Default 15 s, the longest gap the SSE contract allows.
	HeartbeatInterval time.Duration
	// RetryInterval is how soon a subscriber whose socket was full is tried
	// again. Default 20 ms: short against the 200 ms latency budget, long
	// enough that a few blocked sockets do not make a writer spin.
	RetryInterval time.Duration
	// OnSent, when set, is called after each writer pass with the number of
	// frames fully handed to sockets (for metrics).
	OnSent func(frames int)
	// OnFanout, when set, is called once per frame and writer after the
	// writer has handed the frame to every one of its subscribers that
	// could take it, with the time since Publish (for metrics).
	OnFanout func(d time.Duration)
	// ResumeWindow is the most frames a resuming subscriber is replayed.
	// One whose resume point is further back (or older than the ring, so
	// that frames are missing) gets ResetFrame and then the newest
	// ResumeWindow frames. Default 500, what /api/live-feed returns at
	// most: anyone may ask, and replaying a 10,000-frame ring of 16 KiB
	// incidents would be 160 MiB per request.
	ResumeWindow int
	// OnReset, when set, is called for each subscriber that got a reset.
	OnReset func()
}

func (o *Options) defaults() {
	if o.RingSize <= 0 {
		o.RingSize = 10000
	}
	if o.Writers <= 0 {
		o.Writers = max(2, runtime.GOMAXPROCS(0))
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 1024
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 15 * time.Second
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 20 * time.Millisecond
	}
	if o.ResumeWindow <= 0 {
		o.ResumeWindow = 500
	}
}

// Hub holds the frame ring and the subscribers.
type Hub struct {
	opts Options

	mu      sync.Mutex // serialises Publish and resume look-ups
	lastSeq uint64     // Seq of the newest frame
	evicted uint64     // Seq of the newest frame that left the ring
	ring    []atomic.Pointer[Frame]
	head    atomic.Uint64 // number of frames published: the next idx

	shards []*shard
	poll   *poller       // watches raw sockets for the peer's close; nil if unavailable
	rr     atomic.Uint64 // round robin over shards
	count  atomic.Int64
	closed atomic.Bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// New starts a hub and its writer goroutines. Stop it with Close.
func New(opts Options) *Hub {
	opts.defaults()
	h := &Hub{
		opts: opts,
		ring: make([]atomic.Pointer[Frame], opts.RingSize),
		done: make(chan struct{}),
	}
	h.poll = newPoller()
	for range opts.Writers {
		sh := &shard{h: h, wake: make(chan struct{}, 1)}
		h.shards = append(h.shards, sh)
		h.wg.Add(1)
		go sh.run()
	}
	return h
}

// Len returns the number of subscribers.
func (h *Hub) Len() int { return int(h.count.Load()) }

// LastSeq returns the sequence number of the newest published frame (0 if
// none).
func (h *Hub) LastSeq() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastSeq
}

// Evicted returns the sequence number of the newest frame that left the
// ring (0 if none did): a resume point before it cannot be served from
// the ring alone.
func (h *Hub) Evicted() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.evicted
}

// Publish appends frames to the ring and wakes the writers. Sequence numbers
// must increase (gaps are allowed). Publish never blocks on a subscriber.
func (h *Hub) Publish(frames ...*Frame) error {
	return h.publish(time.Now(), frames)
}

// Preload is Publish for frames replayed from storage at start-up: they
// are not counted by OnFanout.
func (h *Hub) Preload(frames ...*Frame) error {
	return h.publish(time.Time{}, frames)
}

func (h *Hub) publish(now time.Time, frames []*Frame) error {
	if h.closed.Load() {
		return ErrClosed
	}
	h.mu.Lock()
	head := h.head.Load()
	for _, f := range frames {
		f.at = now
		if f.Seq <= h.lastSeq {
			h.mu.Unlock()
			return fmt.Errorf("hub: sequence %d after %d", f.Seq, h.lastSeq)
		}
		f.idx = head
		slot := &h.ring[head%uint64(len(h.ring))]
		if old := slot.Load(); old != nil {
			h.evicted = old.Seq
		}
		slot.Store(f)
		h.lastSeq = f.Seq
		head++
	}
	h.head.Store(head)
	h.mu.Unlock()
	for _, sh := range h.shards {
		sh.poke()
	}
	return nil
}

// slot returns the frame at publish index idx, or nil when it left the ring.
func (h *Hub) slot(idx uint64) *Frame {
	f := h.ring[idx%uint64(len(h.ring))].Load()
	if f == nil || f.idx != idx {
		return nil
	}
	return f
}

// startIdx returns the publish index of the first frame with Seq > after,
// or the oldest frame still in the ring when after is older than that.
// Called with h.mu held.
func (h *Hub) startIdx(after uint64) uint64 {
	head := h.head.Load()
	n := min(head, uint64(len(h.ring)))
	oldest := head - n
	i := sort.Search(int(n), func(i int) bool {
		return h.ring[(oldest+uint64(i))%uint64(len(h.ring))].Load().Seq > after
	})
	return oldest + uint64(i)
}

// resumeIdx is startIdx bounded by ResumeWindow. reset is true when frames
// after the resume point are skipped: more than ResumeWindow of them, or
// some already left the ring. Called with h.mu held.
func (h *Hub) resumeIdx(after uint64) (idx uint64, reset bool) {
	head := h.head.Load()
	idx = h.startIdx(after)
	if w := uint64(h.opts.ResumeWindow); head-idx > w {
		return head - w, true
	}
	// A frame after the resume point already left the ring.
	return idx, after < h.evicted && idx < head
}

// ResetFrame is the event a subscriber gets before the recent window when
// its resume point is too old (see Options.ResumeWindow):
//
//	id: <next-1>
//	event: reset
//	data: {"reason":"too_old","last_event_id":<requested>,"next":<next>}
//
// requested is the Last-Event-ID it asked to resume after; next is the
// sequence number of the first frame that follows (frames between the two
// are not sent). The id makes a reconnect right after the reset resume
// from the window instead of asking again for the old point. A client
// treats what follows as the current state (the map keeps its markers,
// which expire as usual, and fetches /api/stats again).
func ResetFrame(requested, next uint64) []byte {
	b := make([]byte, 0, 96)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, next-1, 10)
	b = append(b, "\nevent: reset\ndata: {\"reason\":\"too_old\",\"last_event_id\":"...)
	b = strconv.AppendUint(b, requested, 10)
	b = append(b, `,"next":`...)
	b = strconv.AppendUint(b, next, 10)
	b = append(b, "}\n\n"...)
	return b
}

// Sub is one subscriber.
type Sub struct {
	sink    Sink
	onClose func(Reason)
	shard   *shard
	watch   uint32 // poller id; 0 when not watched

	gone atomic.Bool // the peer closed its side (set by the poller)

	// Owned by the shard's writer goroutine.
	pend  []byte    // unsent tail of a frame already counted in next
	next  uint64    // publish index of the next frame to send
	base  uint64    // publish index at subscribe: earlier frames are catch-up
	since time.Time // when unsent data was first left behind; zero when caught up
	dead  bool

	closeReq atomic.Bool
	once     sync.Once
}

// Subscribe registers a subscriber. first is written before any frame (the
// HTTP response head and the SSE retry line). With resume set, the
// subscriber first receives every frame still in the ring whose Seq is
// greater than after, then live frames; otherwise only live frames. When
// that would be more than Options.ResumeWindow frames, or some are no longer
// in the ring, it receives ResetFrame and the newest ResumeWindow frames
// instead. onClose, if not nil, is called once when the subscriber is
// removed, after its sink was closed.
func (h *Hub) Subscribe(sink Sink, first []byte, resume bool, after uint64, onClose func(Reason)) (*Sub, error) {
	// The shard is chosen first: the poller may read it as soon as the
	// subscriber is watched.
	sh := h.shards[h.rr.Add(1)%uint64(len(h.shards))]
	s := &Sub{sink: sink, onClose: onClose, pend: first, shard: sh}
	if h.poll != nil {
		// Before the subscriber is visible to a writer: the poller may
		// mark it gone at once (the peer already left), which the
		// writer sees on its first pass.
		h.poll.watch(s)
	}
	h.mu.Lock()
	if h.closed.Load() {
		h.mu.Unlock()
		if h.poll != nil {
			h.poll.unwatch(s)
		}
		return nil, ErrClosed
	}
	s.base = h.head.Load()
	s.next = s.base
	reset := false
	if resume {
		s.next, reset = h.resumeIdx(after)
		if reset {
			next := h.slot(s.next).Seq
			s.pend = append(append(make([]byte, 0, len(first)+96), first...), ResetFrame(after, next)...)
		}
	}
	sh.mu.Lock()
	sh.subs = append(sh.subs, s)
	sh.mu.Unlock()
	h.count.Add(1)
	h.mu.Unlock()
	sh.poke()
	if reset && h.opts.OnReset != nil {
		h.opts.OnReset()
	}
	return s, nil
}

// Close asks the hub to remove the subscriber; its writer closes the sink.
func (s *Sub) Close() {
	s.closeReq.Store(true)
	s.shard.poke()
}

// Close stops the writers and closes every subscriber's sink.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed.Swap(true) {
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	close(h.done)
	if h.poll != nil {
		h.poll.close()
	}
	h.wg.Wait()
	for _, sh := range h.shards {
		sh.mu.Lock()
		subs := sh.subs
		sh.subs = nil
		sh.mu.Unlock()
		for _, s := range subs {
			h.remove(s, ReasonShutdown)
		}
	}
	return nil
}

func (h *Hub) remove(s *Sub, r Reason) {
	s.once.Do(func() {
		s.dead = true
		if h.poll != nil {
			h.poll.unwatch(s)
		}
		if a, ok := s.sink.(aborter); ok && r == ReasonSlow {
			// Cut off with data still unsent: reset the connection so
			// the kernel drops that data now instead of retrying it
			// to a client that is not reading.
			_ = a.abort()
		} else {
			_ = s.sink.Close()
		}
		h.count.Add(-1)
		if s.onClose != nil {
			s.onClose(r)
		}
	})
}

// shard is one writer goroutine and its subscribers.
type shard struct {
	h    *Hub
	wake chan struct{} // capacity 1: pokes coalesce, none is lost

	mu   sync.Mutex
	subs []*Sub

	scratch []*Sub
	iov     [][]byte
	done    uint64 // frames below this publish index were fanned out
}

func (sh *shard) poke() {
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

func (sh *shard) run() {
	defer sh.h.wg.Done()
	hb := time.NewTicker(sh.h.opts.HeartbeatInterval)
	defer hb.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var lastStart, lastEnd time.Time
	for {
		heartbeat := false
		select {
		case <-sh.h.done:
			return
		case <-sh.wake:
		case <-retry.C:
		case <-hb.C:
			heartbeat = true
		}
		// Coalesce: when a pass is long (thousands of subscribers), start
		// the next one no sooner than a pass's length after the last
		// ended, so that frames published meanwhile go out together, one
		// writev per subscriber for several frames instead of one each.
		// The writes are the relay's whole cost; with few subscribers
		// passes take microseconds and nothing waits. Capped at
		// maxCoalesce to stay well inside the 200 ms latency budget.
		if gap := min(lastEnd.Sub(lastStart), maxCoalesce); gap > 0 {
			if wait := gap - time.Since(lastEnd); wait > 0 {
				select {
				case <-sh.h.done:
					return
				case <-time.After(wait):
				}
			}
		}
		lastStart = time.Now()
		pending := sh.pass(lastStart, heartbeat)
		lastEnd = time.Now()
		if pending > 0 {
			retry.Reset(sh.h.opts.RetryInterval)
		}
	}
}

// maxCoalesce bounds how long a writer waits to gather frames before a
// pass (see shard.run).
const maxCoalesce = 40 * time.Millisecond

// maxIov bounds one writev call (the kernel allows 1024 buffers).
const maxIov = 64

// maxRounds bounds how many writev calls one subscriber gets per pass, so a
// subscriber catching up on thousands of frames does not delay the others
// of its shard for long; it continues on the next pass.
const maxRounds = 8

// pass serves every subscriber of the shard once and returns how many still
// have unsent data.
func (sh *shard) pass(now time.Time, heartbeat bool) (pending int) {
	h := sh.h
	sh.mu.Lock()
	subs := append(sh.scratch[:0], sh.subs...)
	sh.mu.Unlock()
	head := h.head.Load()
	sent, died := 0, 0
	for _, s := range subs {
		if s.closeReq.Load() {
			h.remove(s, ReasonClosed)
			died++
			continue
		}
		if s.gone.Load() {
			h.remove(s, ReasonError)
			died++
			continue
		}
		n, more, reason, ok := sh.serve(s, head, now, heartbeat)
		sent += n
		switch {
		case !ok:
			h.remove(s, reason)
			died++
		case more:
			pending++
		}
	}
	clear(subs)
	sh.scratch = subs[:0]
	if died > 0 {
		sh.mu.Lock()
		live := sh.subs[:0]
		for _, s := range sh.subs {
			if !s.dead {
				live = append(live, s)
			}
		}
		clear(sh.subs[len(live):])
		sh.subs = live
		sh.mu.Unlock()
	}
	if sent > 0 && h.opts.OnSent != nil {
		h.opts.OnSent(sent)
	}
	if h.opts.OnFanout != nil && head > sh.done {
		end := time.Now()
		for idx := max(sh.done, head-min(head, uint64(len(h.ring)))); idx < head; idx++ {
			if f := h.slot(idx); f != nil && !f.at.IsZero() {
				h.opts.OnFanout(end.Sub(f.at))
			}
		}
	}
	sh.done = head
	return pending
}

// serve writes what s has not received. It returns the frames handed to the
// socket, whether data is left, and ok=false with a reason when s must be
// cut off.
func (sh *shard) serve(s *Sub, head uint64, now time.Time, heartbeat bool) (sent int, more bool, reason Reason, ok bool) {
	h := sh.h
	blocked := false
	for round := 0; round < maxRounds && !blocked; round++ {
		iov := sh.iov[:0]
		pendIn := len(s.pend) > 0
		if pendIn {
			iov = append(iov, s.pend)
		}
		idx := s.next
		for idx < head && len(iov) < maxIov {
			f := h.slot(idx)
			if f == nil {
				// Its next frame was overwritten: it cannot be served
				// without a gap. It reconnects and resumes from the ring.
				return sent, false, ReasonSlow, false
			}
			iov = append(iov, f.Data)
			idx++
		}
		hb := false
		if len(iov) == 0 {
			if !heartbeat {
				s.since = time.Time{}
				return sent, false, 0, true
			}
			heartbeat, hb = false, true
			iov = append(iov, Heartbeat)
		}
		n, err := s.sink.TryWrite(iov)
		frames := iov[len(iov)-int(idx-s.next):]
		if err != nil {
			clear(iov)
			return sent, false, ReasonError, false
		}
		rest := n
		if pendIn {
			if rest >= len(s.pend) {
				rest -= len(s.pend)
				s.pend = nil
			} else {
				s.pend = s.pend[rest:]
				rest, blocked = 0, true
			}
		}
		switch {
		case blocked:
		case hb:
			if rest < len(Heartbeat) {
				blocked = true
				if rest > 0 {
					s.pend = Heartbeat[rest:]
				}
			}
		default:
			for _, b := range frames {
				if rest == 0 {
					blocked = true // not started: stays at s.next
					break
				}
				s.next++
				sent++
				if rest < len(b) {
					s.pend = b[rest:]
					blocked = true
					break
				}
				rest -= len(b)
			}
		}
		clear(iov) // do not keep frames alive from the scratch slice
		sh.iov = iov[:0]
		if !blocked && s.next >= head {
			s.since = time.Time{}
			return sent, false, 0, true
		}
	}
	// Data is left behind.
	if s.since.IsZero() {
		s.since = now
	} else if now.Sub(s.since) > h.opts.WriteTimeout {
		return sent, true, ReasonSlow, false
	}
	if from := max(s.next, s.base); head > from && head-from > uint64(h.opts.MaxQueue) {
		return sent, true, ReasonSlow, false
	}
	return sent, true, 0, true
}
