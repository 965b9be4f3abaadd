package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"github.com/attackmap/attackmap/app/e2e"
	"github.com/attackmap/attackmap/incident"
)

// animBench is one page under load: the relay, the browser tab, and the
// 2,000 places the incidents come from.
type animBench struct {
	w   io.Writer
	srv *e2e.Server
	ctx context.Context
	pl  [][2]float64
	gen int
	// probed is set once the probe script is installed in the tab.
	probed bool
}

// mk is incident i of generation gen (a newer copy of the same incident
// in a later generation: it re-pulses its marker).
func (b *animBench) mk(i, gen int, now time.Time) incident.Incident {
	in := e2e.Incident(fmt.Sprintf("b-%d", i), fmt.Sprintf("10.%d.%d.%d", gen%200, i/250, i%250+1), sevs[i%5],
		b.pl[i][0], b.pl[i][1], "US", now)
	in.IP = fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)
	in.Count = 6 + gen
	in.LastSeen = now
	return in
}

// publish sends incidents lo..hi-1 of generation gen in batches of 100,
// one batch every gap.
func (b *animBench) publish(lo, hi, gen int, gap time.Duration) error {
	start := time.Now()
	for k := lo; k < hi; k += 100 {
		now := time.Now().UTC()
		batch := make([]incident.Incident, 0, 100)
		for i := k; i < min(hi, k+100); i++ {
			batch = append(batch, b.mk(i, gen, now))
		}
		if err := b.srv.Publish(batch...); err != nil {
			return err
		}
		time.Sleep(time.Until(start.Add(time.Duration((k-lo)/100+1) * gap)))
	}
	return nil
}

func (b *animBench) eval(js string, out any) error {
	return chromedp.Run(b.ctx, chromedp.Evaluate(js, out))
}

