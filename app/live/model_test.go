package live

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/app/geo"
	"github.com/attackmap/attackmap/incident"
	"github.com/paulmach/orb"
)

var t0 = time.Date(2026, 3, 22, 14, 32, 0, 0, time.UTC)

func inc(id string, sev incident.Severity, lat, lon float64, ts time.Time) incident.Incident {
	in := incident.Incident{ID: id, Source: "ssh_bruteforce", Severity: sev, IP: "203.0.113.7",
		Country: "DE", TS: ts, Count: 1}
	in.SetLocation(lat, lon)
	return in
}

var live = Options{Live: true}

func TestAddsAMarkerAtTheProjectedPlace(t *testing.T) {
	m := New(Config{})
	in := inc("a", incident.High, 50.11, 8.68, t0)
	if got := m.Apply(in, t0, live); got != Added {
		t.Fatalf("Apply = %v", got)
	}
	if len(m.Markers) != 1 {
		t.Fatalf("%d markers", len(m.Markers))
	}
	mk := m.Markers[0]
	p := geo.Project(orb.Point{8.68, 50.11})
	if !mk.Used || mk.X != round1(p[0]) || mk.Y != round1(p[1]) || mk.Severity != incident.High || mk.Count != 1 || mk.Latest != "a" {
		t.Fatalf("marker %+v", mk)
	}
	if mk.Still {
		t.Fatal("a live incident on a visible page must pulse")
	}
	if got := m.Sidebar(); len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("sidebar %v", got)
	}
}

func TestDuplicatesAndUpdates(t *testing.T) {
	m := New(Config{})
	in := inc("a", incident.Medium, 10, 10, t0)
	m.Apply(in, t0, live)
	pulse := m.Markers[0].Pulse
	if got := m.Apply(in, t0, live); got != Duplicate {
		t.Fatalf("exact repeat gave %v", got)
	}
	if m.Markers[0].Count != 1 || m.Markers[0].Pulse != pulse {
		t.Fatal("a duplicate changed the marker")
	}
	up := in
	up.Count, up.Severity = 9, incident.Critical
	up.LastSeen = t0.Add(time.Minute)
	if got := m.Apply(up, t0.Add(time.Minute), live); got != Updated {
		t.Fatalf("newer copy gave %v", got)
	}
	mk := m.Markers[0]
	if mk.Count != 1 || mk.Severity != incident.Critical || mk.Pulse == pulse {
		t.Fatalf("update did not raise and re-pulse the same marker: %+v", mk)
	}
	if len(m.Sidebar()) != 1 || m.Sidebar()[0].Count != 9 {
		t.Fatalf("sidebar %v", m.Sidebar())
	}
	if got := m.Apply(in, t0.Add(time.Minute), live); got != Duplicate {
		t.Fatalf("an older copy after the update gave %v", got)
	}
}

func TestRejectsImplausibleIncidents(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name   string
		change func(*incident.Incident)
	}{
		{"unknown severity", func(in *incident.Incident) { in.Severity = "hgih" }},
		{"no id", func(in *incident.Incident) { in.ID = "" }},
		{"no time", func(in *incident.Incident) { in.TS = time.Time{} }},
		{"lat without lon", func(in *incident.Incident) { in.Lon = nil }},
		{"lat out of range", func(in *incident.Incident) { in.Lat = f(91) }},
		{"target out of range", func(in *incident.Incident) { in.Target = &incident.Location{Lat: 0, Lon: 500} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Config{})
			in := inc("a", incident.High, 10, 10, t0)
			tt.change(&in)
			if got := m.Apply(in, t0, live); got != Invalid || m.Rejected != 1 || len(m.Markers) != 0 || len(m.Sidebar()) != 0 {
				t.Fatalf("got %v, rejected %d", got, m.Rejected)
			}
		})
	}
}

func TestAggregatesOnePlace(t *testing.T) {
	m := New(Config{})
	for i := 0; i < 300; i++ {
		sev := incident.Low
		if i == 150 {
			sev = incident.Critical
		}
		m.Apply(inc(fmt.Sprint(i), sev, 52.52, 13.40, t0), t0, live)
	}
	if len(m.Markers) != 1 {
		t.Fatalf("%d markers for one place, want 1", len(m.Markers))
	}
	if mk := m.Markers[0]; mk.Count != 300 || mk.Severity != incident.Critical {
		t.Fatalf("marker %+v", mk)
	}
	if r := m.Markers[0].Radius(); r <= 4 || r > 8 {
		t.Fatalf("radius %g", r)
	}
	m.Apply(inc("far", incident.Low, -33.87, 151.21, t0), t0, live)
	if len(m.Markers) != 2 {
		t.Fatalf("another city shares the marker")
	}
}

