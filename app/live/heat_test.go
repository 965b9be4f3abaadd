package live

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

func TestHeatBandsFollowDensity(t *testing.T) {
	m := New(Config{})
	// 30 incidents in Paris (one marker), one in Sydney.
	for i := 0; i < 30; i++ {
		m.Apply(inc(fmt.Sprint("par", i), incident.High, 48.86, 2.35, t0), t0, live)
	}
	m.Apply(inc("syd", incident.Low, -33.87, 151.21, t0), t0, live)
	var h Heat
	if !h.Update(m, 10, t0) {
		t.Fatal("the first update drew nothing")
	}
	hot, cool := h.Paths[HeatBands-1], h.Paths[0]
	if hot == "" || cool == "" {
		t.Fatalf("bands %q", h.Paths)
	}
	// Paris's cell (x 506.5/10 = 50) is the hottest; Sydney's (x 920) not.
	if !strings.Contains(hot, "M500 ") {
		t.Errorf("Paris is not in the hottest band: %q", hot)
	}
	if strings.Contains(hot, "M920 ") {
		t.Errorf("Sydney (1 incident) is in the hottest band: %q", hot)
	}
	for b, p := range h.Paths {
		if strings.Count(p, "M") != strings.Count(p, "z") {
			t.Errorf("band %d: broken path %q", b, p)
		}
	}
}

func TestHeatIsComputedAtMostOnceASecond(t *testing.T) {
	m := New(Config{})
	m.Apply(inc("a", incident.High, 48.86, 2.35, t0), t0, live)
	var h Heat
	h.Update(m, 10, t0)
	gen := h.Gen
	m.Apply(inc("b", incident.High, -33.87, 151.21, t0), t0, live)
	if h.Update(m, 10, t0.Add(HeatEvery-time.Millisecond)) || h.Gen != gen {
		t.Fatal("recomputed within HeatEvery")
	}
	if !h.Update(m, 10, t0.Add(HeatEvery)) || h.Gen == gen {
		t.Fatal("not recomputed after HeatEvery with a new incident")
	}
	if h.Update(m, 10, t0.Add(3*HeatEvery)) {
		t.Fatal("recomputed although nothing changed")
	}
}

func TestHeatOfAnEmptyMapIsEmpty(t *testing.T) {
	var h Heat
	h.Update(New(Config{}), 10, t0)
	for _, p := range h.Paths {
		if p != "" {
			t.Fatalf("paths %q", h.Paths)
		}
	}
}

func BenchmarkHeat2000(b *testing.B) {
	m := New(Config{})
	for i := 0; i < 2000; i++ {
		m.Apply(inc(fmt.Sprint("b", i), incident.High, -55+float64(i/100)*6.5, -178.2+float64(i%100)*3.6, t0), t0, live)
	}
	var h Heat
	b.ReportAllocs()
	now := t0
	for b.Loop() {
		now = now.Add(HeatEvery)
		h.modelGen = 0 // as if the model changed
		h.Update(m, 10, now)
	}
}
