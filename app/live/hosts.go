package live

import (
	"slices"
	"strings"
	"time"

	"github.com/attackmap/attackmap/app/geo"
	"github.com/paulmach/orb"
)

// SilentAfter is how long a sensor host may go without an incident before
// the map marks it silent. An internet-facing host is scanned every few
// minutes (SSH and web probes from the background noise of the internet),
// so ten minutes without a single incident is twice the marker lifetime
// and far more often a stopped sensor, a broken push or a revoked token
// than a quiet internet; shorter would flag healthy hosts between scans.
// It is a hint, not proof: a sensor that sees nothing sends nothing.
const SilentAfter = 10 * time.Minute

// maxHosts bounds the sensor hosts the model tracks (a relay has a few;
// a hostile relay could name thousands). Hosts beyond it are not shown.
const maxHosts = 256

// HostView is one sensor host for the map's "home" markers and the host
// filter.
type HostView struct {
	// Name is the host as incidents name it (the sensor's token name).
	Name string
	// X, Y are map units (package geo) of the host's target location,
	// from its newest incident that carried one; HasLoc says whether any
	// did.
	X, Y   float64
	HasLoc bool
	// LastSeen is the newest incident activity from this host, on the
	// browser's clock (the host's clock skew removed), never after the
	// time it arrived.
	LastSeen time.Time
	// Silent is set when the host raised nothing for SilentAfter.
	Silent bool
	// Count is how many incidents the model holds from this host.
	Count int
}

type hostState struct {
	x, y     float64
	hasLoc   bool
	lastSeen time.Time
	count    int
}

// seeHost records an incident (added: a new one, else an update) for its
// host.
func (m *Model) seeHost(e *entry, now time.Time, added bool) {
	in := &e.in
	if in.Host == "" {
		return
	}
	h := m.hosts[in.Host]
	if h == nil {
		if len(m.hosts) >= maxHosts {
			return
		}
		h = &hostState{}
		m.hosts[in.Host] = h
	}
	if added {
		h.count++
	}
	if in.Target != nil {
		p := geo.Project(orb.Point{in.Target.Lon, in.Target.Lat})
		h.x, h.y, h.hasLoc = round1(p[0]), round1(p[1]), true
	}
	seen := eventTime(in).Add(m.skewOf(in.Host))
	if seen.After(now) {
		seen = now
	}
	if seen.After(h.lastSeen) {
		h.lastSeen = seen
	}
}

// forgetHost drops an incident the model no longer holds from its host's
// count; the host itself stays known.
func (m *Model) forgetHost(e *entry) {
	if h := m.hosts[e.in.Host]; h != nil && h.count > 0 {
		h.count--
	}
}

// Hosts lists the sensor hosts seen in incidents, sorted by name, with
// their health at now.
func (m *Model) Hosts(now time.Time) []HostView {
	out := make([]HostView, 0, len(m.hosts))
	for name, h := range m.hosts {
		out = append(out, HostView{
			Name: name, X: h.x, Y: h.y, HasLoc: h.hasLoc,
			LastSeen: h.lastSeen, Silent: now.Sub(h.lastSeen) >= SilentAfter, Count: h.count,
		})
	}
	slices.SortFunc(out, func(a, b HostView) int { return strings.Compare(a.Name, b.Name) })
	return out
}
