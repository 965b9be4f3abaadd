// Package detect turns raw events (sensor/event) into incidents: stateful
// detectors in the style of CrowdSec scenarios and Tracee signatures, one
// per file, with every threshold, window and cooldown in Config.
//
// Detectors run on event time only (the time inside the log line or the
// kernel event), never on the wall clock, so replaying a log with
// `attackmap-sensor detect` gives the same incidents as watching it live.
// One incident is kept per (detector, address) and cooldown: while events
// keep coming it is updated (same id, higher count, later last_seen) rather
// than raised again. State is bounded: idle addresses are evicted and each
// detector tracks at most Config.MaxKeys addresses.
//
// The Engine is not safe for concurrent use: one goroutine feeds it.
package detect

import (
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/webrule"
)

// ThreatLists finds the threat lists an address is on; the delivery side's
// list loader implements it. Match must be fast and safe to call from the
// detection goroutine while lists reload.
type ThreatLists interface {
	Match(netip.Addr) []string
}

// Option configures an Engine.
type Option func(*Engine)

// WithThreatLists gives the c2_connect detector its lists. Without it
// c2_connect never fires.
func WithThreatLists(tl ThreatLists) Option { return func(e *Engine) { e.lists = tl } }

// WithWebRules gives web_scan and exploit_attempt their rule set (the
// embedded pack merged with the files of Config.WebRules, as
// webrule.Load compiles them). Without it they use webrule.Default().
func WithWebRules(s *webrule.Set) Option { return func(e *Engine) { e.web.set = s } }

// WithLogger sets the logger (debug-level notes on evictions only).
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// detector is one detection rule with its own state.
type detector interface {
	// handle looks at one event and appends new or updated incidents.
	handle(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident
	// sweep forgets state that expired before now.
	sweep(now int64)
	// keys is the number of tracked keys.
	keys() int
}

// Engine runs the detectors.
type Engine struct {
	cfg       Config
	allow     []netip.Prefix
	lists     ThreatLists
	log       *slog.Logger
	detectors []detector
	names     []string              // names[i] is the table name of detectors[i]
	byKind    map[string][]detector // event kind -> the detectors that want it

	// Clocks (clock.go): one per source, the newest time of any, and the
	// host clock when live.
	host      func() time.Time
	clocks    map[string]*srcClock
	lastKey   string    // the key of lastClk: consecutive events mostly share a source
	lastClk   *srcClock // the clock of the previous event
	newest    int64     // latest event time accepted from any source, unix ns
	ahead     uint64    // events dated beyond MaxSkew (Stats.Ahead)
	nextSweep int64
	dirty     []*episode
	evicted   uint64
	hashKey   uint64 // keys hashString (snapshot.go)

	seq uint64   // events handled so far: the identity of the current event
	web webMatch // the web rules' hits for the current event (web_scan.go)
}

// sweepEvery is how often, in event time, idle state is swept out. A
// minute keeps the sweep's O(keys) cost negligible against the events of
// that minute while memory follows the real set of active sources.
const sweepEvery = int64(time.Minute)

// New returns an engine. cfg should come from DefaultConfig (possibly
// overridden by DecodeConfig); an invalid cfg falls back to the defaults
// of the invalid parts being zero, so callers validate first.
func New(cfg Config, opts ...Option) *Engine {
	allow, _ := parseAllow(cfg.Allow)
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultConfig().MaxKeys
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = DefaultConfig().Cooldown
	}
	e := &Engine{cfg: cfg, allow: allow, log: slog.New(slog.DiscardHandler), byKind: map[string][]detector{},
		clocks: map[string]*srcClock{}, hashKey: newHashKey()}
	for _, o := range opts {
		o(e)
	}
	if e.web.set == nil {
		e.web.set = webrule.Default()
	}
	for _, r := range detectorTable() {
		if r.section(&cfg).Disabled {
			continue
		}
		d := r.build(e)
		e.detectors = append(e.detectors, d)
		e.names = append(e.names, r.name)
		for _, k := range r.kinds {
			e.byKind[k] = append(e.byKind[k], d)
		}
	}
	return e
}

// Handle feeds one event to the detectors that want its kind and returns the incidents it
// raised or updated (usually none). Events without a time are ignored. An
// event dated more than MaxSkew ahead is clamped (clock.go); in a replay it
// may be held until the next event of its source.
func (e *Engine) Handle(ev event.Event) []incident.Incident {
	if ev.TS.IsZero() {
		return nil
	}
	c := e.clockOf(&ev)
	t := ev.TS.UnixNano()
	if e.host != nil {
		if h := e.host().UnixNano(); t > h+int64(MaxSkew) {
			e.ahead++
			t = max(c.now, h)
		}
		return e.run(&ev, c, t, nil)
	}
	var out []incident.Incident
	if c.held != nil {
		held := c.held
		c.held = nil
		ht := held.TS.UnixNano()
		if t >= ht-int64(MaxSkew) {
			out = e.run(held, c, ht, out) // confirmed: the log had a gap
		} else {
			e.ahead++
			out = e.run(held, c, c.now, out) // a lone line from the future
		}
	}
	if c.now != 0 && t > c.now+int64(MaxSkew) {
		h := ev // rare: a gap or a future-dated line
		c.held = &h
		return out
	}
	return e.run(&ev, c, t, out)
}

