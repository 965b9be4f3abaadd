package live

import (
	"fmt"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// visible counts what a clustering draws: clusters, and markers on their
// own.
func visible(m *Model, c *Clustering) (clusters, singles int) {
	for i, mk := range m.Markers {
		if !mk.Used {
			continue
		}
		s := c.Slots[i]
		switch {
		case s.Hidden:
		case s.Cluster >= 0:
			clusters++
		default:
			singles++
		}
	}
	return clusters, singles
}

func TestClustersMergeCloseMarkersAndSplitWhenZoomedIn(t *testing.T) {
	m := New(Config{})
	// Paris and Brussels are 2° apart: 5.6 map units, 7 px at zoom 1 on a
	// 920 px map, 180 px at zoom 32. Sydney is far from both.
	m.Apply(inc("par", incident.High, 48.86, 2.35, t0), t0, live)
	m.Apply(inc("bru", incident.Critical, 50.85, 4.35, t0.Add(time.Second)), t0.Add(time.Second), live)
	m.Apply(inc("bru2", incident.Low, 50.85, 4.35, t0.Add(2*time.Second)), t0.Add(2*time.Second), live)
	m.Apply(inc("syd", incident.Low, -33.87, 151.21, t0), t0, live)
	var c Clustering
	for _, tc := range []struct {
		level              int
		clusters, singles  int
		count, markers     int
		severity           incident.Severity
		repIsNewestBrussel bool
	}{
		{level: 0, clusters: 1, singles: 1, count: 3, markers: 2, severity: incident.Critical, repIsNewestBrussel: true},
		{level: 5, clusters: 0, singles: 3},
	} {
		t.Run(fmt.Sprintf("level %d", tc.level), func(t *testing.T) {
			c.Update(m, ClusterCell(screen, tc.level), t0)
			cl, si := visible(m, &c)
			if cl != tc.clusters || si != tc.singles {
				t.Fatalf("%d clusters and %d singles, want %d and %d", cl, si, tc.clusters, tc.singles)
			}
			if tc.clusters == 0 {
				return
			}
			var got *Cluster
			for i := range c.Clusters {
				if c.Clusters[i].Markers > 1 {
					got = &c.Clusters[i]
				}
			}
			if got.Count != tc.count || got.Markers != tc.markers || got.Severity != tc.severity {
				t.Fatalf("cluster %+v", *got)
			}
			// The cluster is drawn by the member updated last (Brussels).
			if m.Markers[got.Rep].Latest != "bru2" {
				t.Fatalf("cluster drawn by the marker of %s, want the newest (bru2)", m.Markers[got.Rep].Latest)
			}
			// Its centre is between the two, nearer Brussels (2 of 3).
			par, bru := m.Markers[0], m.Markers[1]
			if !(got.X > par.X && got.X < bru.X) || got.X-par.X < bru.X-got.X {
				t.Fatalf("centre %.1f not weighted between %.1f and %.1f", got.X, par.X, bru.X)
			}
		})
	}
}

func TestClusterSplitLevelIsWhereTheMembersPart(t *testing.T) {
	m := New(Config{})
	m.Apply(inc("par", incident.High, 48.86, 2.35, t0), t0, live)
	m.Apply(inc("bru", incident.High, 50.85, 4.35, t0), t0, live)
	var c Clustering
	c.Update(m, ClusterCell(screen, 0), t0)
	ci := c.Slots[0].Cluster
	if ci < 0 {
		t.Fatal("no cluster at zoom 1")
	}
	l := c.SplitLevel(m, screen, ci, 0)
	if l < 1 || l >= Levels {
		t.Fatalf("split level %d", l)
	}
	var at Clustering
	at.Update(m, ClusterCell(screen, l), t0)
	if cl, si := visible(m, &at); cl != 0 || si != 2 {
		t.Fatalf("at the split level %d: %d clusters, %d singles", l, cl, si)
	}
	var before Clustering
	before.Update(m, ClusterCell(screen, l-1), t0)
	if cl, _ := visible(m, &before); cl != 1 {
		t.Fatalf("one level before the split level they are %d clusters", cl)
	}
}

// TestClusterChunkGenerationsChangeOnlyWhereTheDrawingDoes: an update that
// changes nothing bumps no chunk; a new member of a cluster bumps the
// chunks of the old face and the new one.
func TestClusterChunkGenerationsChangeOnlyWhereTheDrawingDoes(t *testing.T) {
	m := New(Config{ChunkSize: 4})
	for i := 0; i < 12; i++ {
		m.Apply(inc(fmt.Sprint("far", i), incident.Low, -50+float64(i)*10, -170+float64(i)*30, t0), t0, live)
	}
	m.Apply(inc("par", incident.High, 48.86, 2.35, t0), t0, live) // slot 12, chunk 3
	var c Clustering
	cell := ClusterCell(screen, 0)
	c.Update(m, cell, t0)
	first := append([]uint64(nil), c.ChunkGen...)
	c.Update(m, cell, t0)
	for i := range first {
		if c.ChunkGen[i] != first[i] {
			t.Fatalf("chunk %d changed without a change", i)
		}
	}
	t1 := t0.Add(time.Second)
	m.Apply(inc("bru", incident.Critical, 50.85, 4.35, t1), t1, live) // slot 13, chunk 3: joins Paris
	c.Update(m, cell, t1)
	for i := range first {
		if changed := c.ChunkGen[i] != first[i]; changed != (i == 3) {
			t.Errorf("chunk %d changed: %v", i, changed)
		}
	}
	if !c.Slots[12].Hidden || c.Slots[13].Hidden || c.Slots[13].Cluster < 0 {
		t.Fatalf("slots %+v %+v: Brussels, the newest, should draw the cluster", c.Slots[12], c.Slots[13])
	}
}

func TestPulsingEndsAfterThePulse(t *testing.T) {
	m := New(Config{})
	m.Apply(inc("a", incident.High, 10, 10, t0), t0, live)
	if !m.Markers[0].Pulsing(t0.Add(PulseDuration - time.Millisecond)) {
		t.Fatal("not pulsing during the pulse")
	}
	if m.Markers[0].Pulsing(t0.Add(PulseDuration)) {
		t.Fatal("still pulsing after the pulse: a zoom would replay it")
	}
	m.Apply(inc("b", incident.High, 20, 20, t0), t0, Options{Live: true, Hidden: true})
	if m.Markers[1].Pulsing(t0) {
		t.Fatal("an incident that arrived hidden pulses")
	}
}

// BenchmarkCluster2000 groups 2,000 markers spread over the world at zoom
// 1 (the bounded work of one map render with clusters).
func BenchmarkCluster2000(b *testing.B) {
	m := New(Config{})
	for i := 0; i < 2000; i++ {
		lat := -55 + float64(i/100)*6.5
		lon := -178.2 + float64(i%100)*3.6
		m.Apply(inc(fmt.Sprint("b", i), incident.High, lat, lon, t0), t0, live)
	}
	var c Clustering
	cell := ClusterCell(screen, 0)
	c.Update(m, cell, t0)
	b.ReportAllocs()
	for b.Loop() {
		c.Update(m, cell, t0)
	}
}
