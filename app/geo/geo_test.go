package geo

import (
	"math"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/project"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestProjectPlacesKnownPoints(t *testing.T) {
	tests := []struct {
		name string
		in   orb.Point
		x, y float64
	}{
		{"null island is the centre", orb.Point{0, 0}, 500, 500},
		{"180°W is the left edge", orb.Point{-180, 0}, 0, 500},
		{"180°E is the right edge", orb.Point{180, 0}, 1000, 500},
		{"85°N is near the top", orb.Point{0, 85}, 500, 1.64},
		{"Frankfurt", orb.Point{8.68, 50.11}, 524.11, 338.67},
		{"Sydney", orb.Point{151.21, -33.87}, 920.03, 600.10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Project(tt.in)
			if !near(p[0], tt.x, 0.01) || !near(p[1], tt.y, 0.01) {
				t.Fatalf("Project(%v) = %v, want [%g %g]", tt.in, p, tt.x, tt.y)
			}
			back := Unproject(p)
			if !near(back[0], tt.in[0], 1e-9) || !near(back[1], tt.in[1], 1e-9) {
				t.Fatalf("Unproject(Project(%v)) = %v", tt.in, back)
			}
		})
	}
}

func TestProjectClampsLatitude(t *testing.T) {
	for _, lat := range []float64{85, 89.9, 90, 1000} {
		if got, want := Project(orb.Point{10, lat}), Project(orb.Point{10, MaxLat}); got != want {
			t.Errorf("lat %g projects to %v, want the clamp %v", lat, got, want)
		}
		if got, want := Project(orb.Point{10, -lat}), Project(orb.Point{10, -MaxLat}); got != want {
			t.Errorf("lat %g projects to %v, want the clamp %v", -lat, got, want)
		}
	}
	if p := Project(orb.Point{0, math.Inf(1)}); math.IsInf(p[1], 0) || math.IsNaN(p[1]) {
		t.Errorf("infinite latitude gave %v", p)
	}
}

func TestClampWrapsLongitude(t *testing.T) {
	tests := []struct{ in, want float64 }{{190, -170}, {-190, 170}, {540, 180}, {180, 180}, {-180, -180}, {0, 0}}
	for _, tt := range tests {
		if got := Clamp(orb.Point{tt.in, 0})[0]; !near(got, tt.want, 1e-9) && !(near(math.Abs(got), 180, 1e-9) && near(math.Abs(tt.want), 180, 1e-9)) {
			t.Errorf("Clamp lon %g = %g, want %g", tt.in, got, tt.want)
		}
	}
}

func TestViewBoxCoversTheInhabitedWorld(t *testing.T) {
	x, y, w, h := ViewBox()
	if x != 0 || w != Width {
		t.Fatalf("viewBox x %g w %g", x, w)
	}
	for _, p := range []orb.Point{{-70.9, -53.2} /* Punta Arenas */, {-0.1, 51.5}, {174.8, -41.3}, {-149.9, 61.2}} {
		q := Project(p)
		if q[1] < y || q[1] > y+h {
			t.Errorf("%v projects to y %g, outside the view %g..%g", p, q[1], y, y+h)
		}
	}
	if got := ViewBoxAttr(); got != "0 1.6 1000 708.0" {
		t.Errorf("ViewBoxAttr = %q", got)
	}
}

func TestGreatCircle(t *testing.T) {
	berlin, nyc := orb.Point{13.4, 52.5}, orb.Point{-74.0, 40.7}
	line := GreatCircle(berlin, nyc, 0)
	if line[0] != berlin || line[len(line)-1] != nyc {
		t.Fatalf("ends are %v and %v", line[0], line[len(line)-1])
	}
	d := Distance(berlin, nyc)
	if !near(d, 57.4, 0.2) {
		t.Fatalf("Berlin-NYC is %g°, want about 57.4°", d)
	}
	if want := int(math.Ceil(d/StepDegrees)) + 1; len(line) != want {
		t.Fatalf("%d points, want %d", len(line), want)
	}
	// Every sample is on the great circle: the distances along add up, and
	// the steps are equal.
	var sum float64
	for i := 1; i < len(line); i++ {
		s := Distance(line[i-1], line[i])
		sum += s
		if !near(s, d/float64(len(line)-1), 1e-6) {
			t.Fatalf("step %d is %g°", i, s)
		}
	}
	if !near(sum, d, 1e-6) {
		t.Fatalf("path length %g°, want %g°", sum, d)
	}
	// A transatlantic great circle bulges north of both ends.
	maxLat := -90.0
	for _, p := range line {
		maxLat = math.Max(maxLat, p[1])
	}
	if maxLat < 55 {
		t.Fatalf("highest point %g°N; the great circle should pass north of 55°", maxLat)
	}
}