// run handles ev at event time now, from the source whose clock is c.
func (e *Engine) run(ev *event.Event, c *srcClock, now int64, out []incident.Incident) []incident.Incident {
	e.advance(c, now)
	e.seq++
	for _, d := range e.byKind[ev.Kind] {
		out = d.handle(e, ev, now, out)
	}
	return out
}

// release handles the lines still held back in a replay, at their own
// times (no later line refuted them), in source order.
func (e *Engine) release() []incident.Incident {
	var out []incident.Incident
	var keys []string
	for k, c := range e.clocks {
		if c.held != nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		c := e.clocks[k]
		held := c.held
		c.held = nil
		out = e.run(held, c, held.TS.UnixNano(), out)
	}
	return out
}

// explainer is implemented by detectors that can say what an event did to
// their state, for `attackmap-sensor detect --explain`. It runs right
// after handle for the same event and must not change any state.
type explainer interface {
	explain(e *Engine, ev *event.Event) string
}

// Note is one detector's account of one event.
type Note struct {
	Detector string
	Text     string
}

// Explain is Handle that also returns, for every detector that wanted the
// event's kind, a note on what the event did there: the state of the
// buckets it may feed before and after the event ("fast 2/6 -> fast 3/6"),
// or why it was ignored. It costs string building, so only
// the replay command's --explain uses it.
func (e *Engine) Explain(ev event.Event) ([]incident.Incident, []Note) {
	if ev.TS.IsZero() {
		return nil, nil
	}
	ds := e.byKind[ev.Kind]
	before := make([]string, len(ds))
	for i, d := range ds {
		if x, ok := d.(explainer); ok {
			before[i] = x.explain(e, &ev)
		}
	}
	out := e.Handle(ev)
	notes := make([]Note, 0, len(ds))
	for i, d := range ds {
		n := Note{Detector: e.nameOf(d), Text: "wants this kind"}
		if x, ok := d.(explainer); ok {
			after := x.explain(e, &ev)
			switch {
			case after == before[i]:
				n.Text = "unchanged: " + after
			case strings.HasPrefix(after, "ignored"):
				n.Text = after
			default:
				n.Text = before[i] + " -> " + after
			}
		}
		notes = append(notes, n)
	}
	return out, notes
}

func (e *Engine) nameOf(d detector) string {
	for i, x := range e.detectors {
		if x == d {
			return e.names[i]
		}
	}
	return "?"
}

// Flush returns the latest copy of every open incident that changed since
// it was last returned. The daemon calls it every few seconds (so an
// attack's final count reaches the map even when no further event comes);
// `detect` calls it once at the end of a replay.
//
// In a replay, lines still held back (clock.go) are handled first.
func (e *Engine) Flush() []incident.Incident {
	out := e.release()
	for _, ep := range e.dirty {
		if ep.dirty {
			ep.dirty = false
			ep.emitted = ep.last
			out = append(out, ep.snapshot())
		}
		ep.queued = false
	}
	clear(e.dirty)
	e.dirty = e.dirty[:0]
	return out
}

// Stats describes the engine's state.
type Stats struct {
	// Keys is the number of tracked keys, summed over detectors.
	Keys int
	// Evicted counts keys dropped because a detector was full.
	Evicted uint64
	// Ahead counts events dated more than MaxSkew ahead of the host clock
	// (live) or of their source's clock with no later line to confirm the
	// jump (replay): they were handled at their source's time instead.
	Ahead uint64
	// Sources is the number of source clocks.
	Sources int
}

// Stats returns the current state sizes.
func (e *Engine) Stats() Stats {
	s := Stats{Evicted: e.evicted, Ahead: e.ahead, Sources: len(e.clocks)}
	for _, d := range e.detectors {
		s.Keys += d.keys()
	}
	return s
}

// reportable reports whether a is an address incidents may name: valid, not
// on the allow list and, unless IncludePrivate, not a special-purpose one.
func (e *Engine) reportable(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range e.allow {
		if p.Contains(a) {
			return false
		}
	}
	return e.cfg.IncludePrivate || !Special(a)
}

// Special reports whether a is loopback, private (RFC 1918, fc00::/7),
// link-local, multicast, unspecified, CGNAT (100.64.0.0/10), reserved or a
// documentation/benchmark address: sources that never come from the
// internet at large.
func Special(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range specialPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var specialPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("3fff::/20"),
	netip.MustParsePrefix("100::/64"),
}

// episode is one open incident of one detector for one key.
type episode struct {
	inc       incident.Incident
	start     int64 // when it fired, unix ns (its id says this minute)
	first     int64 // first counted event (first_seen)
	last      int64 // latest counted event (last_seen)
	count     int
	threshold int // escalation steps at 2x and 3x this
	base      incident.Severity
	emitted   int64 // event time of the last returned copy
	dirty     bool  // changed since the last returned copy
	queued    bool  // in Engine.dirty
	// render fills in the title and summary. It runs only when a copy is
	// returned, so events that merely update an open incident cost no
	// string building.
	render func()
}