func TestExpiryFreesSlotsAndReusesThemWithoutShifting(t *testing.T) {
	m := New(Config{TTL: 5 * time.Minute})
	places := [][2]float64{{10, 10}, {20, 20}, {30, 30}}
	for i, p := range places {
		at := t0.Add(time.Duration(i) * time.Minute)
		m.Apply(inc(fmt.Sprint(i), incident.Low, p[0], p[1], at), at, live)
	}
	third := m.Markers[2]
	// At t0+5m30s the first incident (t0) is gone, the others stay.
	m.Expire(t0.Add(5*time.Minute + 30*time.Second))
	if m.Markers[0].Used || !m.Markers[1].Used || !m.Markers[2].Used {
		t.Fatalf("after expiry: %+v", m.Markers)
	}
	if m.Markers[2].X != third.X {
		t.Fatal("a later marker moved slots")
	}
	gen := m.MarkerChunkGen(0)
	m.Apply(inc("new", incident.High, 40, 40, t0.Add(6*time.Minute)), t0.Add(6*time.Minute), live)
	if len(m.Markers) != 3 || !m.Markers[0].Used || m.Markers[0].Latest != "new" {
		t.Fatalf("the freed slot 0 was not reused: %d slots, %+v", len(m.Markers), m.Markers[0])
	}
	if m.MarkerChunkGen(0) == gen {
		t.Fatal("the reused slot's chunk was not marked dirty")
	}
	// The sidebar still lists the expired incident.
	if _, ok := m.Incident("0"); !ok {
		t.Fatal("expired incident vanished from the sidebar")
	}
}

func TestOldIncidentsAreListedButNotPlaced(t *testing.T) {
	m := New(Config{})
	m.Apply(inc("old", incident.High, 10, 10, t0.Add(-time.Hour)), t0, Options{})
	if len(m.Markers) != 0 || len(m.Sidebar()) != 1 {
		t.Fatalf("markers %d, sidebar %d", len(m.Markers), len(m.Sidebar()))
	}
}

func TestCapEvictsTheOldestMarker(t *testing.T) {
	m := New(Config{MaxMarkers: 3, ChunkSize: 2})
	for i := 0; i < 3; i++ {
		m.Apply(inc(fmt.Sprint(i), incident.Low, float64(10*i), 0, t0), t0.Add(time.Duration(i)*time.Second), live)
	}
	// Touch marker 0 so that marker 1 is now the oldest.
	up := inc("0", incident.Low, 0, 0, t0)
	up.Count = 2
	m.Apply(up, t0.Add(10*time.Second), live)
	m.Apply(inc("x", incident.Low, 40, 0, t0), t0.Add(11*time.Second), live)
	if len(m.Markers) != 3 {
		t.Fatalf("%d markers, cap is 3", len(m.Markers))
	}
	if m.Markers[1].Latest != "x" || m.Markers[0].Latest != "0" || m.Markers[2].Latest != "2" {
		t.Fatalf("slots %q %q %q, want 0 x 2", m.Markers[0].Latest, m.Markers[1].Latest, m.Markers[2].Latest)
	}
	if m.MarkerChunks() != 2 {
		t.Fatalf("%d chunks", m.MarkerChunks())
	}
}

func TestArcsShareAndThickenPerPair(t *testing.T) {
	m := New(Config{})
	mk := func(id string, lat, lon float64) incident.Incident {
		in := inc(id, incident.High, lat, lon, t0)
		in.Target = &incident.Location{Lat: 50.11, Lon: 8.68}
		return in
	}
	m.Apply(mk("a", 40.7, -74), t0, live)
	if len(m.Arcs) != 1 || m.Arcs[0].Count != 1 {
		t.Fatalf("arcs %+v", m.Arcs)
	}
	w1 := m.Arcs[0].Width()
	m.Apply(mk("b", 40.7, -74), t0, live)
	m.Apply(mk("c", 40.7, -74), t0, live)
	if len(m.Arcs) != 1 || m.Arcs[0].Count != 3 {
		t.Fatalf("a repeated pair made %d arcs", len(m.Arcs))
	}
	if w3 := m.Arcs[0].Width(); w3 != 2*w1 {
		t.Fatalf("width %g for 3, want log2(4)/log2(2) = 2 times %g", w3, w1)
	}
	m.Apply(mk("d", 35.7, 139.7), t0, live)
	if len(m.Arcs) != 2 {
		t.Fatalf("%d arcs", len(m.Arcs))
	}
	noTarget := inc("e", incident.Low, 1, 1, t0)
	m.Apply(noTarget, t0, live)
	if len(m.Arcs) != 2 {
		t.Fatal("an incident without a target drew an arc")
	}
	m.Expire(t0.Add(time.Hour))
	if m.Arcs[0].Used || m.Arcs[1].Used || len(m.pairs) != 0 {
		t.Fatal("arcs outlived their incidents")
	}
}

