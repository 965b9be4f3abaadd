// Package live is the map's state, kept apart from any browser code so it
// is tested on the host: the incidents it knows, the markers and arcs in
// stable slots (go-app diffs children by position, so a marker keeps its
// slot for life and a freed slot is reused rather than the list shifting),
// the sidebar, and the live statistics.
//
// The UI reads the slots and the per-chunk generation counters: a chunk
// whose generation did not change is not rendered again, so one incident
// costs one small chunk of DOM work however many markers are on the map.
package live

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/attackmap/attackmap/app/geo"
	"github.com/attackmap/attackmap/incident"
	"github.com/paulmach/orb"
)

// Config holds the limits of the map. Zero fields take the defaults below.
type Config struct {
	// MaxMarkers caps the circles on the map (default 2,000); when full,
	// the marker updated longest ago leaves first.
	MaxMarkers int
	// MaxArcs caps the attacker-to-target arcs (default 500), oldest first.
	MaxArcs int
	// TTL is how long a marker stays after its incident's last activity
	// (default 5 minutes, docs/DESIGN.md).
	TTL time.Duration
	// SidebarRows is how many incidents the sidebar lists (default 50).
	SidebarRows int
	// Cell is the aggregation cell in map units (default 2, about 0.7° of
	// longitude): incidents from one cell share one circle with a count.
	Cell float64
	// MaxPulses caps the markers pulsing at once (default 200) and
	// MaxFades the arcs fading in (default 100): under a burst the rest
	// appear settled. Every pulse is a repaint of the SVG on every frame
	// for 4 s, and a browser without GPU draws only a few hundred at 60 fps.
	MaxPulses int
	MaxFades  int
	// ChunkSize is how many slots render as one unit (default 16: one
	// incident then rebuilds and diffs 16 slots, and the page compares
	// 125 chunk components per frame at 2,000 markers).
	ChunkSize int
	// MaxIncidents caps the incidents the model holds (default 5,000),
	// the ones active longest ago leaving first (in batches of an eighth,
	// so the sort that finds them runs once per MaxIncidents/8 arrivals).
	// A filter change rebuilds markers, arcs, sidebar and statistics from
	// them, so the cap bounds that work (a few milliseconds in the
	// browser) and the memory (about 1-2 KiB per decoded incident, so
	// under 10 MiB); it is ten times the feed the page loads (500) and
	// holds a busy relay's last hour.
	MaxIncidents int
}

func (c Config) withDefaults() Config {
	if c.MaxMarkers <= 0 {
		c.MaxMarkers = 2000
	}
	if c.MaxArcs <= 0 {
		c.MaxArcs = 500
	}
	if c.TTL <= 0 {
		c.TTL = 5 * time.Minute
	}
	if c.SidebarRows <= 0 {
		c.SidebarRows = 50
	}
	if c.Cell <= 0 {
		c.Cell = 2
	}
	if c.MaxPulses <= 0 {
		c.MaxPulses = 200
	}
	if c.MaxFades <= 0 {
		c.MaxFades = 100
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = 16
	}
	if c.MaxIncidents <= 0 {
		c.MaxIncidents = 5000
	}
	// The sidebar lists held incidents: it cannot list more than that.
	c.SidebarRows = min(c.SidebarRows, c.MaxIncidents)
	return c
}

// Marker is one slot of the marker layer.
type Marker struct {
	Used bool
	// X, Y are map units (package geo), from the first incident placed here.
	X, Y float64
	// tally holds Count (how many live incidents share this place) and
	// Severity (the highest among them).
	tally
	// Pulse flips on every new activity: the UI maps it to one of two
	// identical CSS animations, so changing it restarts the pulse.
	Pulse uint8
	// Still is set when the activity arrived while the page was hidden: the
	// marker appears settled instead of replaying a salvo of pulses.
	Still bool
	// Latest is the id of the newest incident here (selected on click).
	Latest string

	key     cellKey
	updated time.Time
}

