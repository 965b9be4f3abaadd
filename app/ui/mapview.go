package ui

import (
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/geo"
	"github.com/attackmap/attackmap/app/live"
)

// URL keys of the map besides live.ViewKey: heat=1 shows the heat layer,
// cluster=0 draws every marker on its own at every zoom.
const (
	heatKey    = "heat"
	clusterKey = "cluster"
)

// Gesture timings and steps.
const (
	// commitAfter is how long the map waits after the last wheel or drag
	// event before it lays the map out at the new zoom (crisp, markers
	// back to their screen size, clusters of the new level, URL): until
	// then every frame is one CSS transform of one element, drawn by the
	// compositor from the layers it has. 150 ms is longer than the gap
	// between two wheel events of one flick and short enough to feel
	// immediate when the hand stops.
	commitAfter = 150 * time.Millisecond
	// tapSlop is how far a pointer may move and still click or tap (a
	// finger wobbles a few pixels); tapGap is the longest pause between
	// the two taps of a double tap (the platforms use 300-500 ms).
	tapSlop = 6.0
	tapGap  = 350 * time.Millisecond
	// wheelRate turns wheel pixels into zoom: a 100 px notch zooms by
	// e^0.5 = 1.65, six notches from the world to a city.
	wheelRate = 0.005
	// keyPan is the share of the screen an arrow key moves the map.
	keyPan = 0.125
	// mapTick is how often the heat and the home markers' ages are
	// refreshed; the heat itself is computed at most every
	// live.HeatEvery.
	mapTick = time.Second
)

// mapHost is the page around the map: it selects the incident of a
// clicked marker and runs functions on its own UI update. *Live is one;
// an interface holding the same pointer every render, so go-app sees the
// field unchanged and the map re-renders only when Gen changed.
type mapHost interface {
	onMarkerClick(ctx app.Context, e app.Event)
	post(fn func(app.Context))
}

// mapView is the map: the world image, the heat layer, the arcs and the
// markers with the sensor hosts, stacked in one box (.map-view) that
// zoom and pan move.
//
// Zoom and pan never re-render markers per frame: during a gesture the
// box gets one CSS transform (a compositor-only change, the layers keep
// their raster), and when the gesture pauses (commitAfter) the box is laid
// out at the zoomed size, --k (1/zoom) keeps markers and arcs at their
// screen size, and go-app re-renders only if the cluster level changed.
//
// The gesture state is touched by the JS event callbacks and by go-app's
// UI goroutine; js/wasm runs one goroutine at a time and neither side
// blocks while it holds the state, so they never interleave.
type mapView struct {
	app.Compo
	M    *live.Model
	Gen  uint64
	Host mapHost

	ctx      app.Context
	wrap     app.Value // .map-wrap: the viewport, where the listeners are
	box      app.Value // .map-view: the box that is transformed
	removes  []func()
	mounted  bool
	screen   live.Screen
	view     live.View // what the map shows, during a gesture too
	base     live.View // where the box is laid out (the last commit)
	commitFn app.Func
	timer    app.Value
	timerSet bool

	clusterOn bool
	clus      live.Clustering
	clusGen   uint64
	// clusOf and heatOf are the models the clustering and the heat were
	// computed from: the page swaps models (the replay view has its
	// own), and generations of two models do not compare.
	clusOf, heatOf *live.Model
	level          int

	heatOn bool
	heat   live.Heat
	homes  []homeMark

	ptrs          map[int]point
	down          point
	dragged       bool
	lastTap       time.Time
	tapAt         point
	suppressClick bool
}

type point struct{ x, y float64 }

// OnInit sets the defaults the pre-rendered page shows.
func (c *mapView) OnInit() {
	c.view, c.base = live.HomeView(), live.HomeView()
	c.clusterOn = true
}