// animation measures the map under load: per-incident work, then frames
// per second with every marker drawn on its own (cluster=0, the most
// the map draws: 2,000 circles), then at the default clustered home view,
// and while zooming and panning.
func animation(w io.Writer, site, tmp string) error {
	srv, err := e2e.Serve(site)
	if err != nil {
		return err
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bctx, stop := e2e.Browser(ctx, filepath.Join(tmp, "profile-anim"), 1280, 800)
	defer stop()
	b := &animBench{w: w, srv: srv, ctx: bctx, pl: places(2000)}
	if err := b.open("/live?cluster=0"); err != nil {
		return err
	}
	if err := b.perIncident(); err != nil {
		return err
	}
	if err := b.publish(1000, 2000, 0, 100*time.Millisecond); err != nil {
		return err
	}
	if err := waitMarkers(bctx, 2000); err != nil {
		return err
	}
	var markers, arcs int
	b.eval(`document.querySelectorAll('.mk:not(.free)').length`, &markers)
	b.eval(`document.querySelectorAll('.arc:not(.free)').length`, &arcs)
	fmt.Fprintf(w, "\nframes per second, 10 s each (%d markers, %d arcs, every marker drawn: ?cluster=0)\n", markers, arcs)
	if err := b.settledAndAnimating(); err != nil {
		return err
	}
	for _, rate := range []int{100, 500} {
		b.settle()
		f, m, err := b.fps(10*time.Second, b.churn(rate))
		if err != nil {
			return err
		}
		b.report(fmt.Sprintf("re-pulsing through the relay, %d incidents/s", rate), f, m)
	}
	if err := b.zoomPan("zoom and pan (wheel, drag), 2,000 markers"); err != nil {
		return err
	}
	return b.clustered()
}

// open loads the map at path and waits until it is live. The probe is
// added once per tab: twice would count every frame twice.
func (b *animBench) open(path string) error {
	return chromedp.Run(b.ctx,
		chromedp.ActionFunc(func(ctx context.Context) error {
			if b.probed {
				return nil
			}
			b.probed = true
			if _, err := pageAddScript(ctx, probe); err != nil {
				return err
			}
			return performance.Enable().Do(ctx)
		}),
		chromedp.Navigate(b.srv.URL+path),
		chromedp.WaitVisible(`#status.st-live`, chromedp.ByQuery),
	)
}

// perIncident is the work per incident: 1,000 new incidents at 100/s.
func (b *animBench) perIncident() error {
	before, err := metrics(b.ctx)
	if err != nil {
		return err
	}
	var mut0, mut1 float64
	b.eval(`window.__bench.mutations`, &mut0)
	if err := b.publish(0, 1000, 0, time.Second); err != nil {
		return err
	}
	if err := waitMarkers(b.ctx, 1000); err != nil {
		return err
	}
	after, _ := metrics(b.ctx)
	b.eval(`window.__bench.mutations`, &mut1)
	fmt.Fprintln(b.w, "\nGo-to-DOM work per new incident (1,000 incidents at 100/s)")
	fmt.Fprintf(b.w, "  main-thread script time  %.3f ms/incident (Go + JS glue + DOM calls)\n", (after["ScriptDuration"]-before["ScriptDuration"])*1000/1000)
	fmt.Fprintf(b.w, "  style+layout time        %.3f ms/incident\n", (after["RecalcStyleDuration"]+after["LayoutDuration"]-before["RecalcStyleDuration"]-before["LayoutDuration"])*1000/1000)
	fmt.Fprintf(b.w, "  DOM mutation records     %.1f /incident\n", (mut1-mut0)/1000)
	return nil
}

// fps counts frames for d while during runs, with the main thread's
// script and style+layout time per second.
func (b *animBench) fps(d time.Duration, during func(stop <-chan struct{})) (float64, map[string]float64, error) {
	var f0, f1 float64
	m0, _ := metrics(b.ctx)
	b.eval(`window.__bench.frames`, &f0)
	t0 := time.Now()
	done, finished := make(chan struct{}), make(chan struct{})
	go func() { during(done); close(finished) }()
	time.Sleep(d)
	close(done)
	<-finished
	if err := b.eval(`window.__bench.frames`, &f1); err != nil {
		return 0, nil, err
	}
	m1, _ := metrics(b.ctx)
	el := time.Since(t0).Seconds()
	delta := map[string]float64{}
	for k, v := range m1 {
		delta[k] = (v - m0[k]) / el
	}
	return (f1 - f0) / el, delta, nil
}

func idle(stop <-chan struct{}) { <-stop }

// churn re-publishes the 2,000 incidents round robin at perSecond.
func (b *animBench) churn(perSecond int) func(stop <-chan struct{}) {
	return func(stop <-chan struct{}) {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		i := 0
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				now := time.Now().UTC()
				batch := make([]incident.Incident, 0, perSecond/10)
				for j := 0; j < perSecond/10; j++ {
					batch = append(batch, b.mk(i, b.gen+1, now))
					if i++; i == 2000 {
						i, b.gen = 0, b.gen+1
					}
				}
				if err := b.srv.Publish(batch...); err != nil {
					fmt.Fprintln(os.Stderr, err)
				}
			}
		}
	}
}

func (b *animBench) settle() { chromedp.Run(b.ctx, chromedp.Sleep(4500*time.Millisecond)) }

func (b *animBench) report(label string, fps float64, m map[string]float64) {
	fmt.Fprintf(b.w, "  %-44s %5.1f fps   script %4.0f ms/s   style+layout %4.0f ms/s\n",
		label, fps, m["ScriptDuration"]*1000, (m["RecalcStyleDuration"]+m["LayoutDuration"])*1000)
}

// settledAndAnimating: the page idle, then every marker and arc animating
// at once driven by CSS alone (what the browser can draw, no Go work),
// then the same load drawn the other ways of variants.
func (b *animBench) settledAndAnimating() error {
	b.settle()
	f, m, err := b.fps(10*time.Second, idle)
	if err != nil {
		return err
	}
	b.report("settled, no incidents (Go idle)", f, m)
	const loop = `(() => { const s = document.createElement('style'); s.id = 'bench-loop';
		s.textContent = '.mk:not(.free) circle { animation: pulse0 4s ease-out infinite !important }' +
			' .arc:not(.free) { animation: fade0 4s ease-out infinite !important }';
		document.head.appendChild(s); return true; })()`
	var ok bool
	b.eval(loop, &ok)
	cssFPS, cssM, err := b.fps(10*time.Second, idle)
	if err != nil {
		return err
	}
	b.eval(`document.getElementById('bench-loop').remove(), true`, &ok)
	b.report("all 2,000 + 500 animating, CSS only", cssFPS, cssM)
	for _, v := range variants {
		b.settle()
		if err := b.eval(v.on, &ok); err != nil {
			return fmt.Errorf("variant %q: %w", v.label, err)
		}
		f, m, err := b.fps(10*time.Second, idle)
		if err != nil {
			return err
		}
		b.eval(v.off, &ok)
		b.report(v.label, f, m)
		if cssFPS > 0 {
			fmt.Fprintf(b.w, "  %-44s x%.2f the app's DOM\n", "", f/cssFPS)
		}
	}
	return nil
}