// Arc is one slot of the arc layer: a great circle from an attacker's place
// to a target host.
type Arc struct {
	Used bool
	// D is the SVG path data, split at the antimeridian.
	D string
	// tally holds Count (how many live incidents share this pair; the
	// stroke width grows with log2(Count+1)) and Severity.
	tally
	Pulse uint8
	Still bool

	key     arcKey
	updated time.Time
}

// tally is what a marker and an arc keep of the incidents on them.
type tally struct {
	// Count is how many live incidents share the slot.
	Count int
	// Severity is the highest severity among them.
	Severity incident.Severity

	bySev [5]int
	// members lists the incidents on the slot (entry.links), so that
	// evicting it costs its own incidents, not every held one.
	members *entry
}

// Which of an entry's links a tally's list runs through.
const (
	onMarker = iota
	onArc
)

// link is an entry's place in one tally's list.
type link struct{ prev, next *entry }

// join adds e to the slot, through e.links[on].
func (t *tally) join(e *entry, on int) {
	t.Count++
	t.bySev[e.sev]++
	t.Severity = highest(t.bySev)
	e.links[on] = link{next: t.members}
	if t.members != nil {
		t.members.links[on].prev = e
	}
	t.members = e
}

// leave takes e off the slot and reports whether the slot is now empty.
func (t *tally) leave(e *entry, on int) (empty bool) {
	l := e.links[on]
	if l.prev != nil {
		l.prev.links[on].next = l.next
	} else {
		t.members = l.next
	}
	if l.next != nil {
		l.next.links[on].prev = l.prev
	}
	e.links[on] = link{}
	t.Count--
	t.bySev[e.sev]--
	if t.Count <= 0 {
		return true
	}
	t.Severity = highest(t.bySev)
	return false
}

// rerank moves one incident on the slot from severity rank from to to.
func (t *tally) rerank(from, to int) {
	t.bySev[from]--
	t.bySev[to]++
	t.Severity = highest(t.bySev)
}

// Width is the arc's stroke width in map units.
func (a *Arc) Width() float64 { return 0.8 * math.Log2(float64(a.Count)+1) }

// Radius is the marker's radius in map units: bigger for busier places.
func (m *Marker) Radius() float64 {
	return 4 + math.Min(4, math.Log2(float64(max(m.Count, 1))))
}

type cellKey struct{ x, y int32 }

type arcKey struct{ from, to cellKey }

type entry struct {
	in      incident.Incident
	marker  int // slot, -1 when none
	arc     int // slot, -1 when none
	sev     int // severity rank counted in the slots
	expires time.Time
	// order is the model's sequence number of the latest copy applied:
	// the sidebar lists the highest first, the cap evicts the lowest.
	order uint64
	// match is whether the filter keeps the incident.
	match bool
	// arrived is when the first copy came on the live stream (zero for
	// the feed and the offline cache), for the filtered per-minute rate.
	arrived time.Time
	// counted says what the statistics count this incident as (see
	// stats.go); counted is false when they do not count it at all.
	counted                 bool
	cSource, cSev, cCountry string
	// The incidents on one marker and on one arc form lists
	// (tally.members), through links[onMarker] and links[onArc].
	links [2]link
}

// Options describe how an incident arrived.
type Options struct {
	// Live marks incidents from the SSE stream (not the initial feed or the
	// offline cache): they count in the per-minute rate and may pulse.
	Live bool
	// Hidden is true while the page is in the background.
	Hidden bool
}

// Result says what Apply did.
type Result int

// Apply results.
const (
	Invalid   Result = iota // failed incident.Validate; ignored
	Duplicate               // same id and nothing newer; ignored
	Added                   // a new incident
	Updated                 // a newer copy of a known incident
)