// OnMount restores the view from the URL and starts listening.
func (c *mapView) OnMount(ctx app.Context) {
	if app.IsServer {
		return
	}
	c.ctx, c.mounted = ctx, true
	c.wrap = c.JSValue()
	c.box = c.wrap.Call("querySelector", ".map-view")
	c.ptrs = map[int]point{}
	q := ctx.Page().URL().Query()
	v, _ := live.ParseView(q.Get(live.ViewKey)) // a bad view is the home view
	c.heatOn = q.Get(heatKey) == "1"
	c.clusterOn = q.Get(clusterKey) != "0"
	c.measure()
	c.view = v.Clamp(c.screen)
	c.commitFn = app.FuncOf(func(app.Value, []app.Value) any {
		c.timerSet = false
		c.commit()
		return nil
	})
	win := app.Window()
	c.removes = append(c.removes,
		listenWith(c.wrap, "wheel", c.onWheel, false),
		listenWith(c.wrap, "pointerdown", c.onPointerDown, true),
		listenWith(c.wrap, "pointermove", c.onPointerMove, true),
		listenWith(c.wrap, "pointerup", c.onPointerUp, true),
		listenWith(c.wrap, "pointercancel", c.onPointerCancel, true),
		listenWith(c.wrap, "keydown", c.onKey, false),
	)
	// The map's box changes size with the window and with the page's own
	// layout (the phone's bottom sheet, wall mode): a ResizeObserver sees
	// both; the window's resize event is the fallback.
	onResize := func() {
		if c.measure() {
			c.view = c.view.Clamp(c.screen)
			c.commit()
		}
	}
	if ro := win.Get("ResizeObserver"); ro.Truthy() {
		f := app.FuncOf(func(app.Value, []app.Value) any { onResize(); return nil })
		obs := ro.New(f)
		obs.Call("observe", c.wrap)
		c.removes = append(c.removes, func() { obs.Call("disconnect"); f.Release() })
	} else {
		c.removes = append(c.removes, listenWith(win, "resize", func(app.Value) { onResize() }, true))
	}
	c.commit()
	c.refreshHomes(time.Now())
	ctx.After(mapTick, c.tick)
}

// OnDismount removes the listeners and releases every js.Func.
func (c *mapView) OnDismount() {
	c.mounted = false
	for _, remove := range c.removes {
		remove()
	}
	c.removes = nil
	if c.commitFn != nil {
		if c.timerSet {
			app.Window().Call("clearTimeout", c.timer)
		}
		c.commitFn.Release()
		c.commitFn = nil
	}
}

// listenWith is listen with the passive flag: wheel and key listeners
// must be able to cancel the page's own scrolling, pointer listeners
// need not (touch-action: none in map.css does it).
func listenWith(target app.Value, typ string, fn func(ev app.Value), passive bool) (remove func()) {
	f := app.FuncOf(func(this app.Value, args []app.Value) any {
		if len(args) > 0 {
			fn(args[0])
		}
		return nil
	})
	opts := map[string]any{"passive": passive}
	target.Call("addEventListener", typ, f, opts)
	return func() {
		target.Call("removeEventListener", typ, f, opts)
		f.Release()
	}
}

// measure reads the viewport's size and reports whether it changed (a
// hidden map, 0 x 0, keeps the last size).
func (c *mapView) measure() bool {
	r := c.wrap.Call("getBoundingClientRect")
	w, h := r.Get("width").Float(), r.Get("height").Float()
	if w <= 0 || h <= 0 || (live.Screen{W: w, H: h}) == c.screen {
		return false
	}
	c.screen = live.Screen{W: w, H: h}
	return true
}

// local is the event's pointer position in the viewport.
func (c *mapView) local(ev app.Value) point {
	r := c.wrap.Call("getBoundingClientRect")
	return point{ev.Get("clientX").Float() - r.Get("left").Float(), ev.Get("clientY").Float() - r.Get("top").Float()}
}

// show moves the box to view v with a CSS transform relative to where it
// is laid out, and schedules the commit.
func (c *mapView) show(v live.View, after time.Duration) {
	c.view = v.Clamp(c.screen)
	l, t, w, _ := c.view.Box(c.screen)
	bl, bt, bw, _ := c.base.Box(c.screen)
	c.box.Get("style").Set("transform", "translate("+px(l-bl)+","+px(t-bt)+") scale("+fmtF(w/bw, 5)+")")
	if c.timerSet {
		app.Window().Call("clearTimeout", c.timer)
	}
	c.timer, c.timerSet = app.Window().Call("setTimeout", c.commitFn, after.Milliseconds()), true
}

// commit lays the box out at the view (the browser then draws the layers
// at the zoomed size), sets the marker scale, writes the URL, and
// re-renders when the cluster level or cell changed.
func (c *mapView) commit() {
	if c.box.IsUndefined() || c.box.IsNull() {
		return
	}
	c.base = c.view
	l, t, w, h := c.view.Box(c.screen)
	st := c.box.Get("style")
	st.Set("left", px(l))
	st.Set("top", px(t))
	st.Set("width", px(w))
	st.Set("height", px(h))
	st.Set("transform", "")
	st.Call("setProperty", "--k", fmtF(1/c.view.Zoom, 5))
	c.box.Get("classList").Call("toggle", "zoomed", c.view.Zoom > live.MinZoom)
	c.writeURL()
	if c.view.Level() != c.level || c.clusterOn && c.cell() != c.clus.Cell {
		c.level = c.view.Level()
		c.ctx.Dispatch(func(app.Context) {})
	}
}

