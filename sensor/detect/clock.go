package detect

import (
	"time"

	"github.com/attackmap/attackmap/sensor/event"
)

// Event time, one clock per source.
//
// Detectors run on event time, and idle state is swept out at "the current
// time". That time must not come from one line: a single line dated an
// hour ahead (a clock error on the writer, a forged syslog stamp) would
// make every other address's buckets look an hour old and sweep them all.
// So every source (a followed log file, keyed by its path; else the event's
// Source: "ebpf", "journald") keeps its own clock, the latest event time it
// showed, and:
//
//   - Live (WithHostClock, the daemon): a line dated more than MaxSkew
//     ahead of the host clock is clamped to its source's clock (or the host
//     clock, whichever is later) and counted (Stats.Ahead).
//   - Replay (no host clock, `attackmap-sensor detect`): the replay's own
//     clock is its sources' clocks. A line more than MaxSkew ahead of its
//     source's clock is held back until the source's next line: if that
//     line confirms the jump (it is dated near it: the log had a gap), the
//     held line is handled at its own time; if not, it was a lone
//     future-dated line and is handled at its source's clock, and counted.
//     The outcome depends only on the input, so replays stay deterministic.
//   - State is swept at the earliest clock among the sources that spoke in
//     the last hour (staleSource), never at one source's newest time, so a
//     source running ahead cannot evict another one's state.
//
// A source silent for over an hour stops holding the sweep back: its state
// is swept at the other sources' time, as before there were clocks.

// MaxSkew is how far ahead of the reference (the host clock, or in a replay
// the line's own source) an event may be dated before it is clamped. Five
// minutes covers a syslog relay's delay and an unsynchronised host clock;
// every detector window is longer than what it could distort.
const MaxSkew = 5 * time.Minute

// staleSource is how long a source may stay silent, in the other sources'
// time, and still hold the sweep back: an hour is longer than any default
// window or cooldown, so its state has expired by then on its own clock.
const staleSource = int64(time.Hour)

// maxSources caps the clocks kept; sources are files and collectors, a
// handful, so this only guards against a caller inventing keys per event.
// Past it, new keys share the clock of their event Source.
const maxSources = 256

// WithHostClock gives the engine the host's clock (the daemon passes
// time.Now): lines dated more than MaxSkew ahead of it are clamped. Without
// it (replays) the reference is each source's own clock.
func WithHostClock(now func() time.Time) Option {
	return func(e *Engine) { e.host = now }
}

// srcClock is one source's clock.
type srcClock struct {
	now  int64        // latest event time accepted, unix ns
	held *event.Event // replay: a line dated beyond now+MaxSkew, waiting for the next
}

// clockOf returns the clock of ev's source.
func (e *Engine) clockOf(ev *event.Event) *srcClock {
	key := ev.Origin.Key
	if key == "" {
		key = ev.Source
	}
	if e.lastClk != nil && key == e.lastKey {
		return e.lastClk
	}
	c := e.clocks[key]
	if c == nil {
		if len(e.clocks) >= maxSources {
			key = ev.Source
			c = e.clocks[key]
		}
		if c == nil {
			c = &srcClock{}
			e.clocks[key] = c
		}
	}
	e.lastKey, e.lastClk = key, c
	return c
}

// advance moves c to t and the sweep forward when it is due.
func (e *Engine) advance(c *srcClock, t int64) {
	if t > c.now {
		c.now = t
	}
	if t > e.newest {
		e.newest = t
	}
	if e.newest >= e.nextSweep {
		at := e.sweepTime()
		for _, d := range e.detectors {
			d.sweep(at)
		}
		e.nextSweep = e.newest + sweepEvery
	}
}

// sweepTime is the earliest clock among the sources that spoke within
// staleSource of the newest one, and never past the host clock.
func (e *Engine) sweepTime() int64 {
	at := e.newest
	for _, c := range e.clocks {
		if c.now >= e.newest-staleSource && c.now < at {
			at = c.now
		}
	}
	if e.host != nil {
		at = min(at, e.host().UnixNano())
	}
	return at
}
