package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/paulmach/orb"

	"github.com/attackmap/attackmap/app/geo"
	"github.com/attackmap/attackmap/incident"
)

var (
	siteOnce sync.Once
	siteDir  string
	siteErr  error
)

// site builds app.wasm and the export once per test binary.
func site(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		t.Skipf("browser test needs Debian's chromium at %s (apt-get install chromium; .ci/run does): %v", Chromium, err)
	}
	siteOnce.Do(func() {
		root, err := Root()
		if err != nil {
			siteErr = err
			return
		}
		dir, err := os.MkdirTemp("", "attackmap-e2e-")
		if err != nil {
			siteErr = err
			return
		}
		siteDir, siteErr = Site(root, dir, false)
	})
	if siteErr != nil {
		t.Fatal(siteErr)
	}
	return siteDir
}

// serve starts a relay serving the site (see Serve), closed when the test
// ends.
func serve(t *testing.T) *Server {
	t.Helper()
	srv, err := Serve(site(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// publish pushes incidents through srv, as a sensor would.
func publish(t *testing.T, srv *Server, ins ...incident.Incident) {
	t.Helper()
	if err := srv.Publish(ins...); err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if siteDir != "" {
		os.RemoveAll(filepath.Dir(siteDir))
	}
	os.Exit(code)
}

// artifacts is where screenshots go: $ATTACKMAP_ARTIFACTS, else
// testdata-artifacts/ at the module root (git-ignored).
func artifacts(t *testing.T) string {
	dir := os.Getenv("ATTACKMAP_ARTIFACTS")
	if dir == "" {
		root, err := Root()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "testdata-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

type circleInfo struct {
	CX, CY, Fill string
	X, Y         float64 // centre of the bounding box on the page
}

type svgRect struct{ Left, Top, Width, Height float64 }

func TestMapInChromium(t *testing.T) {
	srv := serve(t)

	now := time.Now().UTC().Truncate(time.Second)
	// One incident before the page loads: it must come in with the feed.
	early := Incident("early", "198.51.100.1", incident.Low, -23.55, -46.63, "BR", now)
	publish(t, srv, early)

	bctx, stop := open(t, srv.URL+"/live", 1280, 800)
	defer stop()
	waitJS(t, bctx, `!!document.querySelector('#status.st-live')`, "the map never went live")

	sydney := Incident("syd", "203.0.113.10", incident.Critical, -33.87, 151.21, "AU", now)
	tokyo := Incident("tok", "203.0.113.20", incident.High, 35.68, 139.69, "JP", now)
	nyc := Incident("nyc", "203.0.113.30", incident.Medium, 40.71, -74.01, "US", now)
	nyc.City, nyc.ASN, nyc.Org = "New York", 64500, "Example Transit"
	nyc.Evidence = &incident.Evidence{Users: []string{"root", "<script>alert(1)</script>"}, Ports: []int{22}}
	abuse := 87
	nyc.AbuseScore = &abuse
	drill := Incident("drill", "203.0.113.40", incident.Info, 64.15, -21.94, "IS", now)
	drill.Tags, drill.GeoSource = []string{"drill"}, "dbip"
	want := []incident.Incident{early, sydney, tokyo, nyc, drill}
	publish(t, srv, sydney, tokyo, nyc, drill)
	waitCount(t, bctx, `.mk:not(.free) circle`, len(want))

	// Positions and colours: every circle sits where geo.Project puts its
	// incident, mapped through the SVG's own box, and has its colour.
	var rect svgRect
	var circles []circleInfo
	if err := chromedp.Run(bctx,
		chromedp.Sleep(4200*time.Millisecond), // let the pulse settle: the box is then the circle itself
		chromedp.Evaluate(`(() => { const r = document.getElementById('map').getBoundingClientRect();
			return {Left: r.left, Top: r.top, Width: r.width, Height: r.height}; })()`, &rect),
		chromedp.Evaluate(`[...document.querySelectorAll('.mk:not(.free) circle')].map(c => {
			const r = c.getBoundingClientRect();
			return {CX: c.getAttribute('cx'), CY: c.getAttribute('cy'), Fill: getComputedStyle(c).fill,
				X: r.left + r.width/2, Y: r.top + r.height/2}; })`, &circles),
	); err != nil {
		t.Fatal(err)
	}
	colours := map[incident.Severity]string{
		incident.Critical: "rgb(239, 68, 68)", incident.High: "rgb(248, 113, 113)",
		incident.Medium: "rgb(245, 158, 11)", incident.Low: "rgb(6, 182, 212)", incident.Info: "rgb(34, 211, 238)",
	}
	for _, in := range want {
		p := geo.Project(orb.Point{*in.Lon, *in.Lat})
		ex, ey := ScreenPoint(rect.Left, rect.Top, rect.Width, rect.Height, p[0], p[1])
		found := false
		for _, c := range circles {
			if math.Hypot(c.X-ex, c.Y-ey) < 1.5 {
				found = true
				if c.Fill != colours[in.Severity] {
					t.Errorf("%s: fill %s, want %s", in.ID, c.Fill, colours[in.Severity])
				}
			}
		}
		if !found {
			t.Errorf("%s: no circle at (%.1f, %.1f); circles %+v", in.ID, ex, ey, circles)
		}
	}

	// Arcs from every located attacker to the host (Frankfurt); Tokyo's
	// does not cross the antimeridian, so all are single subpaths except
	// none: check they exist and have path data.
	var arcs []string
	if err := chromedp.Run(bctx, chromedp.Evaluate(`[...document.querySelectorAll('.arc:not(.free)')].map(a => a.getAttribute('d'))`, &arcs)); err != nil {
		t.Fatal(err)
	}
	if len(arcs) != len(want) {
		t.Errorf("%d arcs, want %d", len(arcs), len(want))
	}
	for _, d := range arcs {
		if !strings.HasPrefix(d, "M") || strings.Count(d, "L") < 2 {
			t.Errorf("arc path %q", d)
		}
	}

	// The sidebar lists the IPs; clicking New York shows its details,
	// with the attacker's markup as text.
	var list string
	if err := chromedp.Run(bctx, chromedp.Text(`#list`, &list, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	for _, in := range want {
		if !strings.Contains(list, in.IP) {
			t.Errorf("sidebar lacks %s: %q", in.IP, list)
		}
	}
	var drillRows, selMarkers, scripts int
	var details, footer string
	if err := chromedp.Run(bctx,
		chromedp.Evaluate(`document.querySelectorAll('#list .row .drill').length`, &drillRows),
		chromedp.Click(`//button[contains(@class,"row")][.//span[@class="ip" and text()="203.0.113.30"]]`, chromedp.BySearch),
		chromedp.WaitVisible(`#details`, chromedp.ByQuery),
		chromedp.Text(`#details`, &details, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('.mk.sel').length`, &selMarkers),
		chromedp.Evaluate(`document.querySelectorAll('#details script, #list script').length`, &scripts),
		chromedp.Text(`.foot`, &footer, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if drillRows != 1 {
		t.Errorf("%d drill labels, want 1", drillRows)
	}
	for _, s := range []string{"New York, United States of America (US)", "AS64500 Example Transit", "<script>alert(1)</script>", "87/100", "web-1", "6 failed logins in 60 s"} {
		if !strings.Contains(details, s) {
			t.Errorf("details lack %q: %q", s, details)
		}
	}
	if selMarkers != 1 || scripts != 0 {
		t.Errorf("selected markers %d (want 1), script elements %d (want 0)", selMarkers, scripts)
	}
	if !strings.Contains(footer, "IP Geolocation by DB-IP") {
		t.Errorf("footer lacks the DB-IP attribution: %q", footer)
	}
	shot(t, bctx, "map.png")

	// Reconnect: the relay drops every connection; incidents published
	// meanwhile arrive after the browser resumes with Last-Event-ID, once.
	srv.CutConnections()
	var late []incident.Incident
	for i := 0; i < 3; i++ {
		late = append(late, Incident(fmt.Sprintf("late-%d", i), fmt.Sprintf("192.0.2.%d", 10+i), incident.High,
			float64(10*i), float64(20*i+30), "IN", now))
	}
	publish(t, srv, late...)
	waitCount(t, bctx, `.mk:not(.free) circle`, len(want)+len(late))
	var ips []string
	if err := chromedp.Run(bctx,
		chromedp.WaitVisible(`#status.st-live`, chromedp.ByQuery),
		chromedp.Sleep(500*time.Millisecond),
		chromedp.Evaluate(`[...document.querySelectorAll('#list .row .ip')].map(e => e.textContent)`, &ips),
	); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, ip := range ips {
		seen[ip]++
	}
	for ip, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times after the reconnect", ip, n)
		}
	}
	if len(ips) != len(want)+len(late) {
		t.Errorf("%d rows after the reconnect, want %d: %v", len(ips), len(want)+len(late), ips)
	}
}

// waitCount polls until selector matches n elements.
func waitCount(t *testing.T, ctx context.Context, selector string, n int) {
	t.Helper()
	var got int
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := chromedp.Run(ctx, chromedp.Evaluate(fmt.Sprintf(`document.querySelectorAll(%q).length`, selector), &got)); err != nil {
			t.Fatal(err)
		}
		if got == n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %d elements after 30 s, want %d", selector, got, n)
}

func shot(t *testing.T, ctx context.Context, name string) {
	var png []byte
	if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(artifacts(t), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// TestOfflineShellShowsTheLastIncidents: once the service worker holds the
// app, the page opens with the relay gone and lists what it last had.
func TestOfflineShellShowsTheLastIncidents(t *testing.T) {
	srv := serve(t)
	now := time.Now().UTC()
	a := Incident("off-a", "198.51.100.77", incident.High, 48.86, 2.35, "FR", now)
	b := Incident("off-b", "198.51.100.78", incident.Low, 41.01, 28.98, "TR", now)
	publish(t, srv, a, b)
	bctx, stop := open(t, srv.URL+"/live", 1280, 800)
	defer stop()
	if err := chromedp.Run(bctx,
		chromedp.WaitVisible(`#status.st-live`, chromedp.ByQuery),
		chromedp.Poll(`navigator.serviceWorker.controller !== null && (localStorage.getItem('attackmap.recent') || '').includes('198.51.100.78')`,
			nil, chromedp.WithPollingTimeout(60*time.Second)),
	); err != nil {
		t.Fatalf("service worker or saved incidents never ready: %v", err)
	}
	srv.Close()
	var list, status string
	if err := chromedp.Run(bctx,
		chromedp.Reload(),
		chromedp.WaitVisible(`#list .row`, chromedp.ByQuery),
		chromedp.Text(`#list`, &list, chromedp.ByQuery),
		chromedp.Poll(`!document.getElementById('status').classList.contains('st-connecting')`, nil, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Text(`#status`, &status, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("offline reload: %v", err)
	}
	if !strings.Contains(list, a.IP) || !strings.Contains(list, b.IP) {
		t.Errorf("offline list %q lacks the last incidents", list)
	}
	if strings.Contains(status, "live") {
		t.Errorf("status %q while the relay is down", status)
	}
}