// Model is the map state. It is not safe for concurrent use: the UI calls
// it from go-app's UI goroutine only.
type Model struct {
	cfg Config

	Markers []Marker
	Arcs    []Arc

	entries map[string]*entry
	cells   map[cellKey]int
	pairs   map[arcKey]int
	// markerSlots and arcSlots hand out the slots of Markers and Arcs.
	markerSlots, arcSlots slots

	// sidebar holds the newest incidents the filter keeps, newest first.
	// It outlives the markers: an incident stays listed after its marker
	// expired, as long as the model holds it.
	sidebar []incident.Incident

	// seq numbers the copies applied (entry.order).
	seq uint64

	filter  Filter
	matcher matcher

	hosts map[string]*hostState

	// now is the latest time Apply or Expire was given: SetFilter places
	// the markers that are alive then.
	now time.Time

	sidebarGen uint64
	gen        uint64

	selected string

	// skews estimate, per sensor host, how far the browser clock is ahead
	// of that host's: see skewEstimate.
	skews map[string]*skewEstimate

	stats stats

	pulses, fades animations

	// Announcement is the latest high or critical live incident, for the
	// polite live region; AnnounceGen changes with it.
	Announcement string
	AnnounceGen  uint64

	// DBIP is true once an incident placed by DB-IP data was seen.
	DBIP bool

	// Rejected counts incidents that failed validation.
	Rejected int
}

// New returns an empty model.
func New(cfg Config) *Model {
	cfg = cfg.withDefaults()
	return &Model{
		cfg:     cfg,
		entries: make(map[string]*entry),
		cells:   make(map[cellKey]int),
		pairs:   make(map[arcKey]int),
		skews:   make(map[string]*skewEstimate),
		hosts:   make(map[string]*hostState),
		stats:   newStats(),
		matcher: matcher{all: true},
	}
}

// Config returns the model's configuration with defaults filled in.
func (m *Model) Config() Config { return m.cfg }

// Gen changes whenever anything visible changed.
func (m *Model) Gen() uint64 { return m.gen }

// MarkerChunks is how many chunks the marker slots form.
func (m *Model) MarkerChunks() int { return (len(m.Markers) + m.cfg.ChunkSize - 1) / m.cfg.ChunkSize }

// ArcChunks is how many chunks the arc slots form.
func (m *Model) ArcChunks() int { return (len(m.Arcs) + m.cfg.ChunkSize - 1) / m.cfg.ChunkSize }

// MarkerChunkGen is the generation of marker chunk c.
func (m *Model) MarkerChunkGen(c int) uint64 { return m.markerSlots.gen[c] }

// ArcChunkGen is the generation of arc chunk c.
func (m *Model) ArcChunkGen(c int) uint64 { return m.arcSlots.gen[c] }

// ChunkRange returns the slot indexes [lo, hi) of chunk c of n slots.
func (m *Model) ChunkRange(c, n int) (lo, hi int) {
	lo = c * m.cfg.ChunkSize
	return lo, min(n, lo+m.cfg.ChunkSize)
}

// SidebarGen changes whenever the sidebar or the selection changed.
func (m *Model) SidebarGen() uint64 { return m.sidebarGen }

// Sidebar returns the listed incidents, newest first. Do not modify.
func (m *Model) Sidebar() []incident.Incident { return m.sidebar }

// Len is how many incidents the model tracks.
func (m *Model) Len() int { return len(m.entries) }

func (m *Model) touch() { m.gen++ }

func (m *Model) dirtyMarker(i int) {
	m.gen++
	m.markerSlots.gen[i/m.cfg.ChunkSize] = m.gen
}

func (m *Model) dirtyArc(i int) {
	m.gen++
	m.arcSlots.gen[i/m.cfg.ChunkSize] = m.gen
}

func (m *Model) dirtySidebar() {
	m.gen++
	m.sidebarGen = m.gen
}

// eventTime is the incident's last activity.
func eventTime(in *incident.Incident) time.Time {
	if in.LastSeen.After(in.TS) {
		return in.LastSeen
	}
	return in.TS
}

