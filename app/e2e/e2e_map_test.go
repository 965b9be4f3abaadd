package e2e

import (
	"context"
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/paulmach/orb"

	"github.com/attackmap/attackmap/app/geo"
	"github.com/attackmap/attackmap/app/live"
	"github.com/attackmap/attackmap/incident"
)

// mapState is what the map tests read from the page.
type mapState struct {
	URL      string
	Clusters int     // drawn clusters
	Singles  int     // markers drawn on their own
	Counts   string  // the clusters' texts, comma separated
	BoxW     float64 // the laid-out .map-view width
	WrapW    float64 // the viewport width
	Homes    string  // the home markers' text
	K        string  // the marker scale --k
}

const readMap = `(() => {
	const cl = [...document.querySelectorAll('#map .mk.cl')];
	const box = document.querySelector('.map-view'), wrap = document.getElementById('map-wrap');
	return {URL: location.href,
		Clusters: cl.length,
		Singles: document.querySelectorAll('#map .mk:not(.free):not(.hid):not(.cl)').length,
		Counts: cl.map(e => e.textContent).join(','),
		BoxW: box.getBoundingClientRect().width, WrapW: wrap.getBoundingClientRect().width,
		Homes: [...document.querySelectorAll('.home')].map(e => e.textContent).join('|'),
		K: box.style.getPropertyValue('--k')};
})()`

func readState(t *testing.T, ctx context.Context) mapState {
	t.Helper()
	var s mapState
	if err := chromedp.Run(ctx, chromedp.Evaluate(readMap, &s)); err != nil {
		t.Fatal(err)
	}
	return s
}

// viewOf returns the view in a page URL (the home view when none).
func viewOf(t *testing.T, raw string) live.View {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, err := live.ParseView(u.Query().Get(live.ViewKey))
	if err != nil {
		t.Fatalf("view in %s: %v", raw, err)
	}
	return v
}