func TestArcPathSplitsAtTheAntimeridian(t *testing.T) {
	d := ArcPath(orb.Point{139.7, 35.7}, orb.Point{-122.4, 37.8})
	if strings.Count(d, "M") != 2 {
		t.Fatalf("Tokyo to San Francisco: %d subpaths, want 2: %s", strings.Count(d, "M"), d)
	}
	if !strings.HasPrefix(d, "M888.1 ") {
		t.Fatalf("path starts %.20s", d)
	}
	if d2 := ArcPath(orb.Point{13.4, 52.5}, orb.Point{-74, 40.7}); strings.Count(d2, "M") != 1 {
		t.Fatalf("Berlin to New York split: %s", d2)
	}
}

func TestHiddenPagesDoNotReplayPulses(t *testing.T) {
	m := New(Config{})
	m.Apply(inc("a", incident.High, 10, 10, t0), t0, Options{Live: true, Hidden: true})
	if !m.Markers[0].Still {
		t.Fatal("an incident that arrived while hidden will pulse when the tab returns")
	}
	m.Apply(inc("b", incident.High, 10, 10, t0), t0, live)
	if m.Markers[0].Still {
		t.Fatal("a visible live incident does not pulse")
	}
}

func TestSkewFromTheLiveStream(t *testing.T) {
	m := New(Config{TTL: 5 * time.Minute})
	// The browser clock runs 4 minutes ahead: without a skew estimate
	// every live marker would leave after a minute.
	ahead := t0.Add(4 * time.Minute)
	m.Apply(inc("a", incident.High, 10, 10, t0), ahead, live)
	if len(m.Markers) != 1 || !m.Markers[0].Used {
		t.Fatal("a fresh incident was dropped because the browser clock is ahead")
	}
	m.Expire(ahead.Add(4 * time.Minute))
	if !m.Markers[0].Used {
		t.Fatal("expired early")
	}
	m.Expire(ahead.Add(6 * time.Minute))
	if m.Markers[0].Used {
		t.Fatal("never expired")
	}
}

func TestOneFutureIncidentHidesNoOther(t *testing.T) {
	tests := []struct {
		name  string
		ahead time.Duration
	}{
		{"an hour ahead", time.Hour},
		{"four minutes ahead (the relay lets it through)", 4 * time.Minute},
		{"year 9999", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC).Sub(t0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Config{TTL: 5 * time.Minute})
			future := inc("future", incident.Critical, 10, 10, t0.Add(tt.ahead))
			future.Host = "web-1"
			m.Apply(future, t0, live)
			// Honest incidents after it, from the same host and another,
			// all appear and live their five minutes.
			for i, host := range []string{"web-1", "web-2", "web-1", "web-2"} {
				now := t0.Add(time.Duration(i+1) * 10 * time.Second)
				in := inc(fmt.Sprintf("honest-%d", i), incident.High, -30+float64(i)*20, 100, now)
				in.Host = host
				m.Apply(in, now, live)
				if _, mk, _ := selectedMarker(m, in.Host+"/"+in.ID); mk < 0 {
					t.Fatalf("%s from %s was hidden by one future incident", in.ID, host)
				}
			}
			m.Expire(t0.Add(4 * time.Minute))
			if m.Len() != 5 || usedMarkers(m) != 5 {
				t.Fatalf("%d incidents, %d markers at 4 min, want 5 and 5", m.Len(), usedMarkers(m))
			}
			// The future incident leaves with the others, on the browser's
			// clock: five minutes after it arrived.
			m.Expire(t0.Add(5*time.Minute + time.Second))
			if _, mk, _ := selectedMarker(m, "web-1/future"); mk >= 0 {
				t.Fatal("the future incident outlived its five minutes")
			}
		})
	}
}

