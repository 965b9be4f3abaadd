// Command bench-app measures the map (`make bench-app`):
//
//   - app.wasm size raw, gzip and brotli (target <= 2.0 MB brotli);
//   - in headless chromium on loopback against a real relay, from a cold
//     load (fresh profile, nothing cached): time to first map paint
//     (target <= 0.5 s) and to first marker (<= 1.0 s), median of -loads;
//   - Go-to-DOM work per incident: main-thread script time and DOM
//     mutations per new incident;
//   - frames per second over 10 s with 2,000 markers and 500 arcs, every
//     marker drawn on its own (?cluster=0): settled, all animating at
//     once (CSS only, and two other ways to draw it), re-pulsed through
//     the relay at 100 and 500 incidents/s (target >= 50 fps at 100/s),
//     and while a scripted wheel and drag zoom and pan (>= 50 fps);
//   - the same at the default clustered home view.
//
// The machine is shared: figures are medians of one run, side by side.
//
// With -screenshot FILE it instead writes a screenshot of the map with a
// realistic set of incidents around the world (docs/screenshot.png).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"github.com/attackmap/attackmap/app/e2e"
	"github.com/attackmap/attackmap/incident"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench-app:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	loads := fs.Int("loads", 5, "cold loads to take the median of")
	shot := fs.String("screenshot", "", "write a screenshot of a realistic map to `file` and exit")
	live := fs.String("url", "", "with -screenshot: photograph the map a running relay or drill serves at this `URL` (e.g. http://127.0.0.1:8080/live) instead of a realistic set")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(e2e.Chromium); err != nil {
		return fmt.Errorf("needs Debian's chromium at %s: %w", e2e.Chromium, err)
	}
	if *shot != "" && *live != "" {
		return screenshotURL(*live, *shot)
	}
	root, err := e2e.Root()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bench-app-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintln(stdout, "building app.wasm and exporting the site (brotli 11)...")
	site, err := e2e.Site(root, tmp, *shot == "")
	if err != nil {
		return err
	}
	if *shot != "" {
		return screenshot(site, tmp, *shot)
	}
	if err := sizes(stdout, site); err != nil {
		return err
	}
	if err := coldLoads(stdout, site, tmp, *loads); err != nil {
		return err
	}
	return animation(stdout, site, tmp)
}

func sizes(w io.Writer, site string) error {
	fmt.Fprintln(w, "\napp.wasm size")
	for _, name := range []string{"app.wasm", "app.wasm.gz", "app.wasm.br"} {
		st, err := os.Stat(filepath.Join(site, "web", name))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-12s %6.2f MB (%d bytes)\n", name, float64(st.Size())/1e6, st.Size())
	}
	return nil
}

// probe is injected into every page before its own scripts: it records
// paint entries and the moment the first marker appears.
const probe = `
window.__bench = {lcp: [], firstMarker: null, appMarker: null, mutations: 0, frames: 0};
new PerformanceObserver(l => { for (const e of l.getEntries()) window.__bench.lcp.push(
	{t: e.startTime, tag: e.element ? e.element.tagName : ''}); }).observe({type: 'largest-contentful-paint', buffered: true});
new MutationObserver((records) => {
	window.__bench.mutations += records.length;
	if (window.__bench.firstMarker === null && document.querySelector('.mk:not(.free)')) {
		window.__bench.firstMarker = performance.now();
	}
	if (window.__bench.appMarker === null && document.querySelector('#map .mk:not(.free)')) {
		window.__bench.appMarker = performance.now();
	}
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
(function count() { window.__bench.frames++; requestAnimationFrame(count); })();
`

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func coldLoads(w io.Writer, site, tmp string, n int) error {
	srv, err := e2e.Serve(site)
	if err != nil {
		return err
	}
	defer srv.Close()
	now := time.Now().UTC()
	if err := srv.Publish(e2e.Incident("first", "203.0.113.9", incident.High, 40.71, -74.01, "US", now)); err != nil {
		return err
	}
	var fcp, mapPaint, marker, appMarker []float64
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		bctx, stop := e2e.Browser(ctx, filepath.Join(tmp, fmt.Sprintf("profile-%d", i)), 1280, 800)
		var res struct {
			FCP float64
			LCP []struct {
				T   float64
				Tag string
			}
			Marker    float64
			AppMarker float64
		}
		err := chromedp.Run(bctx,
			chromedp.ActionFunc(func(ctx context.Context) error {
				_, err := pageAddScript(ctx, probe)
				return err
			}),
			chromedp.Navigate(srv.URL+"/live"),
			chromedp.WaitVisible(`#map .mk:not(.free)`, chromedp.ByQuery),
			chromedp.Sleep(200*time.Millisecond),
			chromedp.Evaluate(`({FCP: (performance.getEntriesByName('first-contentful-paint')[0]||{}).startTime||0,
				LCP: window.__bench.lcp.map(e => ({T: e.t, Tag: e.tag})), Marker: window.__bench.firstMarker,
				AppMarker: window.__bench.appMarker})`, &res),
		)
		stop()
		cancel()
		if err != nil {
			return fmt.Errorf("cold load %d: %w", i, err)
		}
		fcp = append(fcp, res.FCP)
		for _, e := range res.LCP {
			if e.Tag == "IMG" || e.Tag == "image" {
				mapPaint = append(mapPaint, e.T)
				break
			}
		}
		marker = append(marker, res.Marker)
		appMarker = append(appMarker, res.AppMarker)
	}
	fmt.Fprintf(w, "\ncold load, loopback, median of %d (ms from navigation start)\n", n)
	fmt.Fprintf(w, "  first contentful paint  %7.0f\n", median(fcp))
	if len(mapPaint) > 0 {
		fmt.Fprintf(w, "  first map paint (LCP)   %7.0f   (the world image as largest contentful paint, %d of %d loads)\n", median(mapPaint), len(mapPaint), n)
	}
	fmt.Fprintf(w, "  first marker            %7.0f   (web/first.js's circles, drawn before the app runs)\n", median(marker))
	fmt.Fprintf(w, "  first marker of the app %7.0f   (wasm downloaded, compiled, feed applied)\n", median(appMarker))
	return nil
}

