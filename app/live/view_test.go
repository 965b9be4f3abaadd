package live

import (
	"math"
	"testing"

	"github.com/attackmap/attackmap/app/geo"
)

// screen is a 920x700 map box (a 1280 px window minus the sidebar).
var screen = Screen{W: 920, H: 700}

func TestViewParseFormatRoundTrip(t *testing.T) {
	for _, v := range []View{
		{CX: 500, CY: 300, Zoom: 4},
		{CX: 512.3, CY: 330.1, Zoom: 20.09},
		{CX: 1, CY: 2, Zoom: 32},
		HomeView(),
	} {
		t.Run(v.String(), func(t *testing.T) {
			got, err := ParseView(v.String())
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != v.String() {
				t.Fatalf("ParseView(%q) = %+v, want %+v", v.String(), got, v.Bound())
			}
		})
	}
}

func TestParseViewRejectsWhatIsNotAView(t *testing.T) {
	for _, s := range []string{"1,2", "1,2,3,4", "a,b,c", "NaN,1,2", "1,Inf,2", "1,2,", ",,", "1;2;3",
		"1,2,3" + string(make([]byte, 80))} {
		t.Run(s, func(t *testing.T) {
			v, err := ParseView(s)
			if err == nil {
				t.Fatalf("ParseView(%q) = %+v, want an error", s, v)
			}
			if v != HomeView() {
				t.Fatalf("a bad view gives %+v, want the home view", v)
			}
		})
	}
	if v, err := ParseView(""); err != nil || v != HomeView() {
		t.Fatalf("empty view: %+v %v", v, err)
	}
}

func TestParseViewClampsIntoTheWorld(t *testing.T) {
	x, y, w, h := geo.ViewBox()
	for _, tc := range []struct {
		in   string
		want View
	}{
		{"500,300,100", View{500, 300, MaxZoom}},
		{"500,300,0.1", View{500, 300, MinZoom}},
		{"500,300,-3", View{500, 300, MinZoom}},
		{"-50,300,2", View{x, 300, 2}},
		{"5000,9000,2", View{x + w, y + h, 2}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			v, err := ParseView(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if v != tc.want {
				t.Fatalf("ParseView(%q) = %+v, want %+v", tc.in, v, tc.want)
			}
		})
	}
}

func TestClampKeepsTheWorldCoveringTheScreen(t *testing.T) {
	x, _, w, _ := geo.ViewBox()
	for _, tc := range []struct {
		name string
		v    View
	}{
		{"zoom 1 is the home view", View{CX: 100, CY: 100, Zoom: 1}},
		{"west edge", View{CX: 0, CY: 350, Zoom: 4}},
		{"east edge", View{CX: 1000, CY: 350, Zoom: 4}},
		{"north pole", View{CX: 500, CY: -100, Zoom: 8}},
		{"south", View{CX: 500, CY: 9999, Zoom: 32}},
		{"too far in", View{CX: 500, CY: 350, Zoom: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.v.Clamp(screen)
			if v.Zoom < MinZoom || v.Zoom > MaxZoom {
				t.Fatalf("zoom %v", v.Zoom)
			}
			// The box (the world fitted at zoom 1, scaled) covers the
			// screen wherever it is larger than the screen.
			l, tp, bw, bh := v.Box(screen)
			s0 := screen.Scale()
			_, _, vw, vh := geo.ViewBox()
			// the world inside the box
			wl, wt := l+(bw-vw*s0*v.Zoom)/2, tp+(bh-vh*s0*v.Zoom)/2
			ww, wh := vw*s0*v.Zoom, vh*s0*v.Zoom
			if ww >= screen.W && (wl > 0.01 || wl+ww < screen.W-0.01) {
				t.Errorf("world x %.1f..%.1f does not cover the screen 0..%v", wl, wl+ww, screen.W)
			}
			if wh >= screen.H && (wt > 0.01 || wt+wh < screen.H-0.01) {
				t.Errorf("world y %.1f..%.1f does not cover the screen 0..%v", wt, wt+wh, screen.H)
			}
			if v.Zoom == 1 && (v.CX != x+w/2) {
				t.Errorf("zoom 1 not centred: %+v", v)
			}
		})
	}
}

func TestZoomAtKeepsThePointUnderThePointer(t *testing.T) {
	v := HomeView()
	for _, f := range []float64{2, 1.65, 3, 0.5} {
		px, py := 300.0, 200.0
		mx, my := v.ToMap(screen, px, py)
		v = v.ZoomAt(screen, px, py, f)
		gx, gy := v.ToMap(screen, px, py)
		if v.Zoom > MinZoom && (math.Abs(gx-mx) > 1e-6 || math.Abs(gy-my) > 1e-6) {
			t.Fatalf("after zooming by %v the point under the pointer moved from %.3f,%.3f to %.3f,%.3f", f, mx, my, gx, gy)
		}
	}
}

func TestPanMovesByScreenPixels(t *testing.T) {
	v := View{CX: 500, CY: 350, Zoom: 4}
	got := v.Pan(screen, 100, -40)
	k := screen.Scale() * 4
	if math.Abs(got.CX-(500-100/k)) > 1e-9 || math.Abs(got.CY-(350+40/k)) > 1e-9 {
		t.Fatalf("Pan = %+v", got)
	}
	if sx, sy := got.ToScreen(screen, 500, 350); math.Abs(sx-(screen.W/2+100)) > 1e-9 || math.Abs(sy-(screen.H/2-40)) > 1e-9 {
		t.Fatalf("the old centre is at %.2f,%.2f after the pan", sx, sy)
	}
}

func TestBoxAtHomeIsTheScreen(t *testing.T) {
	l, tp, w, h := HomeView().Box(screen)
	if math.Abs(l) > 1e-9 || math.Abs(tp) > 1e-9 || w != screen.W || h != screen.H {
		t.Fatalf("home box %v %v %v %v", l, tp, w, h)
	}
	if !HomeView().IsHome() || (View{CX: 500, CY: 350, Zoom: 2}).IsHome() {
		t.Fatal("IsHome")
	}
}

func TestLevelIsTheLog2OfTheZoom(t *testing.T) {
	for _, tc := range []struct {
		zoom  float64
		level int
	}{{1, 0}, {1.9, 0}, {2, 1}, {3.9, 1}, {4, 2}, {20, 4}, {32, 5}, {100, 5}} {
		if got := (View{Zoom: tc.zoom}).Level(); got != tc.level {
			t.Errorf("zoom %v: level %d, want %d", tc.zoom, got, tc.level)
		}
	}
}

func FuzzParseView(f *testing.F) {
	f.Add("500,300,4")
	f.Add("512.3,330.1,20.09")
	f.Add("")
	f.Add("1e308,-1e308,1e-300")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseView(s)
		if err != nil {
			return
		}
		if math.IsNaN(v.CX) || math.IsNaN(v.CY) || v.Zoom < MinZoom || v.Zoom > MaxZoom {
			t.Fatalf("ParseView(%q) = %+v", s, v)
		}
		// Formatting is stable: what the map writes reads back the same
		// and formats the same again.
		again, err := ParseView(v.String())
		if err != nil {
			t.Fatalf("ParseView(%q) of String of %+v: %v", v.String(), v, err)
		}
		if again.String() != v.String() {
			t.Fatalf("round trip %q -> %q", v.String(), again.String())
		}
		c := v.Clamp(screen)
		if c != c.Clamp(screen) {
			t.Fatalf("Clamp is not idempotent on %+v", v)
		}
	})
}
