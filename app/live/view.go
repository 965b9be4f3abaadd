package live

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/attackmap/attackmap/app/geo"
)

// View is the part of the world the map shows: the centre in map units
// (package geo) and a zoom factor, 1 showing the whole world fitted into
// the map's box. It lives in the page URL as view=cx,cy,z.
type View struct {
	CX, CY, Zoom float64
}

// Zoom limits: 1 is the whole world; 32 brings a city block of a 1,000
// unit wide world (0.36° per unit) to about a screen pixel per 0.01°,
// past which the map's data (0.7° aggregation cells) has nothing to add.
const (
	MinZoom = 1.0
	MaxZoom = 32.0
)

// ViewKey is the URL query key of the view.
const ViewKey = "view"

// maxViewText caps the view parameter before parsing: three numbers of a
// few digits each; anything longer is not ours.
const maxViewText = 64

// HomeView is the whole world, centred.
func HomeView() View {
	x, y, w, h := geo.ViewBox()
	return View{CX: x + w/2, CY: y + h/2, Zoom: MinZoom}
}

// IsHome reports whether v shows the whole world (the URL then carries no
// view).
func (v View) IsHome() bool {
	h := HomeView()
	return math.Abs(v.Zoom-h.Zoom) < 0.005 && math.Abs(v.CX-h.CX) < 0.05 && math.Abs(v.CY-h.CY) < 0.05
}

var errView = errors.New("view: want cx,cy,zoom")

// ParseView reads "cx,cy,z" (map units and zoom factor). The result is
// clamped into the world (see Bound); an empty string is the home view.
func ParseView(s string) (View, error) {
	if s == "" {
		return HomeView(), nil
	}
	if len(s) > maxViewText {
		return HomeView(), errView
	}
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return HomeView(), errView
	}
	var f [3]float64
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return HomeView(), errView
		}
		f[i] = v
	}
	return View{CX: f[0], CY: f[1], Zoom: f[2]}.Bound(), nil
}

// String formats v for the URL: tenths of a map unit (below a pixel at
// any zoom up to 8, and a few pixels at 32, which a reload may shift) and
// hundredths of zoom.
func (v View) String() string {
	return strconv.FormatFloat(round(v.CX, 10), 'f', -1, 64) + "," +
		strconv.FormatFloat(round(v.CY, 10), 'f', -1, 64) + "," +
		strconv.FormatFloat(round(v.Zoom, 100), 'f', -1, 64)
}

func round(v, per float64) float64 { return math.Round(v*per) / per }

// Bound limits the zoom to [MinZoom, MaxZoom] and the centre to the map's
// box, without knowing the screen (Clamp does the exact fit).
func (v View) Bound() View {
	x, y, w, h := geo.ViewBox()
	v.Zoom = math.Max(MinZoom, math.Min(MaxZoom, v.Zoom))
	v.CX = math.Max(x, math.Min(x+w, v.CX))
	v.CY = math.Max(y, math.Min(y+h, v.CY))
	return v
}

// Screen is the map's box on the page in CSS pixels. At zoom 1 the world
// is fitted into it as SVG's "xMidYMid meet" does.
type Screen struct{ W, H float64 }

// Scale is the pixels per map unit at zoom 1.
func (s Screen) Scale() float64 {
	_, _, w, h := geo.ViewBox()
	if s.W <= 0 || s.H <= 0 {
		return 1
	}
	return math.Min(s.W/w, s.H/h)
}

// Clamp bounds the zoom and keeps the world covering the screen: on an
// axis where the zoomed world is wider than the screen the centre stays
// at least half a screen from its edges; where it is narrower the world
// is centred.
func (v View) Clamp(s Screen) View {
	v = v.Bound()
	x, y, w, h := geo.ViewBox()
	k := s.Scale() * v.Zoom
	half := func(px float64) float64 { return px / 2 / k }
	clampAxis := func(c, lo, size, halfSeen float64) float64 {
		if size <= 2*halfSeen {
			return lo + size/2
		}
		return math.Max(lo+halfSeen, math.Min(lo+size-halfSeen, c))
	}
	v.CX = clampAxis(v.CX, x, w, half(s.W))
	v.CY = clampAxis(v.CY, y, h, half(s.H))
	return v
}

// ToMap returns the map point under screen pixel (px, py), relative to the
// box's top left corner.
func (v View) ToMap(s Screen, px, py float64) (x, y float64) {
	k := s.Scale() * v.Zoom
	return v.CX + (px-s.W/2)/k, v.CY + (py-s.H/2)/k
}

// ToScreen is the inverse of ToMap.
func (v View) ToScreen(s Screen, x, y float64) (px, py float64) {
	k := s.Scale() * v.Zoom
	return s.W/2 + (x-v.CX)*k, s.H/2 + (y-v.CY)*k
}

// ZoomAt multiplies the zoom by factor keeping the map point under screen
// pixel (px, py) where it is (the wheel and pinch zoom at the pointer),
// clamped.
func (v View) ZoomAt(s Screen, px, py, factor float64) View {
	if math.IsNaN(factor) || factor <= 0 {
		return v
	}
	x, y := v.ToMap(s, px, py)
	z := math.Max(MinZoom, math.Min(MaxZoom, v.Zoom*factor))
	k := s.Scale() * z
	return View{CX: x - (px-s.W/2)/k, CY: y - (py-s.H/2)/k, Zoom: z}.Clamp(s)
}

// Pan moves the map by (dx, dy) screen pixels (a drag to the right shows
// what is further west), clamped.
func (v View) Pan(s Screen, dx, dy float64) View {
	k := s.Scale() * v.Zoom
	v.CX -= dx / k
	v.CY -= dy / k
	return v.Clamp(s)
}

// Box is where the whole map's box (the world at zoom 1 fitted into the
// screen) lies at view v: its top left corner and size in screen pixels.
// The UI places the map there, so the browser draws the world, the arcs
// and the markers at the zoomed size.
func (v View) Box(s Screen) (left, top, width, height float64) {
	x, y, _, _ := geo.ViewBox()
	// Where the box's top left, the map point (x - ox/s0, y - oy/s0) for
	// the "meet" margins ox, oy, lands at this view.
	s0 := s.Scale()
	_, _, w, h := geo.ViewBox()
	ox, oy := (s.W-w*s0)/2, (s.H-h*s0)/2
	left, top = v.ToScreen(s, x-ox/s0, y-oy/s0)
	return left, top, s.W * v.Zoom, s.H * v.Zoom
}

// Levels are the discrete zoom levels clusters are computed at: zoom 1,
// 2, 4, ... 32. Between two levels the clusters of the lower one stay.
const Levels = 6

// Level is the cluster level of the view: floor(log2(zoom)).
func (v View) Level() int {
	l := int(math.Floor(math.Log2(math.Max(MinZoom, v.Zoom)) + 1e-9))
	return max(0, min(Levels-1, l))
}

// LevelZoom is the zoom factor of level l.
func LevelZoom(l int) float64 { return math.Ldexp(1, max(0, min(Levels-1, l))) }
