// Package geo is the map's pure geometry: Web Mercator projection into the
// map's SVG coordinate space (through orb), great-circle interpolation by
// spherical linear interpolation (slerp), and splitting lines at the
// antimeridian. It has no browser dependency and is tested on the host; the
// world generator and the map components both use it, so the pre-projected
// world and the live markers line up exactly.
//
// Points are orb.Points, [lon, lat] in degrees. Projected points are in map
// units: x runs from 0 (180°W) to Width (180°E), y from 0 at the top.
package geo

import (
	"fmt"
	"math"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/project"
)

// Width is the width of the whole world in map units. The SVG viewBox uses
// the same units, so one unit is 0.36° of longitude.
const Width = 1000.0

// MaxLat is the latitude clamp: Web Mercator goes to infinity at the poles,
// and ±85° keeps the world nearly square while losing only polar ice.
const MaxLat = 85.0

// The map shows latitudes from ViewTop down to ViewBottom: everything north
// of 85° is clamped anyway, and south of 60°S there is only Antarctica, which
// Mercator would draw larger than Africa.
const (
	ViewTop    = MaxLat
	ViewBottom = -60.0
)

// halfWorld is the Web Mercator x (and maximum y) extent in metres.
const halfWorld = orb.EarthRadius * math.Pi

// Clamp returns p with its latitude limited to ±MaxLat and its longitude
// wrapped into [-180, 180].
func Clamp(p orb.Point) orb.Point {
	lon, lat := p[0], p[1]
	if lon < -180 || lon > 180 {
		lon = math.Mod(lon+180, 360)
		if lon < 0 {
			lon += 360
		}
		lon -= 180
	}
	return orb.Point{lon, math.Max(-MaxLat, math.Min(MaxLat, lat))}
}

// Project maps a [lon, lat] point to map units through orb's spherical Web
// Mercator, with the latitude clamped to ±MaxLat.
func Project(p orb.Point) orb.Point {
	m := project.WGS84.ToMercator(Clamp(p))
	s := Width / (2 * halfWorld)
	return orb.Point{(m[0] + halfWorld) * s, (halfWorld - m[1]) * s}
}

// ViewBox returns the SVG viewBox of the map (min x, min y, width, height),
// covering all longitudes and the latitudes from ViewTop to ViewBottom.
func ViewBox() (x, y, w, h float64) {
	top := Project(orb.Point{0, ViewTop})[1]
	bottom := Project(orb.Point{0, ViewBottom})[1]
	return 0, top, Width, bottom - top
}

// ViewBoxAttr is ViewBox formatted for an SVG viewBox attribute.
func ViewBoxAttr() string {
	x, y, w, h := ViewBox()
	return fmt.Sprintf("%g %.1f %g %.1f", x, y, w, h)
}

// unit converts [lon, lat] degrees to a unit vector.
func unit(p orb.Point) [3]float64 {
	lon, lat := p[0]*math.Pi/180, p[1]*math.Pi/180
	return [3]float64{math.Cos(lat) * math.Cos(lon), math.Cos(lat) * math.Sin(lon), math.Sin(lat)}
}

// fromUnit converts a (not necessarily normalised) vector to [lon, lat].
func fromUnit(v [3]float64) orb.Point {
	lon := math.Atan2(v[1], v[0]) * 180 / math.Pi
	lat := math.Atan2(v[2], math.Hypot(v[0], v[1])) * 180 / math.Pi
	return orb.Point{lon, lat}
}

// Distance returns the central angle between a and b in degrees.
func Distance(a, b orb.Point) float64 {
	u, v := unit(a), unit(b)
	dot := u[0]*v[0] + u[1]*v[1] + u[2]*v[2]
	cross := [3]float64{u[1]*v[2] - u[2]*v[1], u[2]*v[0] - u[0]*v[2], u[0]*v[1] - u[1]*v[0]}
	// atan2 of |cross| and dot is accurate for tiny and near-antipodal angles,
	// where acos(dot) loses precision.
	return math.Atan2(math.Sqrt(cross[0]*cross[0]+cross[1]*cross[1]+cross[2]*cross[2]), dot) * 180 / math.Pi
}

// StepDegrees is the default spacing of great-circle samples: fine enough
// that straight segments between samples look curved on a 1000-unit map.
const StepDegrees = 3.0

// GreatCircle returns points along the shorter great circle from a to b,
// both included, spaced at most step degrees apart (StepDegrees when step is
// not positive), computed by slerp. Longitudes are in [-180, 180], so a line
// that crosses the antimeridian jumps there; pass it to SplitAntimeridian.
// Antipodal points have no unique great circle: the one through the north
// side of a is chosen, deterministically.
func GreatCircle(a, b orb.Point, step float64) orb.LineString {
	if step <= 0 {
		step = StepDegrees
	}
	d := Distance(a, b)
	if d < 1e-9 {
		return orb.LineString{a, b}
	}
	n := int(math.Ceil(d / step))
	u, v := unit(a), unit(b)
	omega := d * math.Pi / 180
	if math.Pi-omega < 1e-9 {
		// Antipodal: bend through a point 90° from a towards the pole.
		mid := fromUnit([3]float64{-u[2] * u[0], -u[2] * u[1], 1 - u[2]*u[2]})
		if math.Hypot(u[0], u[1]) < 1e-9 { // a is a pole: any meridian works
			mid = orb.Point{0, 0}
		}
		first := GreatCircle(a, mid, step)
		second := GreatCircle(mid, b, step)
		return append(first, second[1:]...)
	}
	line := make(orb.LineString, 0, n+1)
	line = append(line, a)
	sinO := math.Sin(omega)
	for i := 1; i < n; i++ {
		t := float64(i) / float64(n)
		ka, kb := math.Sin((1-t)*omega)/sinO, math.Sin(t*omega)/sinO
		line = append(line, fromUnit([3]float64{ka*u[0] + kb*v[0], ka*u[1] + kb*v[1], ka*u[2] + kb*v[2]}))
	}
	return append(line, b)
}

// SplitAntimeridian cuts a line wherever it crosses the antimeridian (a step
// of more than 180° of longitude between neighbours), ending one part at
// ±180 and starting the next at ∓180 on the interpolated latitude, so that no
// segment streaks across the whole map.
func SplitAntimeridian(line orb.LineString) orb.MultiLineString {
	if len(line) == 0 {
		return nil
	}
	var out orb.MultiLineString
	cur := orb.LineString{line[0]}
	for i := 1; i < len(line); i++ {
		p, q := line[i-1], line[i]
		dl := q[0] - p[0]
		if math.Abs(dl) > 180 {
			// Unwrap q next to p, find where the segment meets ±180.
			edge := 180.0
			qlon := q[0] - 360
			if dl < 0 { // eastwards across 180°E
				qlon = q[0] + 360
			} else { // westwards across 180°W
				edge = -180
			}
			t := (edge - p[0]) / (qlon - p[0])
			lat := p[1] + t*(q[1]-p[1])
			cur = append(cur, orb.Point{edge, lat})
			out = append(out, cur)
			cur = orb.LineString{{-edge, lat}}
		}
		cur = append(cur, q)
	}
	return append(out, cur)
}