// cell is the cluster grid cell of the committed level.
func (c *mapView) cell() float64 { return live.ClusterCell(c.screen, c.level) }

// writeURL puts the view, heat and cluster settings into the address bar,
// keeping every other query key as it is.
func (c *mapView) writeURL() {
	loc := app.Window().Get("location")
	search := loc.Get("search").String()
	q, _ := url.ParseQuery(strings.TrimPrefix(search, "?"))
	if q == nil {
		q = url.Values{}
	}
	set := func(key string, on bool, value string) {
		if on {
			q.Set(key, value)
		} else {
			q.Del(key)
		}
	}
	set(live.ViewKey, !c.view.IsHome(), c.view.String())
	set(heatKey, c.heatOn, "1")
	set(clusterKey, !c.clusterOn, "0")
	enc := strings.ReplaceAll(q.Encode(), "%2C", ",") // commas are fine in a query and easier to read
	if enc != "" {
		enc = "?" + enc
	}
	if enc == search {
		return
	}
	h := app.Window().Get("history")
	h.Call("replaceState", h.Get("state"), "", loc.Get("pathname").String()+enc+loc.Get("hash").String())
}

func (c *mapView) onWheel(ev app.Value) {
	ev.Call("preventDefault")
	dy := ev.Get("deltaY").Float()
	switch ev.Get("deltaMode").Int() {
	case 1: // lines
		dy *= 16
	case 2: // pages
		dy *= c.screen.H
	}
	p := c.local(ev)
	c.show(c.view.ZoomAt(c.screen, p.x, p.y, math.Exp(-dy*wheelRate)), commitAfter)
}

func (c *mapView) onPointerDown(ev app.Value) {
	if ev.Get("pointerType").String() == "mouse" && ev.Get("button").Int() != 0 {
		return
	}
	if ev.Get("target").Call("closest", ".map-ctl").Truthy() {
		return
	}
	id := ev.Get("pointerId").Int()
	if len(c.ptrs) >= 2 {
		return // a third finger: ignored
	}
	p := c.local(ev)
	c.ptrs[id] = p
	if len(c.ptrs) == 1 {
		c.down, c.dragged = p, false
	}
}

// capture keeps the pointers' events on the map once a drag or pinch
// started (the pointer may leave it). Not before: a captured pointer's
// click goes to the map instead of the marker under it.
func (c *mapView) capture() {
	// setPointerCapture throws for a pointer the browser no longer
	// tracks (lifted meanwhile); syscall/js turns that into a panic, and
	// the drag works without the capture too.
	defer func() { _ = recover() }()
	for id := range c.ptrs {
		c.wrap.Call("setPointerCapture", id)
	}
}

func (c *mapView) onPointerMove(ev app.Value) {
	id := ev.Get("pointerId").Int()
	prev, ok := c.ptrs[id]
	if !ok {
		return
	}
	p := c.local(ev)
	c.ptrs[id] = p
	switch len(c.ptrs) {
	case 1:
		if !c.dragged && math.Hypot(p.x-c.down.x, p.y-c.down.y) > tapSlop {
			c.dragged = true
			c.capture()
		}
		if c.dragged {
			c.show(c.view.Pan(c.screen, p.x-prev.x, p.y-prev.y), commitAfter)
		}
	case 2:
		// Pinch: zoom by the change of the distance between the two
		// pointers around their old midpoint, then follow the midpoint.
		var o point
		for oid, q := range c.ptrs {
			if oid != id {
				o = q
			}
		}
		d0, d1 := math.Hypot(prev.x-o.x, prev.y-o.y), math.Hypot(p.x-o.x, p.y-o.y)
		if d0 < 1 {
			return
		}
		m0 := point{(prev.x + o.x) / 2, (prev.y + o.y) / 2}
		m1 := point{(p.x + o.x) / 2, (p.y + o.y) / 2}
		if !c.dragged {
			c.dragged = true
			c.capture()
		}
		c.show(c.view.ZoomAt(c.screen, m0.x, m0.y, d1/d0).Pan(c.screen, m1.x-m0.x, m1.y-m0.y), commitAfter)
	}
}