// places returns n attacker positions in distinct aggregation cells: a
// grid 3.6° (10 map units) apart in longitude, in bands from 55°S to 75°N.
func places(n int) [][2]float64 {
	out := make([][2]float64, 0, n)
	for i := 0; len(out) < n; i++ {
		lon := -180 + 1.8 + float64(i%100)*3.6
		lat := -55 + float64(i/100)*6.5
		out = append(out, [2]float64{lat, lon})
	}
	return out
}

var sevs = []incident.Severity{incident.Critical, incident.High, incident.Medium, incident.Low, incident.Info}

func metrics(ctx context.Context) (map[string]float64, error) {
	var m []*performance.Metric
	err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		m, err = performance.GetMetrics().Do(ctx)
		return err
	}))
	out := map[string]float64{}
	for _, x := range m {
		out[x.Name] = x.Value
	}
	return out, err
}

// variants are alternative ways to draw the all-animating case, measured
// next to the app's DOM. They change the page from outside (JS injected by
// the benchmark) and are removed again; the app itself is not involved.
var variants = []struct{ label, on, off string }{
	{
		// The suggested "composited" fix: every marker as an absolutely
		// positioned HTML element (a tiny <svg> holding one <circle>) at
		// the projected position, pulsing through the same keyframes. In
		// Chromium 156 SVG children's transform/opacity animations are
		// already composited, so this only trades one layer per <circle>
		// for one layer per <div>; the cost is per composited layer
		// (software compositing: --disable-gpu), and it stays.
		label: "  variant: markers as HTML-positioned layers",
		on: `(() => {
			const map = document.getElementById('map'), wrap = map.parentElement;
			const [vx, vy, vw, vh] = map.getAttribute('viewBox').split(/\s+/).map(Number);
			const r = map.getBoundingClientRect(), w = wrap.getBoundingClientRect();
			const s = Math.min(r.width / vw, r.height / vh);
			const ox = r.left - w.left + (r.width - vw * s) / 2, oy = r.top - w.top + (r.height - vh * s) / 2;
			const box = document.createElement('div');
			box.id = 'bench-html'; box.style.cssText = 'position:absolute;inset:0;pointer-events:none';
			let h = '';
			for (const c of map.querySelectorAll('.mk:not(.free) circle')) {
				const cx = +c.getAttribute('cx'), cy = +c.getAttribute('cy'), cr = +c.getAttribute('r');
				const d = 2 * cr * s, x = ox + (cx - vx) * s - d / 2, y = oy + (cy - vy) * s - d / 2;
				h += '<div style="position:absolute;left:' + x + 'px;top:' + y + 'px;width:' + d + 'px;height:' + d +
					'px;opacity:.6;animation:pulse0 4s ease-out infinite"><svg viewBox="' + (-cr) + ' ' + (-cr) + ' ' + 2 * cr + ' ' + 2 * cr +
					'" style="display:block;width:100%;height:100%;overflow:visible"><circle r="' + cr + '" fill="' +
					c.getAttribute('fill') + '" stroke="#0b1220" stroke-width=".4"/></svg></div>';
			}
			box.innerHTML = h;
			wrap.appendChild(box);
			map.style.visibility = 'hidden';
			const st = document.createElement('style'); st.id = 'bench-loop';
			st.textContent = '.arc:not(.free) { animation: fade0 4s ease-out infinite !important }';
			document.head.appendChild(st);
			return true; })()`,
		off: `(() => { document.getElementById('bench-html').remove(); document.getElementById('bench-loop').remove();
			document.getElementById('map').style.visibility = ''; return true; })()`,
	},
	{
		// The same pulse on properties Chromium cannot composite (r,
		// fill-opacity, stroke-opacity): the main thread restyles and the
		// layer is re-rastered every frame. Not the design (the pulse is
		// transform/opacity only) and worse with a GPU; measured to show
		// where the time goes without one.
		label: "  variant: main-thread pulse (r/fill-opacity)",
		on: `(() => { const s = document.createElement('style'); s.id = 'bench-loop';
			s.textContent = '@keyframes benchR { from { r: var(--r15); fill-opacity: 1 } to { r: var(--r); fill-opacity: .6 } }' +
				' @keyframes benchS { from { stroke-opacity: 1 } to { stroke-opacity: .5 } }' +
				' .mk:not(.free) circle { opacity: 1 !important; animation: benchR 4s ease-out infinite !important }' +
				' .arc:not(.free) { opacity: 1 !important; animation: benchS 4s ease-out infinite !important }';
			for (const c of document.querySelectorAll('.mk:not(.free) circle')) {
				const r = +c.getAttribute('r'); c.style.setProperty('--r', r + 'px'); c.style.setProperty('--r15', 1.5 * r + 'px');
			}
			document.head.appendChild(s); return true; })()`,
		off: `(() => { document.getElementById('bench-loop').remove();
			for (const c of document.querySelectorAll('.mk circle')) { c.style.removeProperty('--r'); c.style.removeProperty('--r15'); }
			return true; })()`,
	},
}

