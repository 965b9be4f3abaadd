package live

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// History limits. The replay holds what it plays in the browser's memory
// (about 1-2 KiB per decoded incident): 20,000 incidents is a busy relay's
// day at one incident every four seconds, well under 64 MiB decoded, and
// more than the map can show at once (MaxIncidents). The byte cap is that
// count at an average of 2 KiB, plus room for a few incidents near the
// 16 KiB maximum; a larger answer is refused before it is parsed.
const (
	MaxHistory      = 20_000
	MaxHistoryBytes = 48 << 20
)

// DecodeHistory parses the relay's /api/history answer: a JSON array of
// incidents, or NDJSON (one incident per line), oldest first. An element
// or line that is not a plausible incident (bad JSON, over
// incident.MaxBytes, no id or time, an unknown severity, coordinates out of
// range) is skipped and counted in skipped, as are the elements past
// MaxHistory: one bad line does not cost the replay. The error is for a
// body over MaxHistoryBytes, or an array that is not well formed.
func DecodeHistory(body []byte) (hist []incident.Incident, skipped int, err error) {
	if len(body) > MaxHistoryBytes {
		return nil, 0, fmt.Errorf("history: %d bytes, over the %d byte limit", len(body), MaxHistoryBytes)
	}
	keep := func(raw []byte) {
		if len(hist) >= MaxHistory {
			skipped++
			return
		}
		in, err := incident.Decode(raw)
		if err != nil || !plausible(&in) {
			skipped++
			return
		}
		hist = append(hist, in)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		if _, err := dec.Token(); err != nil {
			return nil, 0, fmt.Errorf("history: %w", err)
		}
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				// The array itself is broken: what came before is kept.
				return hist, skipped + 1, fmt.Errorf("history: element %d: %w", len(hist)+skipped, err)
			}
			keep(raw)
		}
		if _, err := dec.Token(); err != nil {
			return hist, skipped, fmt.Errorf("history: %w", err)
		}
		return hist, skipped, nil
	}
	for line := range bytes.SplitSeq(body, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		keep(line)
	}
	return hist, skipped, nil
}

// Player plays history back on its own clock: the replay view is a second
// Model fed with what Advance returns, at now = Clock(). It is not safe
// for concurrent use.
type Player struct {
	hist []incident.Incident // by replay time (eventTime), oldest first
	next int                 // first incident not yet returned

	clock    time.Time
	speed    float64
	playing  bool
	lastWall time.Time // wall time of the last Advance while playing; zero = not anchored
}

// Replay speeds: real time up to an hour a minute.
const (
	MinSpeed = 1
	MaxSpeed = 60
)

// NewPlayer returns a paused player at the start of hist (the first
// incident is due), at 1x. It
// orders a copy of hist by each incident's last activity (last_seen, else
// ts), keeping the given order between equal times, so the copies of one
// incident play in the order the relay stored them.
func NewPlayer(hist []incident.Incident) *Player {
	h := slices.Clone(hist)
	slices.SortStableFunc(h, func(a, b incident.Incident) int {
		return eventTime(&a).Compare(eventTime(&b))
	})
	p := &Player{hist: h, speed: 1}
	p.clock, _ = p.Span()
	return p
}

// Len is how many incidents the player holds.
func (p *Player) Len() int { return len(p.hist) }

// Span returns the times of the first and the last incident (zero when
// empty).
func (p *Player) Span() (from, to time.Time) {
	if len(p.hist) == 0 {
		return
	}
	return eventTime(&p.hist[0]), eventTime(&p.hist[len(p.hist)-1])
}

// Clock is the replay time: what the replay model takes as now.
func (p *Player) Clock() time.Time { return p.clock }

// Speed is the replay speed, a multiple of real time.
func (p *Player) Speed() float64 { return p.speed }

// SetSpeed sets the speed, clamped to MinSpeed..MaxSpeed; it applies from
// the next Advance.
func (p *Player) SetSpeed(x float64) {
	if x != x { // NaN
		x = MinSpeed
	}
	p.speed = max(MinSpeed, min(MaxSpeed, x))
}

// Playing reports whether the clock runs.
func (p *Player) Playing() bool { return p.playing }

// Done reports whether every incident was returned.
func (p *Player) Done() bool { return p.next >= len(p.hist) }

// Play starts the clock; it runs from the next Advance on.
func (p *Player) Play() {
	if !p.playing {
		p.playing = true
		p.lastWall = time.Time{}
	}
}

// Pause stops the clock; Advance then returns nothing new.
func (p *Player) Pause() { p.playing = false }

// Seek moves the clock to t (clamped to the span). Forward, nothing is
// skipped: the next Advance returns every incident up to t, so the replay
// model shows what the live one showed at t. Backward, the player
// rewinds: it reports true, and the next Advance returns every incident
// up to t again, for a fresh replay Model (the old one has seen later
// incidents). Between rewinds Advance never returns an incident twice.
func (p *Player) Seek(t time.Time) (rewound bool) {
	if len(p.hist) == 0 {
		return false
	}
	from, to := p.Span()
	if t.Before(from) {
		t = from
	}
	if t.After(to) {
		t = to
	}
	if t.Before(p.clock) {
		p.next = 0
		rewound = true
	}
	p.clock = t
	p.lastWall = time.Time{}
	return rewound
}

// Advance moves the clock by the wall time since the previous call times
// the speed (when playing; the first call after Play, Seek or a pause
// only anchors the wall clock) and returns the incidents due up to the
// clock that were not returned yet, oldest first. At the end of the
// history the clock stops at its last incident and the player pauses.
// The slice is the player's own: do not modify it.
func (p *Player) Advance(wall time.Time) []incident.Incident {
	if p.playing {
		if !p.lastWall.IsZero() && wall.After(p.lastWall) {
			d := time.Duration(float64(wall.Sub(p.lastWall)) * p.speed)
			p.clock = p.clock.Add(d)
		}
		p.lastWall = wall
		if _, to := p.Span(); !p.clock.Before(to) {
			p.clock = to
			p.playing = false
		}
	}
	rest := p.hist[p.next:]
	// The first incident after the clock: the ones before it are due.
	j := sort.Search(len(rest), func(k int) bool { return eventTime(&rest[k]).After(p.clock) })
	p.next += j
	return rest[:j:j]
}

// Feed advances the player (see Advance) and applies what is due to the
// replay model m as the live stream would have, each incident at its own
// time (so its marker lives and ages as it did live, with no clock skew
// to correct), then expires m at the replay clock. hidden is whether the
// page is in the background. It returns how many incidents it applied.
func (p *Player) Feed(m *Model, wall time.Time, hidden bool) int {
	due := p.Advance(wall)
	for i := range due {
		at := eventTime(&due[i])
		if at.Before(m.now) {
			at = m.now // never back in time: the model has seen later ones
		}
		m.Apply(due[i], at, Options{Live: true, Hidden: hidden})
	}
	m.Expire(p.Clock())
	return len(due)
}