func TestGreatCircleDegenerateCases(t *testing.T) {
	p := orb.Point{10, 10}
	if got := GreatCircle(p, p, 0); len(got) != 2 || got[0] != p || got[1] != p {
		t.Errorf("same point gave %v", got)
	}
	a, b := orb.Point{0, 0}, orb.Point{180, 0}
	line := GreatCircle(a, b, 10)
	if line[0] != a || line[len(line)-1] != b {
		t.Fatalf("antipodal ends %v %v", line[0], line[len(line)-1])
	}
	for i := 1; i < len(line); i++ {
		if s := Distance(line[i-1], line[i]); s > 10+1e-9 || math.IsNaN(s) {
			t.Fatalf("antipodal step %d is %g°", i, s)
		}
	}
	pole := GreatCircle(orb.Point{0, 90}, orb.Point{0, -90}, 30)
	for _, q := range pole {
		if math.IsNaN(q[0]) || math.IsNaN(q[1]) {
			t.Fatalf("pole to pole gave NaN: %v", pole)
		}
	}
}

func TestSplitAntimeridian(t *testing.T) {
	tests := []struct {
		name  string
		in    orb.LineString
		parts int
	}{
		{"no crossing stays whole", orb.LineString{{10, 0}, {20, 5}, {30, 10}}, 1},
		{"eastwards crossing", orb.LineString{{170, 0}, {-170, 10}}, 2},
		{"westwards crossing", orb.LineString{{-170, 0}, {170, 10}}, 2},
		{"there and back", orb.LineString{{170, 0}, {-170, 0}, {170, 0}}, 3},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitAntimeridian(tt.in)
			if len(got) != tt.parts {
				t.Fatalf("%d parts, want %d: %v", len(got), tt.parts, got)
			}
			for _, part := range got {
				for i := 1; i < len(part); i++ {
					if math.Abs(part[i][0]-part[i-1][0]) > 180 {
						t.Fatalf("part %v still jumps across the map", part)
					}
				}
			}
		})
	}
	got := SplitAntimeridian(orb.LineString{{170, 0}, {-170, 10}})
	if end, start := got[0][len(got[0])-1], got[1][0]; end != (orb.Point{180, 5}) || start != (orb.Point{-180, 5}) {
		t.Fatalf("cut at %v / %v, want [180 5] / [-180 5]", end, start)
	}
}

func TestTokyoToSanFranciscoCrossesOnce(t *testing.T) {
	parts := SplitAntimeridian(GreatCircle(orb.Point{139.7, 35.7}, orb.Point{-122.4, 37.8}, 0))
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	if parts[0][len(parts[0])-1][0] != 180 || parts[1][0][0] != -180 {
		t.Fatalf("parts do not meet at the antimeridian: %v", parts)
	}
}

func BenchmarkArc(b *testing.B) {
	for b.Loop() {
		for _, part := range SplitAntimeridian(GreatCircle(orb.Point{139.7, 35.7}, orb.Point{-122.4, 37.8}, 0)) {
			for _, p := range part {
				_ = Project(p)
			}
		}
	}
}

// Unproject is the inverse of Project, for the round-trip test.
func Unproject(q orb.Point) orb.Point {
	s := (2 * halfWorld) / Width
	return project.Mercator.ToWGS84(orb.Point{q[0]*s - halfWorld, halfWorld - q[1]*s})
}