// gesture drives the map like a hand for as long as stop is open: a
// second of continuous wheel zoom in (a trackpad's stream of small
// deltas), a second of dragging, a second of zooming out, a pause that
// lets the map lay itself out again, and so on.
func (b *animBench) gesture(stop <-chan struct{}) {
	var r struct{ X, Y, W, H float64 }
	b.eval(`(() => { const r = document.getElementById('map-wrap').getBoundingClientRect();
		return {X: r.left, Y: r.top, W: r.width, H: r.height}; })()`, &r)
	cx, cy := r.X+r.W/2, r.Y+r.H/2
	frame := time.Second / 60
	do := func(a input.DispatchMouseEventParams) bool {
		select {
		case <-stop:
			return false
		default:
		}
		if err := chromedp.Run(b.ctx, chromedp.ActionFunc(func(ctx context.Context) error { return a.Do(ctx) })); err != nil {
			return false
		}
		time.Sleep(frame)
		return true
	}
	wheel := func(dy float64) bool {
		for i := 0; i < 60; i++ {
			if !do(*input.DispatchMouseEvent(input.MouseWheel, cx+float64(i%7)*10, cy).WithDeltaX(0).WithDeltaY(dy)) {
				return false
			}
		}
		return true
	}
	drag := func() bool {
		x, y := cx-150, cy
		if !do(*input.DispatchMouseEvent(input.MousePressed, x, y).WithButton(input.Left).WithClickCount(1)) {
			return false
		}
		for i := 0; i < 60; i++ {
			x += 5
			if !do(*input.DispatchMouseEvent(input.MouseMoved, x, y+float64(i%20)).WithButton(input.Left).WithButtons(1)) {
				return false
			}
		}
		return do(*input.DispatchMouseEvent(input.MouseReleased, x, y).WithButton(input.Left).WithClickCount(1))
	}
	for wheel(-6) && drag() && wheel(6) && drag() {
		select {
		case <-stop:
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// zoomPan measures frames while gesture drives the map (from the home
// view), then resets the view.
func (b *animBench) zoomPan(label string) error {
	b.settle()
	f, m, err := b.fps(10*time.Second, b.gesture)
	if err != nil {
		return err
	}
	b.report(label, f, m)
	var ok bool
	return b.eval(`document.getElementById('zoom-reset').click(), true`, &ok)
}

// clustered reloads the map with its default clustering and measures the
// home view under the same load, and zooming through the levels.
func (b *animBench) clustered() error {
	if err := b.open("/live"); err != nil {
		return err
	}
	if err := b.publish(0, 2000, b.gen+1, 50*time.Millisecond); err != nil {
		return err
	}
	b.gen++
	if err := waitMarkers(b.ctx, 2000); err != nil {
		return err
	}
	var shown, clusters int
	b.settle()
	b.eval(`document.querySelectorAll('.mk:not(.free):not(.hid)').length`, &shown)
	b.eval(`document.querySelectorAll('.mk.cl').length`, &clusters)
	fmt.Fprintf(b.w, "\nframes per second, default view (2,000 markers drawn as %d circles, %d of them clusters)\n", shown, clusters)
	f, m, err := b.fps(10*time.Second, b.churn(100))
	if err != nil {
		return err
	}
	b.report("re-pulsing through the relay, 100 incidents/s", f, m)
	return b.zoomPan("zoom and pan (wheel, drag), clusters")
}