func waitMarkers(ctx context.Context, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	var got int
	for time.Now().Before(deadline) {
		if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll('.mk:not(.free)').length`, &got)); err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%d markers after 60 s, want %d", got, n)
}

var errNoScreenshot = errors.New("no screenshot")

func screenshot(site, tmp, out string) error {
	srv, err := e2e.Serve(site)
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.Publish(realistic(time.Now().UTC())...); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return capture(tmp, out, "1",
		chromedp.Navigate(srv.URL+"/live"),
		chromedp.WaitVisible(`#status.st-live`, chromedp.ByQuery),
		chromedp.ActionFunc(func(ctx context.Context) error {
			// A fresh wave so that some markers pulse in the picture.
			return srv.Publish(realisticWave(time.Now().UTC())...)
		}),
		chromedp.Sleep(900*time.Millisecond),
	)
}

// screenshotURL photographs the map at url as it is (for the README: a
// real `make drill` run), with the newest incident's details open.
func screenshotURL(url, out string) error {
	tmp, err := os.MkdirTemp("", "bench-app-shot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return capture(tmp, out, "0",
		chromedp.Navigate(url),
		chromedp.WaitVisible(`#status.st-live`, chromedp.ByQuery),
		chromedp.WaitVisible(`#list button[data-idx="0"]`, chromedp.ByQuery),
		chromedp.Sleep(1500*time.Millisecond),
	)
}

// capture runs steps in a 1400x860 browser (its profile under tmp), then
// opens the details of the list's entry idx and writes the picture to out
// as PNG.
func capture(tmp, out, idx string, steps ...chromedp.Action) error {
	// Two minutes: the page loads app.wasm and waits for the relay's feed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bctx, stop := e2e.Browser(ctx, filepath.Join(tmp, "profile-shot"), 1400, 860)
	defer stop()
	var png []byte
	steps = append(steps,
		chromedp.Click(`#list button[data-idx="`+idx+`"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#details`, chromedp.ByQuery),
		chromedp.Sleep(300*time.Millisecond),
		chromedp.CaptureScreenshot(&png),
	)
	if err := chromedp.Run(bctx, steps...); err != nil {
		return err
	}
	if len(png) == 0 {
		return errNoScreenshot
	}
	fmt.Println("wrote", out)
	return os.WriteFile(out, png, 0o644)
}

type city struct {
	name, cc string
	lat, lon float64
}