// Apply adds or updates one incident at time now. Incidents with no id,
// an unknown severity or coordinates out of range are refused (Invalid).
// Every valid incident is held and counted; only those the filter keeps
// are placed on the map and listed.
func (m *Model) Apply(in incident.Incident, now time.Time, opt Options) Result {
	if !plausible(&in) {
		m.Rejected++
		return Invalid
	}
	if now.After(m.now) {
		m.now = now
	}
	// Ids are chosen by sensors: two hosts hit by one scanner in the same
	// minute raise the same id. The relay keeps them apart by host, and so
	// does the map: from here on an incident is known by host and id.
	if in.Host != "" && !strings.HasPrefix(in.ID, in.Host+"/") {
		in.ID = in.Host + "/" + in.ID
	}
	t := eventTime(&in)
	if opt.Live {
		m.observeSkew(in.Host, now.Sub(t))
	}
	// A marker lives TTL on the sensor's clock, moved to the browser's by
	// the host's skew, and never longer than TTL after it arrived: an
	// incident stamped in the future leaves like any other.
	expires := t.Add(m.skewOf(in.Host)).Add(m.cfg.TTL)
	if limit := now.Add(m.cfg.TTL); expires.After(limit) {
		expires = limit
	}
	if in.GeoSource == "dbip" && !m.DBIP {
		m.DBIP = true
		m.touch()
	}
	e, known := m.entries[in.ID]
	if !known {
		m.seq++
		e = &entry{in: in, marker: -1, arc: -1, sev: in.Severity.Rank(), expires: expires, order: m.seq}
		e.match = m.matcher.match(&e.in)
		if opt.Live {
			e.arrived = now
		}
		m.entries[in.ID] = e
		m.seeHost(e, now, true)
		m.stats.add(e, now, opt.Live)
		if e.match {
			if expires.After(now) {
				m.place(e, now, opt)
			}
			m.list(in)
			m.announce(&in, opt)
		}
		if len(m.entries) > m.cfg.MaxIncidents {
			m.trim()
		}
		return Added
	}
	if !in.Supersedes(&e.in) {
		return Duplicate
	}
	e.in = in
	if expires.After(e.expires) {
		e.expires = expires
	}
	m.seq++
	e.order = m.seq
	m.seeHost(e, now, false)
	m.stats.update(e, opt.Live)
	wasMatch := e.match
	e.match = m.matcher.match(&e.in)
	if !e.match {
		if wasMatch {
			// An update the filter no longer keeps (an incident that
			// calmed down below the severities shown) leaves the map and
			// the list.
			m.unplace(e)
			m.unlist(in.ID)
		}
		e.sev = in.Severity.Rank()
		return Updated
	}
	if r := in.Severity.Rank(); r != e.sev {
		if e.marker >= 0 {
			m.Markers[e.marker].rerank(e.sev, r)
		}
		if e.arc >= 0 {
			m.Arcs[e.arc].rerank(e.sev, r)
		}
		e.sev = r
	}
	if e.marker < 0 && e.expires.After(now) {
		m.place(e, now, opt)
	} else if e.marker >= 0 {
		m.pulseMarker(e.marker, e.in.ID, now, opt)
		if e.arc >= 0 {
			m.pulseArc(e.arc, now, opt)
		}
	}
	m.list(in)
	m.announce(&in, opt)
	return Updated
}

// MaxSkew bounds the clock skew the map corrects for, either way: the relay
// refuses incidents more than five minutes ahead of its clock, and a
// browser or sensor clock further off than that is broken, not skewed. The
// bound keeps one odd timestamp from moving every marker of its host.
const MaxSkew = 5 * time.Minute

// skewSamples is how many recent live arrivals per host the estimate is
// the median of: enough that one incident stamped far ahead or delivered
// late does not move it, few enough to follow a clock that is corrected.
const skewSamples = 15

// maxSkewHosts bounds the hosts with an estimate (a relay has a few
// sensors; a hostile relay could name thousands). Hosts beyond it get no
// correction.
const maxSkewHosts = 256

// skewEstimate is one host's clock skew: the median of the last
// skewSamples (arrival - incident time) on the live stream, within
// ±MaxSkew. The detection and delivery delay is in it too, which is what
// the marker's lifetime should discount.
type skewEstimate struct {
	samples [skewSamples]time.Duration
	n, next int
	value   time.Duration
}