func TestSkewIsBoundedAndPerHost(t *testing.T) {
	m := New(Config{TTL: 5 * time.Minute})
	// web-1's clock is an hour behind: its skew is capped at MaxSkew, so
	// its incidents show at most five minutes...
	for i := range 3 {
		in := inc(fmt.Sprintf("slow-%d", i), incident.High, 10, 10, t0.Add(-time.Hour))
		in.Host = "web-1"
		m.Apply(in, t0, live)
	}
	if got := m.skewOf("web-1"); got != MaxSkew {
		t.Fatalf("web-1 skew %v, want the %v bound", got, MaxSkew)
	}
	// ...and web-2, on time, is not moved by it.
	in := inc("on-time", incident.High, 40, 40, t0)
	in.Host = "web-2"
	m.Apply(in, t0, live)
	if got := m.skewOf("web-2"); got != 0 {
		t.Fatalf("web-2 skew %v, want 0", got)
	}
	m.Expire(t0.Add(5*time.Minute + time.Second))
	if usedMarkers(m) != 0 {
		t.Fatal("markers outlived five minutes on the browser's clock")
	}
}

func selectedMarker(m *Model, id string) (string, int, int) {
	m.Select(id)
	defer m.Select("")
	return m.Selected()
}

func usedMarkers(m *Model) int {
	n := 0
	for _, mk := range m.Markers {
		if mk.Used {
			n += mk.Count
		}
	}
	return n
}

func TestSelectionMarksChunksAndSidebar(t *testing.T) {
	m := New(Config{})
	in := inc("a", incident.High, 10, 10, t0)
	in.Target = &incident.Location{Lat: 50, Lon: 8}
	m.Apply(in, t0, live)
	mg, ag, sg := m.MarkerChunkGen(0), m.ArcChunkGen(0), m.SidebarGen()
	m.Select("a")
	id, mk, arc := m.Selected()
	if id != "a" || mk != 0 || arc != 0 {
		t.Fatalf("Selected = %q %d %d", id, mk, arc)
	}
	if m.MarkerChunkGen(0) == mg || m.ArcChunkGen(0) == ag || m.SidebarGen() == sg {
		t.Fatal("selection did not mark the chunks dirty")
	}
}

func TestSidebarKeepsTheNewest(t *testing.T) {
	m := New(Config{SidebarRows: 3})
	for i := 0; i < 5; i++ {
		m.Apply(inc(fmt.Sprint(i), incident.Low, 10, 10, t0), t0, live)
	}
	var ids []string
	for _, in := range m.Sidebar() {
		ids = append(ids, in.ID)
	}
	if got := strings.Join(ids, ","); got != "4,3,2" {
		t.Fatalf("sidebar %s", got)
	}
}

func TestAnnouncesHighAndCritical(t *testing.T) {
	m := New(Config{})
	m.Apply(inc("a", incident.Low, 10, 10, t0), t0, live)
	if m.AnnounceGen != 0 {
		t.Fatal("announced a low incident")
	}
	m.Apply(inc("b", incident.Critical, 10, 10, t0), t0, live)
	if m.AnnounceGen != 1 || m.Announcement != "critical severity SSH brute force from 203.0.113.7, DE" {
		t.Fatalf("announcement %q", m.Announcement)
	}
	m.Apply(inc("c", incident.Critical, 10, 10, t0), t0, Options{})
	if m.AnnounceGen != 1 {
		t.Fatal("announced an incident from the initial feed")
	}
}

func BenchmarkApply(b *testing.B) {
	m := New(Config{})
	i := 0
	for b.Loop() {
		in := inc(fmt.Sprint(i), incident.High, float64(i%170-85), float64(i%360-180), t0)
		in.Target = &incident.Location{Lat: 50, Lon: 8}
		m.Apply(in, t0, live)
		i++
	}
}