var cities = []city{
	{"Beijing", "CN", 39.9, 116.4}, {"Shanghai", "CN", 31.23, 121.47}, {"Guangzhou", "CN", 23.13, 113.26},
	{"Moscow", "RU", 55.76, 37.62}, {"Saint Petersburg", "RU", 59.93, 30.33}, {"Novosibirsk", "RU", 55.03, 82.92},
	{"Ashburn", "US", 39.04, -77.49}, {"Dallas", "US", 32.78, -96.8}, {"San Jose", "US", 37.34, -121.89},
	{"Amsterdam", "NL", 52.37, 4.9}, {"Frankfurt am Main", "DE", 50.11, 8.68}, {"Paris", "FR", 48.86, 2.35},
	{"São Paulo", "BR", -23.55, -46.63}, {"Mumbai", "IN", 19.08, 72.88}, {"Singapore", "SG", 1.35, 103.82},
	{"Seoul", "KR", 37.57, 126.98}, {"Hanoi", "VN", 21.03, 105.85}, {"Tehran", "IR", 35.69, 51.39},
	{"Lagos", "NG", 6.52, 3.38}, {"Jakarta", "ID", -6.2, 106.85}, {"Bucharest", "RO", 44.43, 26.1},
	{"Kyiv", "UA", 50.45, 30.52}, {"Istanbul", "TR", 41.01, 28.98}, {"Tokyo", "JP", 35.68, 139.69},
	{"Sydney", "AU", -33.87, 151.21}, {"Johannesburg", "ZA", -26.2, 28.05}, {"Buenos Aires", "AR", -34.6, -58.38},
	{"Mexico City", "MX", 19.43, -99.13}, {"Toronto", "CA", 43.65, -79.38}, {"Taipei", "TW", 25.03, 121.57},
}

var sources = []struct {
	src, title string
	sev        incident.Severity
}{
	{"ssh_bruteforce", "SSH brute force", incident.High},
	{"port_scan", "Port scan", incident.Low},
	{"web_scan", "Web scan", incident.Medium},
	{"credential_stuffing", "Credential stuffing", incident.Critical},
	{"port_scan", "Port scan", incident.Info},
}

// realistic is the map's picture: 90 incidents over the last 4 minutes.
func realistic(now time.Time) []incident.Incident {
	return spread(rand.New(rand.NewPCG(7, 11)), 90, 0, func(r *rand.Rand) time.Time {
		return now.Add(-time.Duration(r.IntN(240)) * time.Second)
	})
}

// realisticWave is a fresh wave of 12 incidents at now, so that some
// markers pulse.
func realisticWave(now time.Time) []incident.Incident {
	return spread(rand.New(rand.NewPCG(3, 5)), 12, 1000, func(*rand.Rand) time.Time { return now })
}

// spread draws n incidents from cities and sources with r, numbered from
// first, each at at(r).
func spread(r *rand.Rand, n, first int, at func(*rand.Rand) time.Time) []incident.Incident {
	var out []incident.Incident
	for i := range n {
		c := cities[r.IntN(len(cities))]
		s := sources[r.IntN(len(sources))]
		out = append(out, cityIncident(first+i, c, s.src, s.title, s.sev, at(r), r))
	}
	return out
}

func cityIncident(i int, c city, src, title string, sev incident.Severity, ts time.Time, r *rand.Rand) incident.Incident {
	ip := fmt.Sprintf("%d.%d.%d.%d", 45+r.IntN(170), r.IntN(256), r.IntN(256), 1+r.IntN(254))
	in := e2e.Incident(fmt.Sprintf("%s:%s:%d", src, ip, i), ip, sev, c.lat+r.Float64()*0.3, c.lon+r.Float64()*0.3, c.cc, ts)
	in.Source, in.Title, in.City = src, title, c.name
	in.GeoSource = "dbip"
	in.ASN, in.Org = uint32(10000+r.IntN(50000)), "Example Hosting "+c.cc
	score := r.IntN(101)
	in.AbuseScore = &score
	switch src {
	case "ssh_bruteforce":
		in.Summary = fmt.Sprintf("%d failed logins for %d users in 60 s", 6+r.IntN(40), 1+r.IntN(9))
		in.Evidence = &incident.Evidence{Users: []string{"root", "admin", "ubuntu"}, Ports: []int{22}}
		if r.IntN(3) == 0 {
			in.Action = "blocked"
		}
	case "web_scan":
		in.Summary = "probed 41 paths in 30 s"
		in.Evidence = &incident.Evidence{Paths: []string{"/.env", "/wp-login.php", "/.git/config"}, UserAgents: []string{"Mozilla/5.0 zgrab/0.x"}}
	case "port_scan":
		in.Summary = fmt.Sprintf("knocked on %d closed ports in 20 s", 20+r.IntN(200))
		in.Evidence = &incident.Evidence{Ports: []int{23, 445, 3389, 5900}}
	case "credential_stuffing":
		in.Summary = "312 logins for 298 distinct users in 5 min"
		in.Action = "rate_limited"
	}
	return in
}

func pageAddScript(ctx context.Context, src string) (page.ScriptIdentifier, error) {
	return page.AddScriptToEvaluateOnNewDocument(src).Do(ctx)
}