func (s *skewEstimate) add(d time.Duration) {
	s.samples[s.next] = d
	s.next = (s.next + 1) % len(s.samples)
	s.n = min(s.n+1, len(s.samples))
	sorted := make([]time.Duration, s.n)
	copy(sorted, s.samples[:s.n])
	slices.Sort(sorted)
	// The upper median of an even count: of a fresh and a future-stamped
	// incident, the fresh one wins.
	s.value = max(-MaxSkew, min(MaxSkew, sorted[s.n/2]))
}

func (m *Model) observeSkew(host string, d time.Duration) {
	e := m.skews[host]
	if e == nil {
		if len(m.skews) >= maxSkewHosts {
			return
		}
		e = &skewEstimate{}
		m.skews[host] = e
	}
	e.add(d)
}

// skewOf is the host's skew estimate, 0 before any live incident.
func (m *Model) skewOf(host string) time.Duration {
	if e := m.skews[host]; e != nil {
		return e.value
	}
	return 0
}

// plausible checks what the model relies on: an id to de-duplicate by, a
// known severity, and coordinates in range. The relay ran the full
// incident.Validate already; repeating it here would re-encode every
// incident (Validate measures the JSON size), which was a tenth of the
// map's work per incident. Every string is still shown only as capped text.
func plausible(in *incident.Incident) bool {
	if in.ID == "" || len(in.ID) > incident.MaxID || !in.Severity.Valid() || in.TS.IsZero() {
		return false
	}
	inRange := func(lat, lon float64) bool { return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 }
	if (in.Lat == nil) != (in.Lon == nil) || in.HasLocation() && !inRange(*in.Lat, *in.Lon) {
		return false
	}
	return in.Target == nil || inRange(in.Target.Lat, in.Target.Lon)
}

func highest(bySev [5]int) incident.Severity {
	sev := [...]incident.Severity{incident.Info, incident.Low, incident.Medium, incident.High, incident.Critical}
	for r := 4; r >= 0; r-- {
		if bySev[r] > 0 {
			return sev[r]
		}
	}
	return incident.Info
}

// place puts a located incident on a marker (and an arc when the target is
// known).
func (m *Model) place(e *entry, now time.Time, opt Options) { m.placeAt(e, now, opt, true) }