func TestBurstsPulseOnlyUpToTheCap(t *testing.T) {
	m := New(Config{MaxPulses: 3, MaxFades: 2})
	for i := 0; i < 5; i++ {
		in := inc(fmt.Sprint(i), incident.High, float64(10*i), 0, t0)
		in.Target = &incident.Location{Lat: 50, Lon: 8}
		m.Apply(in, t0, live)
	}
	pulsing, fading := 0, 0
	for _, mk := range m.Markers {
		if !mk.Still {
			pulsing++
		}
	}
	for _, a := range m.Arcs {
		if !a.Still {
			fading++
		}
	}
	if pulsing != 3 || fading != 2 {
		t.Fatalf("%d pulsing, %d fading; caps are 3 and 2", pulsing, fading)
	}
	// Once the first pulses ended, new activity pulses again.
	m.Apply(inc("late", incident.High, 60, 0, t0), t0.Add(PulseDuration), live)
	if m.Markers[5].Still {
		t.Fatal("the cap did not free up after the pulse duration")
	}
}

func TestSameIDFromTwoHostsIsTwoIncidents(t *testing.T) {
	m := New(Config{})
	a := inc("ssh_bruteforce:203.0.113.7:2026-03-22T14:32Z", incident.High, 10, 10, t0)
	a.Host = "web-1"
	b := a
	b.Host = "web-2"
	if got := m.Apply(a, t0, live); got != Added {
		t.Fatalf("web-1: %v", got)
	}
	if got := m.Apply(b, t0, live); got != Added {
		t.Fatalf("web-2's incident with the same id: %v, want Added", got)
	}
	if got := m.Apply(a, t0, live); got != Duplicate {
		t.Fatalf("web-1 again: %v, want Duplicate", got)
	}
	if got := m.Sidebar(); len(got) != 2 {
		t.Fatalf("sidebar has %d rows, want 2", len(got))
	}
	// Saved and re-applied (the offline shell): the id is not qualified twice.
	saved := m.Sidebar()[0]
	if got := m.Apply(saved, t0, live); got != Duplicate {
		t.Fatalf("re-applying a listed incident: %v, want Duplicate", got)
	}
}

func TestHeldIncidentsAreCappedActiveLongestAgoFirst(t *testing.T) {
	m := New(Config{MaxIncidents: 16, SidebarRows: 4})
	for i := range 16 {
		m.Apply(inc(fmt.Sprint(i), incident.Low, float64(i), 0, t0), t0, live)
	}
	// Incident 0 is updated: it is now the most recent activity.
	up := inc("0", incident.High, 0, 0, t0)
	up.LastSeen = t0.Add(time.Second)
	m.Apply(up, t0.Add(time.Second), live)
	m.Apply(inc("16", incident.Low, 16, 0, t0), t0.Add(2*time.Second), live)
	if m.Len() != 14 { // over the cap: an eighth (2) plus one are freed at once
		t.Fatalf("%d held, want 14", m.Len())
	}
	for _, gone := range []string{"1", "2", "3"} {
		if _, ok := m.Incident(gone); ok {
			t.Fatalf("%s, active longest ago, is still held", gone)
		}
	}
	if _, ok := m.Incident("0"); !ok {
		t.Fatal("the updated incident was evicted")
	}
	if usedMarkers(m) != 14 {
		t.Fatalf("%d markers for 14 held incidents", usedMarkers(m))
	}
	if got := sidebarIDs(m); got != "16,0,15,14" {
		t.Fatalf("sidebar %s", got)
	}
}

func TestEvictingAMarkerDetachesOnlyItsIncidents(t *testing.T) {
	m := New(Config{MaxMarkers: 2})
	for i := range 3 {
		m.Apply(inc(fmt.Sprint("a", i), incident.Low, 10, 10, t0), t0, live)
	}
	m.Apply(inc("b", incident.High, 20, 20, t0), t0.Add(time.Second), live)
	m.Apply(inc("c", incident.Low, 30, 30, t0), t0.Add(2*time.Second), live) // evicts the three a's
	if usedMarkers(m) != 2 || m.Markers[0].Latest != "c" || m.Markers[0].Count != 1 || m.Markers[1].Latest != "b" {
		t.Fatalf("markers %+v", m.Markers)
	}
	for i := range 3 {
		if _, mk, _ := selectedMarker(m, fmt.Sprint("a", i)); mk != -1 {
			t.Fatalf("a%d still points at slot %d", i, mk)
		}
	}
	// The evicted ones come back on their own cell when updated.
	up := inc("a1", incident.Low, 10, 10, t0)
	up.LastSeen = t0.Add(3 * time.Second)
	m.Apply(up, t0.Add(3*time.Second), live)
	if _, mk, _ := selectedMarker(m, "a1"); mk < 0 || m.Markers[mk].Count != 1 {
		t.Fatalf("updated a1 not placed again: slot %d", mk)
	}
}
