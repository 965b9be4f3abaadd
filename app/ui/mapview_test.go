package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/app/live"
	"github.com/attackmap/attackmap/incident"
)

func TestHomeMarksSayNameAgeAndSilence(t *testing.T) {
	now := t0
	hosts := []live.HostView{
		{Name: "db-1", X: 100, Y: 200, HasLoc: true, LastSeen: now.Add(-12 * time.Minute), Silent: true},
		{Name: "nowhere", HasLoc: false, LastSeen: now},
		{Name: "web-1", X: 524.1, Y: 338.7, HasLoc: true, LastSeen: now.Add(-2*time.Minute - 10*time.Second)},
		{Name: "<b>" + strings.Repeat("x", 100), X: 1, Y: 1, HasLoc: true, LastSeen: now},
	}
	got := homeMarks(hosts, now)
	if len(got) != 3 {
		t.Fatalf("%d homes, want the 3 located ones: %+v", len(got), got)
	}
	for _, tc := range []struct {
		i             int
		name, label   string
		silent        bool
		titleContains string
	}{
		{0, "db-1", "silent 12m", true, "silent: no incident for 12m"},
		{1, "web-1", "2m", false, "last incident 2m ago"},
	} {
		h := got[tc.i]
		if h.Name != tc.name || h.Label != tc.label || h.Silent != tc.silent || !strings.Contains(h.Title, tc.titleContains) {
			t.Errorf("home %d = %+v, want %s %q silent=%v", tc.i, h, tc.name, tc.label, tc.silent)
		}
	}
	if n := len([]rune(got[2].Name)); n > maxHostName+1 {
		t.Errorf("a long host name is %d runes on the map", n)
	}
}

func TestAgoIsShort(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second: "now", 42 * time.Second: "42s", 12 * time.Minute: "12m", 3 * time.Hour: "3h", 72 * time.Hour: "3d",
	} {
		if got := ago(d); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestHomeLayerDrawsAHouseWithTheHostName(t *testing.T) {
	html := load(t, &homeLayer{Homes: []homeMark{
		{Name: "web-1", Label: "now", Title: "sensor web-1", X: 524.1, Y: 338.7},
		{Name: "db-1", Label: "silent 12m", Title: "sensor db-1", X: 100, Y: 200, Silent: true},
	}})
	for _, want := range []string{`data-host="web-1"`, `>web-1</text>`, `>now</text>`, `class="home silent"`, `>silent 12m</text>`,
		`transform-origin:524.1px 338.7px`, `<title>sensor web-1</title>`} {
		if !strings.Contains(html, want) {
			t.Errorf("home layer lacks %s:\n%s", want, html)
		}
	}
}

// TestMarkerChunkDrawsAClusterInItsNewestMembersSlot: Paris and Brussels
// cluster at zoom 1; the chunk draws one cluster circle with the count
// in Brussels' slot (updated last) and hides Paris.
func TestMarkerChunkDrawsAClusterInItsNewestMembersSlot(t *testing.T) {
	m := live.New(live.Config{})
	m.Apply(inc("par", "192.0.2.1", incident.High, 48.86, 2.35), t0, live.Options{Live: true})
	m.Apply(inc("bru", "192.0.2.2", incident.Critical, 50.85, 4.35), t0.Add(time.Second), live.Options{Live: true})
	m.Apply(inc("syd", "192.0.2.3", incident.Low, -33.87, 151.21), t0, live.Options{Live: true})
	var cl live.Clustering
	cl.Update(m, live.ClusterCell(live.Screen{W: 920, H: 700}, 0), t0.Add(time.Second))
	html := load(t, &markerChunk{M: m, Index: 0, Gen: m.MarkerChunkGen(0), CGen: cl.ChunkGen[0], Clus: &cl})
	for _, want := range []string{`class="mk hid"`, `class="mk cl p1 s-critical" data-markers="2" data-slot="1"`, `data-markers="2"`, `>2</text>`,
		`class="mk p1 s-low" data-slot="2"`} {
		if !strings.Contains(html, want) {
			t.Errorf("chunk lacks %s:\n%s", want, html)
		}
	}
	// Ten seconds later the same chunk draws the cluster settled: a zoom
	// that shows it again must not replay its pulse.
	cl.Update(m, cl.Cell, t0.Add(10*time.Second))
	html = load(t, &markerChunk{M: m, Index: 0, Gen: m.MarkerChunkGen(0), CGen: cl.ChunkGen[0], Clus: &cl})
	if !strings.Contains(html, `class="mk cl still s-critical"`) {
		t.Errorf("a cluster whose pulse ended is not drawn settled:\n%s", html)
	}
}

func TestMapViewPrerendersTheMapAndItsControls(t *testing.T) {
	html := load(t, &mapView{M: live.New(live.Config{})})
	for _, want := range []string{`id="map-wrap"`, `tabindex="0"`, `class="map-view"`, `src="/web/world.svg"`,
		`class="layer heat off"`, `class="layer arcs"`, `id="map"`, `id="zoom-in"`, `id="zoom-out"`, `id="zoom-reset"`,
		`id="heat-toggle"`, `aria-pressed="false"`, `viewBox="0 1.6 1000 708.0"`} {
		if !strings.Contains(html, want) {
			t.Errorf("map lacks %s", want)
		}
	}
}
