package ui

import (
	"strconv"
	"strings"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/live"
)

// svgNS must be set on every SVG element: go-app does not inherit it.
const svgNS = "http://www.w3.org/2000/svg"

// markerChunk draws one chunk of marker slots. Its exported fields are what
// go-app compares when the page re-renders: the chunk renders again only
// when its generation changed (M is the same pointer every time).
type markerChunk struct {
	app.Compo
	M     *live.Model
	Index int
	Gen   uint64
}

// Render draws each slot as <g data-slot><circle/></g>, plus a <text>
// count where incidents aggregate; reusing a slot patches attributes only.
func (c *markerChunk) Render() app.UI {
	m := c.M
	_, selMarker, _ := m.Selected()
	return renderChunk(m, c.Index, len(m.Markers), func(i int) app.UI {
		mk := &m.Markers[i]
		g := app.Elem("g").XMLNS(svgNS).DataSet("slot", i)
		if !mk.Used {
			return g.Class("mk", "free").Body(app.Elem("circle").XMLNS(svgNS))
		}
		cls := []string{"mk", pulseClass(mk.Pulse, mk.Still), "s-" + string(mk.Severity)}
		if i == selMarker {
			cls = append(cls, "sel")
		}
		x, y := num(mk.X), num(mk.Y)
		circle := app.Elem("circle").XMLNS(svgNS).Attr("cx", x).Attr("cy", y).
			Attr("r", num(mk.Radius())).Attr("fill", live.Colour(mk.Severity))
		body := []app.UI{circle}
		if latest, ok := m.Incident(mk.Latest); ok && actionClass(latest.Action) == "blocked" {
			// The marker takes the look of its newest activity: once
			// the sensor blocked that source, a "no entry" sign (ring
			// and slash) sits on the marker. Only blocked places carry
			// the extra elements, like the labels below.
			cls = append(cls, "blocked")
			body = append(body, blockedSign(mk.X, mk.Y, mk.Radius()))
		}
		if mk.Count > 1 {
			// Only aggregated places carry a label: thousands of empty text
			// elements still cost paint time.
			body = append(body, app.Elem("text").XMLNS(svgNS).Attr("x", x).Attr("y", y).Text(strconv.Itoa(mk.Count)))
		}
		return g.Class(cls...).Body(body...)
	})
}

// renderChunk draws chunk index of a layer of n slots (markers or arcs):
// one element per slot, free slots included, so that go-app, which diffs
// children by position, patches a reused slot in place.
func renderChunk(m *live.Model, index, n int, slot func(i int) app.UI) app.UI {
	lo, hi := m.ChunkRange(index, n)
	slots := make([]app.UI, 0, hi-lo)
	for i := lo; i < hi; i++ {
		slots = append(slots, slot(i))
	}
	return app.Elem("g").XMLNS(svgNS).Class("chunk").Body(slots...)
}

// blockedSign draws the "no entry" sign over a blocked marker at x, y with
// radius r: a ring just outside the circle and a slash across it.
func blockedSign(x, y, r float64) app.UI {
	ring := r + 1.2
	// The slash ends on the ring, at 45 degrees.
	d := ring * 0.7071
	// Tenths of a map unit are below a pixel at any zoom the map offers.
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	return app.Elem("g").XMLNS(svgNS).Class("blk").Body(
		app.Elem("circle").XMLNS(svgNS).Attr("cx", f(x)).Attr("cy", f(y)).Attr("r", f(ring)),
		app.Elem("path").XMLNS(svgNS).Attr("d", "M"+f(x-d)+" "+f(y+d)+"L"+f(x+d)+" "+f(y-d)),
	)
}

// actionClass sorts an incident's action for styling: "blocked" when the
// sensor blocked the source ("blocked", "blocked 1h"), "would" for a dry
// run ("would block (dry run)"), "" for anything else (logged, not
// blocked, rate limited).
func actionClass(action string) string {
	switch {
	case strings.HasPrefix(action, "blocked"):
		return "blocked"
	case strings.HasPrefix(action, "would block"):
		return "would"
	}
	return ""
}

// pulseClass picks one of two identical CSS animations: switching between
// them is what restarts the pulse on an element that already exists.
func pulseClass(pulse uint8, still bool) string {
	switch {
	case still:
		return "still"
	case pulse == 0:
		return "p0"
	}
	return "p1"
}

// arcChunk draws one chunk of arc slots.
type arcChunk struct {
	app.Compo
	M     *live.Model
	Index int
	Gen   uint64
}

// Render draws each slot as one <path>, split at the antimeridian.
func (c *arcChunk) Render() app.UI {
	m := c.M
	_, _, selArc := m.Selected()
	return renderChunk(m, c.Index, len(m.Arcs), func(i int) app.UI {
		a := &m.Arcs[i]
		p := app.Elem("path").XMLNS(svgNS)
		if !a.Used {
			return p.Class("arc", "free")
		}
		cls := []string{"arc", pulseClass(a.Pulse, a.Still)}
		if i == selArc {
			cls = append(cls, "sel")
		}
		return p.Class(cls...).Attr("d", a.D).
			Attr("stroke", live.Colour(a.Severity)).
			Attr("stroke-width", strconv.FormatFloat(a.Width(), 'f', 2, 64))
	})
}
