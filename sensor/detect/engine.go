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
	"strconv"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
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
	byKind    map[string][]detector // event kind -> the detectors that want it

	now       int64 // latest event time seen, unix ns
	nextSweep int64
	dirty     []*episode
	evicted   uint64
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
	e := &Engine{cfg: cfg, allow: allow, log: slog.New(slog.DiscardHandler), byKind: map[string][]detector{}}
	for _, o := range opts {
		o(e)
	}
	for _, r := range detectorTable() {
		if r.section(&cfg).Disabled {
			continue
		}
		d := r.build(e)
		e.detectors = append(e.detectors, d)
		for _, k := range r.kinds {
			e.byKind[k] = append(e.byKind[k], d)
		}
	}
	return e
}

// Handle feeds one event to the detectors that want its kind and returns the incidents it
// raised or updated (usually none). Events without a time are ignored.
func (e *Engine) Handle(ev event.Event) []incident.Incident {
	if ev.TS.IsZero() {
		return nil
	}
	now := ev.TS.UnixNano()
	if now > e.now {
		e.now = now
	}
	if e.now >= e.nextSweep {
		for _, d := range e.detectors {
			d.sweep(e.now)
		}
		e.nextSweep = e.now + sweepEvery
	}
	var out []incident.Incident
	for _, d := range e.byKind[ev.Kind] {
		out = d.handle(e, &ev, now, out)
	}
	return out
}

// Flush returns the latest copy of every open incident that changed since
// it was last returned. The daemon calls it every few seconds (so an
// attack's final count reaches the map even when no further event comes);
// `detect` calls it once at the end of a replay.
func (e *Engine) Flush() []incident.Incident {
	var out []incident.Incident
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
}

// Stats returns the current state sizes.
func (e *Engine) Stats() Stats {
	s := Stats{Evicted: e.evicted}
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