// placeAt is place; without evict, an incident that would need a new
// marker or arc while the layer is full does not get one (a filter change
// places the newest first, and evicting for older ones would only churn).
func (m *Model) placeAt(e *entry, now time.Time, opt Options, evict bool) {
	in := &e.in
	if !in.HasLocation() {
		return
	}
	from := orb.Point{*in.Lon, *in.Lat}
	p := geo.Project(from)
	key := m.cell(p)
	slot, ok := m.cells[key]
	if !ok {
		if !evict && len(m.markerSlots.free) == 0 && len(m.Markers) >= m.cfg.MaxMarkers {
			return
		}
		slot = m.allocMarker()
		m.Markers[slot] = Marker{Used: true, X: round1(p[0]), Y: round1(p[1]), key: key, Pulse: m.Markers[slot].Pulse}
		m.cells[key] = slot
	}
	m.Markers[slot].join(e, onMarker)
	e.marker = slot
	m.pulseMarker(slot, in.ID, now, opt)

	if in.Target == nil {
		return
	}
	to := orb.Point{in.Target.Lon, in.Target.Lat}
	ak := arcKey{key, m.cell(geo.Project(to))}
	if ak.from == ak.to {
		return // attacker next to the target: nothing to draw
	}
	aslot, ok := m.pairs[ak]
	if !ok {
		if !evict && len(m.arcSlots.free) == 0 && len(m.Arcs) >= m.cfg.MaxArcs {
			return
		}
		aslot = m.allocArc()
		m.Arcs[aslot] = Arc{Used: true, D: ArcPath(from, to), key: ak, Pulse: m.Arcs[aslot].Pulse}
		m.pairs[ak] = aslot
	}
	m.Arcs[aslot].join(e, onArc)
	e.arc = aslot
	m.pulseArc(aslot, now, opt)
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func (m *Model) cell(p orb.Point) cellKey {
	return cellKey{int32(math.Floor(p[0] / m.cfg.Cell)), int32(math.Floor(p[1] / m.cfg.Cell))}
}

// PulseDuration is how long the CSS pulse and fade run.
const PulseDuration = 4 * time.Second

// animations counts the animations started in the last PulseDuration.
type animations struct{ starts []time.Time }

// start reports whether another animation may start at now under the cap.
func (a *animations) start(now time.Time, limit int) bool {
	i := 0
	for i < len(a.starts) && now.Sub(a.starts[i]) >= PulseDuration {
		i++
	}
	a.starts = a.starts[i:]
	if len(a.starts) >= limit {
		return false
	}
	a.starts = append(a.starts, now)
	return true
}

func (m *Model) pulseMarker(slot int, id string, now time.Time, opt Options) {
	mk := &m.Markers[slot]
	mk.Latest = id
	mk.updated = now
	mk.Still = opt.Hidden || !opt.Live || !m.pulses.start(now, m.cfg.MaxPulses)
	if !mk.Still {
		mk.Pulse ^= 1
	}
	m.dirtyMarker(slot)
}

func (m *Model) pulseArc(slot int, now time.Time, opt Options) {
	a := &m.Arcs[slot]
	a.updated = now
	a.Still = opt.Hidden || !opt.Live || !m.fades.start(now, m.cfg.MaxFades)
	if !a.Still {
		a.Pulse ^= 1
	}
	m.dirtyArc(slot)
}

// allocMarker returns a free marker slot (see alloc).
func (m *Model) allocMarker() int {
	return alloc(&m.markerSlots, &m.Markers, m.cfg.MaxMarkers, m.cfg.ChunkSize,
		func(mk *Marker) time.Time { return mk.updated }, m.evictMarker)
}

// allocArc returns a free arc slot (see alloc).
func (m *Model) allocArc() int {
	return alloc(&m.arcSlots, &m.Arcs, m.cfg.MaxArcs, m.cfg.ChunkSize,
		func(a *Arc) time.Time { return a.updated }, m.evictArc)
}

// evictMarker frees a marker slot and detaches every incident on it (and
// their arcs).
func (m *Model) evictMarker(slot int) {
	// The last unplace empties the slot, and members with it.
	for m.Markers[slot].members != nil {
		m.unplace(m.Markers[slot].members)
	}
}

func (m *Model) evictArc(slot int) {
	for m.Arcs[slot].members != nil {
		m.unplaceArc(m.Arcs[slot].members)
	}
}

// unplace removes an incident from its marker and arc, freeing slots that
// become empty.
func (m *Model) unplace(e *entry) {
	m.unplaceArc(e)
	if e.marker < 0 {
		return
	}
	slot := e.marker
	e.marker = -1
	if mk := &m.Markers[slot]; mk.leave(e, onMarker) {
		delete(m.cells, mk.key)
		*mk = Marker{Pulse: mk.Pulse}
		m.markerSlots.release(slot)
	}
	m.dirtyMarker(slot)
}

func (m *Model) unplaceArc(e *entry) {
	if e.arc < 0 {
		return
	}
	slot := e.arc
	e.arc = -1
	if a := &m.Arcs[slot]; a.leave(e, onArc) {
		delete(m.pairs, a.key)
		*a = Arc{Pulse: a.Pulse}
		m.arcSlots.release(slot)
	}
	m.dirtyArc(slot)
}

// Expire removes markers and arcs whose incidents are older than the TTL
// at now. The incidents stay held (listed, counted, searchable by a
// filter) until MaxIncidents newer ones push them out.
func (m *Model) Expire(now time.Time) {
	m.now = now
	for _, e := range m.entries {
		if (e.marker >= 0 || e.arc >= 0) && !e.expires.After(now) {
			m.unplace(e)
		}
	}
	m.stats.expire(now)
}

// list puts in at the top of the sidebar, replacing an older copy.
func (m *Model) list(in incident.Incident) {
	for i := range m.sidebar {
		if m.sidebar[i].ID == in.ID {
			m.sidebar = append(m.sidebar[:i], m.sidebar[i+1:]...)
			break
		}
	}
	if len(m.sidebar) >= m.cfg.SidebarRows {
		m.sidebar = m.sidebar[:m.cfg.SidebarRows-1]
	}
	m.sidebar = append(m.sidebar, incident.Incident{})
	copy(m.sidebar[1:], m.sidebar)
	m.sidebar[0] = in
	m.dirtySidebar()
}

// unlist takes an incident off the sidebar, and lists the next newest
// kept incident in its place.
func (m *Model) unlist(id string) {
	if m.inSidebar(id) != nil {
		m.rebuildSidebar()
	}
}

// rebuildSidebar lists the newest SidebarRows incidents the filter keeps,
// newest (latest copy applied) first.
func (m *Model) rebuildSidebar() {
	kept := make([]*entry, 0, len(m.entries))
	for _, e := range m.entries {
		if e.match {
			kept = append(kept, e)
		}
	}
	slices.SortFunc(kept, func(a, b *entry) int { return cmp.Compare(b.order, a.order) })
	m.sidebar = m.sidebar[:0]
	for _, e := range kept[:min(len(kept), m.cfg.SidebarRows)] {
		m.sidebar = append(m.sidebar, e.in)
	}
	m.dirtySidebar()
}

// trim lets the incidents active longest ago go until an eighth of
// MaxIncidents is free (see Config.MaxIncidents).
func (m *Model) trim() {
	all := make([]*entry, 0, len(m.entries))
	for _, e := range m.entries {
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b *entry) int { return cmp.Compare(a.order, b.order) })
	keep := m.cfg.MaxIncidents - m.cfg.MaxIncidents/8
	listed := false
	for _, e := range all[:len(all)-keep] {
		m.unplace(e)
		m.forgetHost(e)
		delete(m.entries, e.in.ID)
		listed = listed || m.inSidebar(e.in.ID) != nil
	}
	if listed {
		m.rebuildSidebar()
	}
}