// pagePoint is where the map point of lat/lon is on the page at zoom 1.
func pagePoint(t *testing.T, ctx context.Context, lat, lon float64) (float64, float64) {
	t.Helper()
	var r svgRect
	if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => { const r = document.getElementById('map').getBoundingClientRect();
		return {Left: r.left, Top: r.top, Width: r.width, Height: r.height}; })()`, &r)); err != nil {
		t.Fatal(err)
	}
	p := geo.Project(orb.Point{lon, lat})
	return ScreenPoint(r.Left, r.Top, r.Width, r.Height, p[0], p[1])
}

func wheel(x, y, dy float64) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		return input.DispatchMouseEvent(input.MouseWheel, x, y).WithDeltaX(0).WithDeltaY(dy).Do(ctx)
	})
}

// waitState polls until ok accepts the map's state.
func waitState(t *testing.T, ctx context.Context, what string, ok func(mapState) bool) mapState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var s mapState
	for time.Now().Before(deadline) {
		s = readState(t, ctx)
		if ok(s) {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: never happened; last state %+v", what, s)
	return s
}

// TestMapZoomSplitsClustersAndTheViewSurvivesAReload: two attackers 2°
// apart share one cluster at zoom 1; the wheel zooms in at the pointer,
// the cluster splits, the view goes into the URL next to the other keys,
// and a reload shows the same view. The sensor host is a home marker.
func TestMapZoomSplitsClustersAndTheViewSurvivesAReload(t *testing.T) {
	srv := serve(t)
	now := time.Now().UTC().Truncate(time.Second)
	paris := Incident("par", "203.0.113.50", incident.High, 48.86, 2.35, "FR", now)
	brussels := Incident("bru", "203.0.113.51", incident.Critical, 50.85, 4.35, "BE", now)
	sydney := Incident("syd", "203.0.113.52", incident.Low, -33.87, 151.21, "AU", now)
	publish(t, srv, paris, brussels, sydney)
	bctx, stop := open(t, srv.URL+"/live?wall=0", 1280, 800)
	defer stop()
	waitJS(t, bctx, `!!document.querySelector('#status.st-live')`, "the map never went live")

	// Zoom 1: Paris and Brussels are one cluster of 2 (critical, the
	// higher), Sydney on its own; the host web-1 is a home marker.
	s := waitState(t, bctx, "one cluster and one marker at zoom 1", func(s mapState) bool {
		return s.Clusters == 1 && s.Singles == 1 && strings.Contains(s.Homes, "web-1")
	})
	if s.Counts != "2" {
		t.Errorf("cluster count %q, want 2", s.Counts)
	}
	var fill string
	if err := chromedp.Run(bctx, chromedp.Evaluate(`getComputedStyle(document.querySelector('.mk.cl circle')).fill`, &fill)); err != nil {
		t.Fatal(err)
	}
	if fill != "rgb(239, 68, 68)" {
		t.Errorf("cluster fill %s, want the critical red", fill)
	}

	// A click on a marker on its own selects its incident (the map's
	// listeners leave clicks alone).
	var details string
	sx, sy := pagePoint(t, bctx, -33.87, 151.21)
	if err := chromedp.Run(bctx,
		chromedp.MouseClickXY(sx, sy),
		chromedp.WaitVisible(`#details`, chromedp.ByQuery),
		chromedp.Text(`#details`, &details, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("clicking the Sydney marker: %v", err)
	}
	if !strings.Contains(details, sydney.IP) {
		t.Errorf("details after clicking Sydney: %q", details)
	}

	// Six wheel notches in at Paris: zoom e^3 = 20, at Paris.
	x, y := pagePoint(t, bctx, 48.86, 2.35)
	for i := 0; i < 6; i++ {
		if err := chromedp.Run(bctx, wheel(x, y, -100)); err != nil {
			t.Fatal(err)
		}
	}
	s = waitState(t, bctx, "the cluster splits at zoom 20", func(s mapState) bool {
		return strings.Contains(s.URL, "view=") && s.Clusters == 0 && s.Singles == 3
	})
	v := viewOf(t, s.URL)
	if math.Abs(v.Zoom-math.Exp(3)) > 0.2 {
		t.Errorf("zoom %.2f after six notches, want %.2f", v.Zoom, math.Exp(3))
	}
	if !strings.Contains(s.URL, "wall=0") {
		t.Errorf("the view dropped another query key: %s", s.URL)
	}
	// Zoomed at the pointer: Paris is still under it.
	p := geo.Project(orb.Point{2.35, 48.86})
	if d := math.Hypot(p[0]-v.CX, p[1]-v.CY); d > 30 {
		t.Errorf("view centre %.1f,%.1f is %.1f units from Paris: the zoom did not keep the point under the pointer", v.CX, v.CY, d)
	}
	if r := s.BoxW / s.WrapW; math.Abs(r-v.Zoom) > 0.05*v.Zoom {
		t.Errorf("map box %.0f px in a %.0f px viewport: scale %.2f, want the zoom %.2f", s.BoxW, s.WrapW, r, v.Zoom)
	}
	if k, _ := strconv.ParseFloat(s.K, 64); math.Abs(k*v.Zoom-1) > 0.01 {
		t.Errorf("--k %s at zoom %.2f: markers would not keep their screen size", s.K, v.Zoom)
	}
	var radius float64
	if err := chromedp.Run(bctx, chromedp.Evaluate(`document.querySelector('.mk:not(.free):not(.hid) circle').getBoundingClientRect().width`, &radius)); err != nil {
		t.Fatal(err)
	}
	if radius > 30 {
		t.Errorf("a marker is %.0f px wide at zoom %.1f: it grew with the map", radius, v.Zoom)
	}
	shot(t, bctx, "map-zoomed.png")

	// Reload: the same view and the split markers.
	if err := chromedp.Run(bctx, chromedp.Reload(), chromedp.WaitVisible(`#status.st-live`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	s2 := waitState(t, bctx, "the reloaded map shows the view", func(s mapState) bool {
		return s.Singles == 3 && s.Clusters == 0
	})
	v2 := viewOf(t, s2.URL)
	if math.Abs(v2.Zoom-v.Zoom) > 0.01 || math.Abs(v2.CX-v.CX) > 0.2 || math.Abs(v2.CY-v.CY) > 0.2 {
		t.Errorf("view after reload %+v, want %+v", v2, v)
	}
	if r := s2.BoxW / s2.WrapW; math.Abs(r-v.Zoom) > 0.05*v.Zoom {
		t.Errorf("after reload the map box is at scale %.2f, want %.2f", r, v.Zoom)
	}

	// Keyboard: "-" halves the zoom; the reset button shows the world
	// and drops the view from the URL.
	if err := chromedp.Run(bctx, chromedp.Focus(`#map-wrap`, chromedp.ByQuery), chromedp.KeyEvent("-")); err != nil {
		t.Fatal(err)
	}
	waitState(t, bctx, "minus zooms out", func(s mapState) bool {
		return math.Abs(viewOf(t, s.URL).Zoom-v.Zoom/2) < 0.05
	})
	if err := chromedp.Run(bctx, chromedp.Click(`#zoom-reset`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitState(t, bctx, "reset shows the world", func(s mapState) bool {
		return !strings.Contains(s.URL, "view=") && s.Clusters == 1 && math.Abs(s.BoxW-s.WrapW) < 1
	})

	// A click on the cluster zooms until it splits.
	x, y = pagePoint(t, bctx, 49.9, 3.3)
	if err := chromedp.Run(bctx, chromedp.Evaluate(`(() => { const r = document.querySelector('.mk.cl circle').getBoundingClientRect();
		return [r.left + r.width/2, r.top + r.height/2]; })()`, &[]*float64{&x, &y})); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(bctx, chromedp.MouseClickXY(x, y)); err != nil {
		t.Fatal(err)
	}
	s4 := waitState(t, bctx, "a click on the cluster splits it", func(s mapState) bool {
		return s.Clusters == 0 && s.Singles == 3 && strings.Contains(s.URL, "view=")
	})
	if z := viewOf(t, s4.URL).Zoom; z < 2 {
		t.Errorf("zoom %.2f after a click on the cluster", z)
	}

	// Double click zooms in twofold.
	before := viewOf(t, s4.URL).Zoom
	x, y = 640, 300
	if err := chromedp.Run(bctx, chromedp.MouseClickXY(x, y, chromedp.ClickCount(1)), chromedp.MouseClickXY(x, y, chromedp.ClickCount(2))); err != nil {
		t.Fatal(err)
	}
	waitState(t, bctx, "a double click zooms in", func(s mapState) bool {
		return math.Abs(viewOf(t, s.URL).Zoom-math.Min(2*before, live.MaxZoom)) < 0.05
	})
}

// TestMapDragPans: a drag moves the view by the dragged distance and does
// not select anything.
func TestMapDragPans(t *testing.T) {
	srv := serve(t)
	start := live.View{CX: 500, CY: 300, Zoom: 4}
	bctx, stop := open(t, srv.URL+"/live?view="+start.String(), 1280, 800)
	defer stop()
	if err := chromedp.Run(bctx,
		chromedp.WaitVisible(`#map-wrap`, chromedp.ByQuery),
		chromedp.Sleep(500*time.Millisecond),
	); err != nil {
		t.Fatal(err)
	}
	drag := chromedp.ActionFunc(func(ctx context.Context) error {
		steps := []struct {
			typ  input.MouseType
			x, y float64
		}{{input.MousePressed, 600, 400}, {input.MouseMoved, 620, 410}, {input.MouseMoved, 680, 440}, {input.MouseMoved, 700, 450}, {input.MouseReleased, 700, 450}}
		for _, s := range steps {
			ev := input.DispatchMouseEvent(s.typ, s.x, s.y).WithButton(input.Left).WithClickCount(1)
			if s.typ == input.MouseMoved {
				ev = ev.WithButtons(1)
			}
			if err := ev.Do(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err := chromedp.Run(bctx, drag); err != nil {
		t.Fatal(err)
	}
	var selected int
	if err := chromedp.Run(bctx, chromedp.Evaluate(`document.querySelectorAll('.mk.sel, #details').length`, &selected)); err != nil {
		t.Fatal(err)
	}
	if selected != 0 {
		t.Errorf("the drag selected something (%d)", selected)
	}
	s := waitState(t, bctx, "the drag moves the view", func(s mapState) bool {
		v := viewOf(t, s.URL)
		return v.CX != start.CX
	})
	v := viewOf(t, s.URL)
	// 100 px right and 50 px down at zoom 4 is 100/(4·scale) units west
	// and 50/(4·scale) north.
	var wrapH float64
	if err := chromedp.Run(bctx, chromedp.Evaluate(`document.getElementById('map-wrap').getBoundingClientRect().height`, &wrapH)); err != nil {
		t.Fatal(err)
	}
	scale := live.Screen{W: s.WrapW, H: wrapH}.Scale()
	wantX, wantY := start.CX-100/(4*scale), start.CY-50/(4*scale)
	if math.Abs(v.CX-wantX) > 0.5 || math.Abs(v.CY-wantY) > 0.5 {
		t.Errorf("after the drag the view is %+v, want centre %.1f,%.1f", v, wantX, wantY)
	}
}

// TestMapPinchZoomsAndTheHeatLayerToggles: two pointers moving apart
// zoom by the ratio of their distances around their midpoint; the Heat
// button draws the density layer and puts heat=1 into the URL.
func TestMapPinchZoomsAndTheHeatLayerToggles(t *testing.T) {
	srv := serve(t)
	now := time.Now().UTC()
	var ins []incident.Incident
	for i := 0; i < 20; i++ {
		ins = append(ins, Incident("h"+strconv.Itoa(i), "203.0.113."+strconv.Itoa(i+1), incident.High, 35+float64(i%4), 139+float64(i/4), "JP", now))
	}
	publish(t, srv, ins...)
	bctx, stop := open(t, srv.URL+"/live", 1280, 800)
	defer stop()
	if err := chromedp.Run(bctx,
		chromedp.WaitVisible(`#status.st-live`, chromedp.ByQuery),
		chromedp.WaitVisible(`#map .mk.cl`, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	// Touch pointers, as a phone sends them: 100 px apart, then 300.
	const pinch = `(() => {
		const w = document.getElementById('map-wrap'), r = w.getBoundingClientRect();
		const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
		const ev = (type, id, x) => w.dispatchEvent(new PointerEvent(type, {bubbles: true, pointerId: id,
			pointerType: 'touch', isPrimary: id === 1, clientX: x, clientY: cy, button: 0, buttons: type === 'pointerup' ? 0 : 1}));
		ev('pointerdown', 1, cx - 50); ev('pointerdown', 2, cx + 50);
		for (let d = 50; d <= 150; d += 10) { ev('pointermove', 1, cx - d); ev('pointermove', 2, cx + d); }
		ev('pointerup', 1, cx - 150); ev('pointerup', 2, cx + 150);
		return true; })()`
	var ok bool
	if err := chromedp.Run(bctx, chromedp.Evaluate(pinch, &ok)); err != nil {
		t.Fatal(err)
	}
	s := waitState(t, bctx, "the pinch zooms", func(s mapState) bool { return strings.Contains(s.URL, "view=") })
	if z := viewOf(t, s.URL).Zoom; math.Abs(z-3) > 0.05 {
		t.Errorf("zoom %.2f after spreading two fingers from 100 to 300 px, want 3", z)
	}

	var heat int
	if err := chromedp.Run(bctx,
		chromedp.Click(`#heat-toggle`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll('.heat.on path[d^="M"]').length > 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`document.querySelectorAll('.heat.on path[d^="M"]').length`, &heat),
	); err != nil {
		t.Fatalf("no heat drawn: %v", err)
	}
	s = readState(t, bctx)
	if !strings.Contains(s.URL, "heat=1") || !strings.Contains(s.URL, "view=") {
		t.Errorf("URL after the heat toggle: %s", s.URL)
	}
	if err := chromedp.Run(bctx, chromedp.Reload(), chromedp.WaitVisible(`.heat.on`, chromedp.ByQuery)); err != nil {
		t.Errorf("heat=1 not restored on reload: %v", err)
	}
}
