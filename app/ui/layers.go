package ui

import (
	"strconv"
	"strings"
	"time"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/live"
)

// svgNS must be set on every SVG element: go-app does not inherit it.
const svgNS = "http://www.w3.org/2000/svg"

// markerChunk draws one chunk of marker slots. Its exported fields are what
// go-app compares when the page re-renders: the chunk renders again only
// when its generation changed (M is the same pointer every time), or its
// cluster generation CGen did (Clus is the map's clustering, nil when
// every marker is drawn on its own).
type markerChunk struct {
	app.Compo
	M     *live.Model
	Index int
	Gen   uint64
	CGen  uint64
	Clus  *live.Clustering
}

// Render draws each slot as <g data-slot><circle/></g>, plus a <text>
// count where incidents aggregate; reusing a slot patches attributes only.
// A slot hidden in a cluster is drawn like a free one; the slot that is a
// cluster's face draws the cluster.
func (c *markerChunk) Render() app.UI {
	m := c.M
	_, selMarker, _ := m.Selected()
	return renderChunk(m, c.Index, len(m.Markers), func(i int) app.UI {
		mk := &m.Markers[i]
		g := app.Elem("g").XMLNS(svgNS).DataSet("slot", i)
		if !mk.Used {
			return g.Class("mk", "free").Body(app.Elem("circle").XMLNS(svgNS))
		}
		still := mk.Still
		if cl := c.Clus; cl != nil && i < len(cl.Slots) {
			if cl.Slots[i].Hidden {
				return g.Class("mk", "hid").Body(app.Elem("circle").XMLNS(svgNS))
			}
			// Slots shown again after a zoom are settled unless their
			// pulse still runs.
			still = !mk.Pulsing(cl.Now)
			if ci := cl.Slots[i].Cluster; ci >= 0 {
				return clusterMark(g, &cl.Clusters[ci], pulseClass(mk.Pulse, still))
			}
		}
		cls := []string{"mk", pulseClass(mk.Pulse, still), "s-" + string(mk.Severity)}
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

// clusterMark draws a cluster in its face slot's <g>: a bigger circle in
// the highest severity's colour with the incident count, pulsing when the
// face (the member updated last) does. A click zooms in (mapView.onClick).
func clusterMark(g app.HTMLElem, cl *live.Cluster, pulse string) app.UI {
	x, y := num(cl.X), num(cl.Y)
	return g.Class("mk", "cl", pulse, "s-"+string(cl.Severity)).
		DataSet("markers", cl.Markers).Body(
		app.Elem("circle").XMLNS(svgNS).Attr("cx", x).Attr("cy", y).
			Attr("r", num(live.ClusterRadius(cl.Markers))).Attr("fill", live.Colour(cl.Severity)),
		app.Elem("text").XMLNS(svgNS).Attr("x", x).Attr("y", y).Text(strconv.Itoa(cl.Count)),
	)
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
		// The width is a CSS variable: map.css multiplies it by the
		// map's --k (1/zoom) so that arcs keep their screen width.
		return p.Class(cls...).Attr("d", a.D).
			Attr("stroke", live.Colour(a.Severity)).
			Attr("style", "--w:"+strconv.FormatFloat(a.Width(), 'f', 2, 64))
	})
}

// homeMark is one sensor host as the map draws it.
type homeMark struct {
	Name, Label, Title string
	X, Y               float64
	Silent             bool
}

// homeMarks turns the model's sensor hosts into home markers: the located
// ones, with their name and how long ago they last raised an incident
// ("silent 12m" once live.SilentAfter passed).
func homeMarks(hosts []live.HostView, now time.Time) []homeMark {
	var out []homeMark
	for _, h := range hosts {
		if !h.HasLoc {
			continue
		}
		name := clean(h.Name, maxHostName)
		age := ago(now.Sub(h.LastSeen))
		hm := homeMark{Name: name, X: h.X, Y: h.Y, Silent: h.Silent, Label: age,
			Title: "sensor " + name + ", last incident " + age + " ago"}
		if h.LastSeen.IsZero() {
			hm.Label, hm.Title = "", "sensor "+name
		} else if h.Silent {
			hm.Label = "silent " + age
			hm.Title = "sensor " + name + ", silent: no incident for " + age
		}
		out = append(out, hm)
	}
	return out
}

// maxHostName caps a host name on the map: sensor names are short, and a
// hostile relay's long ones must not cover the map.
const maxHostName = 40

// ago is a short age: "now", "42s", "12m", "3h", "2d".
func ago(d time.Duration) string {
	switch {
	case d < 5*time.Second:
		return "now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}

// homeLayer draws the sensor hosts on top of the markers: a house with
// the host's name and age beside it. It re-renders only when a home
// changed (go-app compares Homes).
type homeLayer struct {
	app.Compo
	Homes []homeMark
}

// Render draws each home as a <g class="home"> scaled about the host's
// point by map.css (--k), so it keeps its screen size at any zoom.
func (c *homeLayer) Render() app.UI {
	homes := make([]app.UI, len(c.Homes))
	for i, h := range c.Homes {
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
		x, y := h.X, h.Y
		// A house 10 units wide, its floor at y+4 and its roof tip at y-6.
		d := "M" + f(x-5) + " " + f(y+4) + "V" + f(y-1) + "L" + f(x) + " " + f(y-6) + "L" + f(x+5) + " " + f(y-1) + "V" + f(y+4) + "Z"
		cls := []string{"home"}
		if h.Silent {
			cls = append(cls, "silent")
		}
		homes[i] = app.Elem("g").XMLNS(svgNS).Class(cls...).DataSet("host", h.Name).
			Attr("style", "transform-origin:"+f(x)+"px "+f(y)+"px").Body(
			app.Elem("title").XMLNS(svgNS).Text(h.Title),
			app.Elem("path").XMLNS(svgNS).Attr("d", d),
			app.Elem("text").XMLNS(svgNS).Class("hn").Attr("x", f(x+7)).Attr("y", f(y)).Text(h.Name),
			app.Elem("text").XMLNS(svgNS).Class("ha").Attr("x", f(x+7)).Attr("y", f(y+10)).Text(h.Label),
		)
	}
	return app.Elem("g").XMLNS(svgNS).Class("homes").Body(homes...)
}