// open starts an episode for source det and address ip.
func (e *Engine) open(det string, ip string, base incident.Severity, threshold int, first, now int64, count int) *episode {
	ep := &episode{start: now, first: first, last: now, count: count, threshold: threshold, base: base}
	if ep.first == 0 || ep.first > now {
		ep.first = now
	}
	ep.inc = incident.Incident{
		ID:       det + ":" + ip + ":" + time.Unix(0, now).UTC().Format("2006-01-02T15:04Z"),
		Source:   det,
		IP:       ip,
		Severity: base,
		Action:   "logged",
		Evidence: &incident.Evidence{},
	}
	ep.emitted = -1
	return ep
}

// keepUntil is how long a tracker keeps a source's state: until exp (when
// its buckets drained) and, with an open incident, until that incident's
// cooldown ends, so that later events still update the same incident.
func (e *Engine) keepUntil(exp int64, ep *episode) int64 {
	if ep != nil {
		exp = max(exp, ep.last+int64(e.cfg.Cooldown))
	}
	return exp
}

// over reports whether the episode's cooldown ended before now.
func (e *Engine) over(ep *episode, now int64) bool {
	return ep == nil || now-ep.last > int64(e.cfg.Cooldown)
}

// severity is the base severity escalated one step at 2x and two at 3x
// the threshold.
func (ep *episode) severity(n int) incident.Severity {
	steps := 0
	if ep.threshold > 0 {
		switch {
		case n >= 3*ep.threshold:
			steps = 2
		case n >= 2*ep.threshold:
			steps = 1
		}
	}
	return ep.base.Escalate(steps)
}

// publish records a change of ep at event time now and appends the
// incident to out when it is due: at once when new or more severe, else at
// most once per UpdateInterval; the rest waits for Flush.
func (e *Engine) publish(ep *episode, now int64, sev incident.Severity, out []incident.Incident) []incident.Incident {
	if now > ep.last {
		ep.last = now
	}
	raised := sev.Rank() > ep.inc.Severity.Rank()
	if raised {
		ep.inc.Severity = sev
	}
	if ep.emitted < 0 || raised || ep.last-ep.emitted >= int64(e.cfg.UpdateInterval) {
		ep.dirty = false
		ep.emitted = ep.last
		return append(out, ep.snapshot())
	}
	ep.dirty = true
	if !ep.queued {
		ep.queued = true
		e.dirty = append(e.dirty, ep)
	}
	return out
}

// snapshot returns a copy of the incident with its times and count filled
// in and its evidence lists copied, so later changes do not alias it.
func (ep *episode) snapshot() incident.Incident {
	if ep.render != nil {
		ep.render()
	}
	in := ep.inc
	in.FirstSeen = time.Unix(0, ep.first).UTC()
	in.LastSeen = time.Unix(0, ep.last).UTC()
	in.TS = in.LastSeen
	in.Count = ep.count
	if ev := ep.inc.Evidence; ev != nil {
		c := *ev
		c.Users = clone(ev.Users)
		c.Ports = clone(ev.Ports)
		c.Paths = clone(ev.Paths)
		c.UserAgents = clone(ev.UserAgents)
		c.Methods = clone(ev.Methods)
		c.Statuses = clone(ev.Statuses)
		c.Argv = clone(ev.Argv)
		c.Lists = clone(ev.Lists)
		in.Evidence = &c
	}
	return in
}

func clone[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return append([]T(nil), s...)
}

// addText adds attacker text to a capped list of distinct values; it
// reports false when the list was already full of other values.
func addText(list *[]string, s string) bool {
	s = incident.CleanText(s, incident.MaxEvidenceString)
	for _, v := range *list {
		if v == s {
			return true
		}
	}
	if len(*list) >= incident.MaxList {
		return false
	}
	*list = append(*list, s)
	return true
}

// addInt adds a value to a capped list of distinct ints.
func addInt(list *[]int, n int) bool {
	for _, v := range *list {
		if v == n {
			return true
		}
	}
	if len(*list) >= incident.MaxList {
		return false
	}
	*list = append(*list, n)
	return true
}

// span formats the time between first and last for a summary.
func span(first, last int64) string {
	d := time.Duration(last - first)
	switch {
	case d < time.Second:
		return "under a second"
	case d < 2*time.Minute:
		return strconv.Itoa(int(d.Round(time.Second)/time.Second)) + " s"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d.Round(time.Minute)/time.Minute)) + " min"
	}
	return strconv.FormatFloat(d.Hours(), 'f', 1, 64) + " h"
}

// plural writes "1 user", "3 users", and "32+ users" for a full list.
func plural(n int, full bool, word string) string {
	s := strconv.Itoa(n)
	if full {
		s += "+"
	}
	if n == 1 && !full {
		return s + " " + word
	}
	return s + " " + word + "s"
}