func (c *mapView) onPointerUp(ev app.Value) {
	id := ev.Get("pointerId").Int()
	if _, ok := c.ptrs[id]; !ok {
		return
	}
	delete(c.ptrs, id)
	if len(c.ptrs) > 0 || c.dragged {
		c.suppressClick = c.dragged
		return
	}
	c.suppressClick = false
	// A tap or click: the second one within tapGap and tapSlop of the
	// first zooms in there (double click, double tap).
	p := c.local(ev)
	now := time.Now()
	if now.Sub(c.lastTap) < tapGap && math.Hypot(p.x-c.tapAt.x, p.y-c.tapAt.y) < 4*tapSlop {
		c.lastTap = time.Time{}
		c.show(c.view.ZoomAt(c.screen, p.x, p.y, 2), 0)
		return
	}
	c.lastTap, c.tapAt = now, p
}

func (c *mapView) onPointerCancel(ev app.Value) {
	delete(c.ptrs, ev.Get("pointerId").Int())
}

func (c *mapView) onKey(ev app.Value) {
	if ev.Get("altKey").Bool() || ev.Get("ctrlKey").Bool() || ev.Get("metaKey").Bool() {
		return
	}
	step := keyPan * math.Min(c.screen.W, c.screen.H)
	cx, cy := c.screen.W/2, c.screen.H/2
	var v live.View
	switch ev.Get("key").String() {
	case "+", "=":
		v = c.view.ZoomAt(c.screen, cx, cy, 2)
	case "-", "_":
		v = c.view.ZoomAt(c.screen, cx, cy, 0.5)
	case "ArrowLeft":
		v = c.view.Pan(c.screen, step, 0)
	case "ArrowRight":
		v = c.view.Pan(c.screen, -step, 0)
	case "ArrowUp":
		v = c.view.Pan(c.screen, 0, step)
	case "ArrowDown":
		v = c.view.Pan(c.screen, 0, -step)
	case "0", "Home":
		v = live.HomeView()
	default:
		return
	}
	ev.Call("preventDefault")
	c.show(v, commitAfter)
}

// onClick zooms into a clicked cluster, or has the page select the
// clicked marker's newest incident. A click that ended a drag does
// neither.
func (c *mapView) onClick(ctx app.Context, e app.Event) {
	ctx.PreventUpdate()
	if c.suppressClick {
		c.suppressClick = false
		return
	}
	el := e.Get("target").Call("closest", "[data-slot]")
	if !el.Truthy() {
		return
	}
	slot, err := strconv.Atoi(el.Get("dataset").Get("slot").String())
	if err != nil || slot < 0 {
		return
	}
	if slot < len(c.clus.Slots) && c.clusterOn {
		if ci := c.clus.Slots[slot].Cluster; ci >= 0 && !c.clus.Slots[slot].Hidden {
			cl := c.clus.Clusters[ci]
			l := c.clus.SplitLevel(c.M, c.screen, ci, c.level)
			c.lastTap = time.Time{}
			c.show(live.View{CX: cl.X, CY: cl.Y, Zoom: math.Max(c.view.Zoom, live.LevelZoom(l))}, 0)
			return
		}
	}
	host := c.Host
	host.post(func(ctx app.Context) { host.onMarkerClick(ctx, e) })
}

func (c *mapView) zoomIn(ctx app.Context, e app.Event) {
	c.show(c.view.ZoomAt(c.screen, c.screen.W/2, c.screen.H/2, 2), 0)
}

func (c *mapView) zoomOut(ctx app.Context, e app.Event) {
	c.show(c.view.ZoomAt(c.screen, c.screen.W/2, c.screen.H/2, 0.5), 0)
}

func (c *mapView) reset(ctx app.Context, e app.Event) { c.show(live.HomeView(), 0) }

func (c *mapView) toggleHeat(ctx app.Context, e app.Event) {
	c.heatOn = !c.heatOn
	if c.heatOn {
		c.updateHeat(time.Now())
	}
	c.writeURL()
}

// updateHeat recomputes the heat (at most every live.HeatEvery) and
// reports whether it changed.
func (c *mapView) updateHeat(now time.Time) bool {
	if c.heatOf != c.M {
		c.heat, c.heatOf = live.Heat{}, c.M
	}
	return c.heat.Update(c.M, c.heatCell(), now)
}

// heatCell is the heat grid cell at the committed level.
func (c *mapView) heatCell() float64 {
	return live.HeatCellPx / (c.screen.Scale() * live.LevelZoom(c.level))
}

// tick refreshes the heat (when shown) and the home markers' ages; it
// re-renders only when one of them changed.
func (c *mapView) tick(ctx app.Context) {
	if !c.mounted {
		return
	}
	now := time.Now()
	changed := c.refreshHomes(now)
	if c.heatOn && c.updateHeat(now) {
		changed = true
	}
	if !changed {
		ctx.PreventUpdate()
	}
	ctx.After(mapTick, c.tick)
}