func (m *Model) inSidebar(id string) *incident.Incident {
	for i := range m.sidebar {
		if m.sidebar[i].ID == id {
			return &m.sidebar[i]
		}
	}
	return nil
}

// Incident returns the listed or tracked incident with the given id.
func (m *Model) Incident(id string) (incident.Incident, bool) {
	if e, ok := m.entries[id]; ok {
		return e.in, true
	}
	if in := m.inSidebar(id); in != nil {
		return *in, true
	}
	return incident.Incident{}, false
}

// Select highlights one incident (its sidebar row, marker and arc); an
// empty id clears the selection.
func (m *Model) Select(id string) {
	if id == m.selected {
		return
	}
	m.dirtySelection()
	m.selected = id
	m.dirtySelection()
	m.dirtySidebar()
}

func (m *Model) dirtySelection() {
	if e, ok := m.entries[m.selected]; ok {
		if e.marker >= 0 {
			m.dirtyMarker(e.marker)
		}
		if e.arc >= 0 {
			m.dirtyArc(e.arc)
		}
	}
}

// Selected returns the selected incident id and its marker and arc slots
// (-1 when it has none).
func (m *Model) Selected() (id string, marker, arc int) {
	if e, ok := m.entries[m.selected]; ok {
		return m.selected, e.marker, e.arc
	}
	return m.selected, -1, -1
}

func (m *Model) announce(in *incident.Incident, opt Options) {
	if !opt.Live || in.Severity.Rank() < incident.High.Rank() {
		return
	}
	where := in.Country
	if where == "" {
		where = "unknown location"
	}
	m.Announcement = string(in.Severity) + " severity " + Label(in.Source) + " from " + in.IP + ", " + where
	m.AnnounceGen++
	m.touch()
}