// refreshHomes rebuilds the home markers from the model's sensor hosts and
// reports whether they changed.
func (c *mapView) refreshHomes(now time.Time) bool {
	homes := homeMarks(c.M.Hosts(now), now)
	if slicesEqual(homes, c.homes) {
		return false
	}
	c.homes = homes
	return true
}

func slicesEqual(a, b []homeMark) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// recluster groups the markers for the committed level when the model or
// the level changed since the last time.
func (c *mapView) recluster() {
	if !c.clusterOn {
		c.clus = live.Clustering{}
		return
	}
	cell := c.cell()
	if c.M == c.clusOf && c.M.Gen() == c.clusGen && cell == c.clus.Cell && len(c.clus.Slots) == len(c.M.Markers) {
		return
	}
	c.clus.Update(c.M, cell, time.Now())
	c.clusGen, c.clusOf = c.M.Gen(), c.M
}

// Render draws the map: the box with its layers and the controls.
func (c *mapView) Render() app.UI {
	m := c.M
	c.recluster()
	arcChunks := make([]app.UI, m.ArcChunks())
	for i := range arcChunks {
		arcChunks[i] = &arcChunk{M: m, Index: i, Gen: m.ArcChunkGen(i)}
	}
	markerChunks := make([]app.UI, m.MarkerChunks(), m.MarkerChunks()+1)
	for i := range markerChunks {
		var cgen uint64
		if i < len(c.clus.ChunkGen) {
			cgen = c.clus.ChunkGen[i]
		}
		markerChunks[i] = &markerChunk{M: m, Index: i, Gen: m.MarkerChunkGen(i), CGen: cgen, Clus: &c.clus}
	}
	markerChunks = append(markerChunks, &homeLayer{Homes: c.homes})
	heat := make([]app.UI, live.HeatBands)
	for b := range heat {
		d := ""
		if c.heatOn {
			d = c.heat.Paths[b]
		}
		heat[b] = app.Elem("path").XMLNS(svgNS).Class("hb", "hb"+strconv.Itoa(b)).Attr("d", d)
	}
	vb := geo.ViewBoxAttr()
	// Four stacked layers with the same geometry (viewBox and "meet"
	// fitting): the world as an image, the heat, the arcs, the markers.
	// Separate layers are painted separately, so a pulsing marker
	// repaints the marker layer only, not the world and 500 arcs with it.
	return app.Div().Class("map-wrap").ID("map-wrap").TabIndex(0).
		Aria("label", "World map. Drag or arrow keys to pan, wheel or plus and minus to zoom, 0 to reset.").
		Body(
			app.Div().Class("map-view").Body(
				app.Img().Class("world").Src("/web/world.svg").Alt("").Attr("draggable", "false"),
				app.Elem("svg").XMLNS(svgNS).Class("layer", "heat", heatClass(c.heatOn)).
					Attr("viewBox", vb).Attr("preserveAspectRatio", "xMidYMid meet").
					Aria("hidden", true).Body(heat...),
				app.Elem("svg").XMLNS(svgNS).Class("layer", "arcs").
					Attr("viewBox", vb).Attr("preserveAspectRatio", "xMidYMid meet").
					Aria("hidden", true).
					Body(arcChunks...),
				app.Elem("svg").XMLNS(svgNS).Class("layer", "markers").ID("map").
					Attr("viewBox", vb).Attr("preserveAspectRatio", "xMidYMid meet").
					Attr("role", "img").Aria("label", "World map of live incidents").
					On("click", c.onClick).
					Body(markerChunks...),
			),
			app.Div().Class("map-ctl").Body(
				app.Button().Type("button").ID("zoom-in").Title("Zoom in (+)").Aria("label", "Zoom in").OnClick(c.zoomIn).Text("+"),
				app.Button().Type("button").ID("zoom-out").Title("Zoom out (−)").Aria("label", "Zoom out").OnClick(c.zoomOut).Text("−"),
				app.Button().Type("button").ID("zoom-reset").Title("Whole world (0)").Aria("label", "Show the whole world").OnClick(c.reset).Text("⌂"),
				app.Button().Type("button").ID("heat-toggle").Title("Heat: where incidents are densest").
					Aria("pressed", c.heatOn).OnClick(c.toggleHeat).Text("Heat"),
			),
		)
}

// px formats a CSS pixel length.
func px(v float64) string { return fmtF(v, 2) + "px" }

func fmtF(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func heatClass(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
