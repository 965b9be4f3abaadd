package e2e

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay"
)

// open starts a browser of the given size on the page at u and waits
// until the map is running: the prerendered page says "connecting" until
// app.wasm runs and the stream answers (or fails), and only then do its
// handlers exist.
func open(t *testing.T, u string, w, h int) (context.Context, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	bctx, stop := Browser(ctx, t.TempDir(), w, h)
	if err := chromedp.Run(bctx,
		chromedp.EmulateViewport(int64(w), int64(h)),
		chromedp.Navigate(u),
		chromedp.WaitVisible(`#status`, chromedp.ByQuery),
		chromedp.Poll(`!document.getElementById('status').classList.contains('st-connecting') || !!document.getElementById('relay-ask')`,
			nil, chromedp.WithPollingTimeout(60*time.Second)),
	); err != nil {
		stop()
		cancel()
		t.Fatalf("opening %s: %v", u, err)
	}
	return bctx, func() { stop(); cancel() }
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	var v T
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, &v)); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// waitJS polls until the expression is true.
func waitJS(t *testing.T, ctx context.Context, js, what string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Poll(js, nil, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("%s: %v (page: %s)", what, err, eval[string](t, ctx, `document.querySelector('.am') ? document.querySelector('.am').innerText.slice(0, 600) : ''`))
	}
}

// TestCORSRefusingRelayShowsTheExplanation: the map on one origin
// watching a relay that does not allow it says so, with the flag to add,
// instead of "reconnecting" for ever; a relay that is not there at all is
// "cannot reach".
func TestCORSRefusingRelayShowsTheExplanation(t *testing.T) {
	dir := site(t)
	page, err := Serve(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	other, err := ServeConfig("", relay.Config{AllowOrigins: []string{"https://map.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// An address where nothing listens: a port just let go.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name, relay string
		want        []string
	}{
		{"cors refused", other.URL, []string{"does not allow " + page.URL, "--allow-origin " + page.URL}},
		{"nothing listening", gone, []string{"Cannot reach the relay at " + gone}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, stop := open(t, page.URL+"/live?relay="+url.QueryEscape(tc.relay), 1280, 800)
			defer stop()
			if err := chromedp.Run(ctx, chromedp.Click(`#relay-ask-watch`, chromedp.ByQuery)); err != nil {
				t.Fatal(err)
			}
			waitJS(t, ctx, `!!document.getElementById('problem')`, "no explanation shown")
			msg := eval[string](t, ctx, `document.getElementById('problem').textContent`)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("explanation %q lacks %q", msg, w)
				}
			}
			if role := eval[string](t, ctx, `document.getElementById('problem').getAttribute('role')`); role != "alert" {
				t.Errorf("problem role %q, want alert", role)
			}
			shot(t, ctx, "state-"+strings.ReplaceAll(tc.name, " ", "-")+".png")
		})
	}
}

// TestQuietRelaySaysWhyAndHowToSeeIt: a live relay with no incidents
// explains the filtering of private sources and names the drill.
func TestQuietRelaySaysWhyAndHowToSeeIt(t *testing.T) {
	srv := serve(t)
	ctx, stop := open(t, srv.URL+"/live", 1280, 800)
	defer stop()
	waitJS(t, ctx, `document.querySelector('#status.st-live') && (document.getElementById('empty') || {}).textContent.includes('drill')`,
		"the empty list never explained itself")
	empty := eval[string](t, ctx, `document.getElementById('empty').textContent`)
	for _, w := range []string{"private and loopback", "no log files found", "sudo make drill"} {
		if !strings.Contains(empty, w) {
			t.Errorf("empty state %q lacks %q", empty, w)
		}
	}
	note := eval[string](t, ctx, `(document.getElementById('marker-note') || {}).textContent || ''`)
	if !strings.Contains(note, "last 5 minutes") {
		t.Errorf("the map does not say markers show the last 5 minutes: %q", note)
	}
	if alt := eval[string](t, ctx, `document.querySelector('.logo').alt`); alt == "" {
		t.Error("the logo has no alt text")
	}
	if role := eval[string](t, ctx, `document.getElementById('status').getAttribute('role')`); role != "status" {
		t.Errorf("status role %q: connection changes are not announced", role)
	}
	shot(t, ctx, "state-quiet.png")
}

// TestStatsEscalationMovesTheCount: one incident raised high, then
// updated to critical, counts once, as critical, in the map's panel.
func TestStatsEscalationMovesTheCount(t *testing.T) {
	srv := serve(t)
	ctx, stop := open(t, srv.URL+"/live", 1280, 800)
	defer stop()
	waitJS(t, ctx, `!!document.querySelector('#status.st-live')`, "never live")
	now := time.Now().UTC().Truncate(time.Second)
	in := Incident("esc", "203.0.113.50", incident.High, 52.52, 13.40, "DE", now)
	publish(t, srv, in)
	count := func(sev string) string {
		return fmt.Sprintf(`(document.querySelector('#stats .sevs .s-%s .n') || {}).textContent`, sev)
	}
	waitJS(t, ctx, count("high")+` === '1'`, "high never counted")
	up := in
	up.Severity, up.LastSeen, up.Count, up.TS = incident.Critical, now.Add(10*time.Second), 12, now.Add(10*time.Second)
	publish(t, srv, up)
	waitJS(t, ctx, count("critical")+` === '1'`, "critical never counted")
	if h := eval[string](t, ctx, count("high")); h != "0" {
		t.Errorf("high still counts %s after the escalation", h)
	}
}

// TestFiltersInTheURLRestoreTheView: a filter set in the toolbar goes
// into the URL; the same URL opened afresh shows the same list, markers
// and counts.
func TestFiltersInTheURLRestoreTheView(t *testing.T) {
	srv := serve(t)
	now := time.Now().UTC().Truncate(time.Second)
	ins := []incident.Incident{
		Incident("f1", "203.0.113.61", incident.Critical, -33.87, 151.21, "AU", now),
		Incident("f2", "203.0.113.62", incident.High, 35.68, 139.69, "JP", now),
		Incident("f3", "203.0.113.63", incident.Critical, 40.71, -74.01, "US", now),
		Incident("f4", "203.0.113.64", incident.Low, 48.86, 2.35, "FR", now),
	}
	publish(t, srv, ins...)
	ctx, stop := open(t, srv.URL+"/live", 1280, 800)
	defer stop()
	waitJS(t, ctx, `document.querySelectorAll('#list .row').length === 4`, "four rows never listed")

	if err := chromedp.Run(ctx, chromedp.Click(`#f-sev-critical`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `document.querySelectorAll('#list .row').length === 2`, "the severity filter did not apply to the list")
	if err := chromedp.Run(ctx, chromedp.SetValue(`#f-cc`, "US", chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById('f-cc').dispatchEvent(new Event('change', {bubbles: true}))`, nil)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `document.querySelectorAll('#list .row').length === 1`, "the country filter did not apply")
	u := eval[string](t, ctx, `location.href`)
	q, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if q.Query().Get("sev") != "critical" || q.Query().Get("cc") != "US" {
		t.Fatalf("the URL does not hold the filter: %s", u)
	}
	type view struct {
		IPs     []string
		Markers int
		Total   string
	}
	read := func(ctx context.Context) view {
		waitJS(t, ctx, `document.querySelectorAll('#list .row').length === 1`, "filtered list")
		return eval[view](t, ctx, `({IPs: [...document.querySelectorAll('#list .row .ip')].map(e => e.textContent),
			Markers: document.querySelectorAll('.mk:not(.free)').length,
			Total: document.querySelector('#stats .sevs .s-critical .n').textContent})`)
	}
	before := read(ctx)

	ctx2, stop2 := open(t, u, 1280, 800)
	defer stop2()
	after := read(ctx2)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("the shared URL shows %+v, the page that made it %+v", after, before)
	}
	if len(after.IPs) != 1 || after.IPs[0] != "203.0.113.63" || after.Markers != 1 {
		t.Errorf("filtered view %+v, want only 203.0.113.63 with one marker", after)
	}
	if pressed := eval[string](t, ctx2, `document.getElementById('f-sev-critical').getAttribute('aria-pressed')`); pressed != "true" {
		t.Errorf("restored page: critical toggle aria-pressed=%q", pressed)
	}
	shot(t, ctx2, "filters.png")
}

// TestKeyboardFlow: the list is one Tab stop, the arrows move in it,
// Enter opens the details with the focus in them, Escape closes them and
// the focus is back on the row.
func TestKeyboardFlow(t *testing.T) {
	srv := serve(t)
	now := time.Now().UTC().Truncate(time.Second)
	var ins []incident.Incident
	for i := range 4 {
		ins = append(ins, Incident(fmt.Sprintf("k%d", i), fmt.Sprintf("203.0.113.%d", 70+i), incident.High, float64(10*i), float64(20*i), "US", now.Add(time.Duration(i)*time.Second)))
	}
	publish(t, srv, ins...)
	ctx, stop := open(t, srv.URL+"/live", 1280, 800)
	defer stop()
	waitJS(t, ctx, `document.querySelectorAll('#list .row').length === 4`, "rows")
	if n := eval[int](t, ctx, `document.querySelectorAll('#list .row[tabindex="0"]').length`); n != 1 {
		t.Fatalf("%d rows are Tab stops, want 1", n)
	}
	focused := func() string {
		return eval[string](t, ctx, `(() => { const a = document.activeElement; if (!a) return '';
			const ip = a.querySelector && a.querySelector('.ip'); return a.id || (ip ? ip.textContent : a.tagName); })()`)
	}
	// Tab until the focus is in the list (the header and the toolbar
	// come first), then once more: it must leave the list.
	inList := false
	for range 40 {
		if err := chromedp.Run(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
		if eval[bool](t, ctx, `!!document.activeElement.closest('#list')`) {
			inList = true
			break
		}
	}
	if !inList {
		t.Fatal("Tab never reached the list")
	}
	if f := focused(); f != "203.0.113.73" {
		t.Errorf("Tab landed on %q, want the newest row 203.0.113.73", f)
	}
	if err := chromedp.Run(ctx, chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown)); err != nil {
		t.Fatal(err)
	}
	if f := focused(); f != "203.0.113.71" {
		t.Errorf("two arrows down: focus on %q, want 203.0.113.71", f)
	}
	if err := chromedp.Run(ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `document.activeElement && document.activeElement.id === 'details-title'`, "Enter did not move the focus into the details")
	if ip := eval[string](t, ctx, `document.querySelector('#details .ipv').textContent`); ip != "203.0.113.71" {
		t.Errorf("details show %s", ip)
	}
	if err := chromedp.Run(ctx, chromedp.KeyEvent(kb.Escape)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `!document.getElementById('details')`, "Escape did not close the details")
	waitJS(t, ctx, `!!document.activeElement.closest('#list')`, "focus did not return to the list")
	if f := focused(); f != "203.0.113.71" {
		t.Errorf("after Escape the focus is on %q, want the row 203.0.113.71", f)
	}
	// The list is one Tab stop: Tab leaves it.
	if err := chromedp.Run(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
		t.Fatal(err)
	}
	if eval[bool](t, ctx, `!!document.activeElement.closest('#list')`) {
		t.Errorf("Tab moved to another row (%s) instead of leaving the list", focused())
	}
}

// TestPhoneLayout: at 390x844 the map spans the viewport's width at the
// top and the world fills its box; at 320 nothing overflows sideways;
// every control is at least 24 px; at 820x1000 the map uses the width.
func TestPhoneLayout(t *testing.T) {
	srv := serve(t)
	now := time.Now().UTC().Truncate(time.Second)
	drill := Incident("ph1", "203.0.113.90", incident.Critical, 64.15, -21.94, "IS", now)
	drill.Tags = []string{"drill"}
	publish(t, srv, drill, Incident("ph2", "203.0.113.91", incident.Info, -23.55, -46.63, "BR", now))
	type box struct{ Left, Top, Width, Height, VW, VH float64 }
	for _, size := range []struct{ w, h int }{{390, 844}, {320, 640}, {820, 1000}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			ctx, stop := open(t, srv.URL+"/live", size.w, size.h)
			defer stop()
			waitJS(t, ctx, `document.querySelectorAll('#list .row').length === 2`, "rows")
			b := eval[box](t, ctx, `(() => { const r = document.querySelector('.map-wrap').getBoundingClientRect();
				return {Left: r.left, Top: r.top, Width: r.width, Height: r.height, VW: document.documentElement.clientWidth, VH: innerHeight}; })()`)
			if math.Abs(b.Width-b.VW) > 1 || b.Left > 1 {
				t.Errorf("map %+v: not the full viewport width %v", b, b.VW)
			}
			// The world is 1000 x 708 map units: a box of that shape
			// is filled, with no empty bands.
			if math.Abs(b.Height-b.Width*0.708) > 3 {
				t.Errorf("map box %.0fx%.0f: the world does not fill it", b.Width, b.Height)
			}
			if over := eval[float64](t, ctx, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); over > 0 {
				t.Errorf("page overflows sideways by %.0f px", over)
			}
			tapTargets := func() {
				t.Helper()
				small := eval[[]string](t, ctx, `[...document.querySelectorAll('button, select, input, summary, a')]
					.filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && (r.height < 24 || r.width < 24); })
					.map(e => (e.id || e.className || e.tagName) + ' ' + Math.round(e.getBoundingClientRect().width) + 'x' + Math.round(e.getBoundingClientRect().height))`)
				if len(small) > 0 {
					t.Errorf("tap targets under 24 px: %v", small)
				}
			}
			tapTargets()
			clipped := eval[[]string](t, ctx, `[...document.querySelectorAll('#list .drill, #list .sev, .legend summary')]
				.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.className + ': ' + e.textContent)`)
			if len(clipped) > 0 {
				t.Errorf("clipped text: %v", clipped)
			}
			shot(t, ctx, fmt.Sprintf("phone-%dx%d.png", size.w, size.h))

			// A tap on a row shows its details in view, in the sheet.
			if err := chromedp.Run(ctx, chromedp.Click(`#list .row`, chromedp.ByQuery)); err != nil {
				t.Fatal(err)
			}
			waitJS(t, ctx, `!!document.getElementById('details')`, "no details after a tap")
			d := eval[box](t, ctx, `(() => { const r = document.getElementById('details').getBoundingClientRect();
				return {Left: r.left, Top: r.top, Width: r.width, Height: r.height, VW: innerWidth, VH: innerHeight}; })()`)
			if d.Top < 0 || d.Top > d.VH-40 {
				t.Errorf("details at %+v: out of view", d)
			}
			tapTargets()
			shot(t, ctx, fmt.Sprintf("phone-%dx%d-details.png", size.w, size.h))
		})
	}
}

// TestReplayPlaysHistoryInOrderAndReturnsToLive: the replay fetches the
// relay's history and plays it oldest first; an incident that arrives
// live meanwhile is not in the replay, and "Back to live" shows the live
// view with it, every incident once.
func TestReplayPlaysHistoryInOrderAndReturnsToLive(t *testing.T) {
	srv := serve(t)
	now := time.Now().UTC().Truncate(time.Second)
	var hist []incident.Incident
	for i, c := range []struct {
		lat, lon float64
		cc       string
	}{{-33.87, 151.21, "AU"}, {35.68, 139.69, "JP"}, {40.71, -74.01, "US"}, {48.86, 2.35, "FR"}} {
		ts := now.Add(time.Duration(i-4) * 20 * time.Second) // 20 s apart, the newest 20 s ago
		hist = append(hist, Incident(fmt.Sprintf("h%d", i), fmt.Sprintf("203.0.113.%d", 100+i), incident.High, c.lat, c.lon, c.cc, ts))
	}
	for _, in := range hist { // one at a time: the history is in publishing order
		publish(t, srv, in)
	}
	ctx, stop := open(t, srv.URL+"/live", 1280, 800)
	defer stop()
	waitJS(t, ctx, `document.querySelectorAll('#list .row').length === 4`, "the live list never held the history")

	if err := chromedp.Run(ctx, chromedp.Click(`#replay-start`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `!!document.getElementById('replay-play')`, "the replay never loaded the history")
	// Record the newest row each time the list changes.
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.__seen = []; new MutationObserver(() => {
		const ip = document.querySelector('#list .row .ip'); const v = ip ? ip.textContent : '';
		if (window.__seen[window.__seen.length - 1] !== v) window.__seen.push(v); })
		.observe(document.getElementById('list'), {childList: true, subtree: true, characterData: true}); true`, nil)); err != nil {
		t.Fatal(err)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#list .row').length`); n != 0 {
		t.Errorf("the replay starts with %d rows, want none (the start of the history)", n)
	}
	// One incident arrives live during the replay.
	liveIn := Incident("live-1", "203.0.113.200", incident.Critical, 55.75, 37.62, "RU", time.Now().UTC())
	publish(t, srv, liveIn)
	if err := chromedp.Run(ctx,
		chromedp.SetValue(`#replay-speed`, "60", chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById('replay-speed').dispatchEvent(new Event('change', {bubbles: true}))`, nil),
		chromedp.Click(`#replay-play`, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `document.querySelectorAll('#list .row').length === 4`, "the replay did not play the whole history")
	seen := eval[[]string](t, ctx, `window.__seen.filter(v => v !== '')`)
	want := []string{"203.0.113.100", "203.0.113.101", "203.0.113.102", "203.0.113.103"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("replay showed %v newest in turn, want %v", seen, want)
	}
	if eval[bool](t, ctx, `[...document.querySelectorAll('#list .row .ip')].some(e => e.textContent === '203.0.113.200')`) {
		t.Error("the live incident appeared in the replay")
	}
	shot(t, ctx, "replay.png")

	if err := chromedp.Run(ctx, chromedp.Click(`#replay-live`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `!document.getElementById('replay-play') && document.querySelectorAll('#list .row').length === 5`,
		"back to live does not show the four and the live one")
	ips := eval[[]string](t, ctx, `[...document.querySelectorAll('#list .row .ip')].map(e => e.textContent)`)
	count := map[string]int{}
	for _, ip := range ips {
		count[ip]++
	}
	for _, ip := range append(want, "203.0.113.200") {
		if count[ip] != 1 {
			t.Errorf("%s listed %d times back in live: %v", ip, count[ip], ips)
		}
	}
	if ips[0] != "203.0.113.200" {
		t.Errorf("the newest live row is %s, want the one that arrived during the replay", ips[0])
	}
}

// TestOfflineSaysOfflineAndKeepsTheStats: with the network gone, the
// installed map says "offline" and shows the incidents and the 24 h
// numbers it last had, not zeros.
func TestOfflineSaysOfflineAndKeepsTheStats(t *testing.T) {
	srv := serve(t)
	now := time.Now().UTC()
	publish(t, srv, Incident("o1", "198.51.100.81", incident.High, 48.86, 2.35, "FR", now),
		Incident("o2", "198.51.100.82", incident.Critical, 41.01, 28.98, "TR", now))
	ctx, stop := open(t, srv.URL+"/live", 1280, 800)
	defer stop()
	waitJS(t, ctx, `navigator.serviceWorker.controller !== null && (localStorage.getItem('attackmap.recent') || '').includes('198.51.100.82')
		&& (localStorage.getItem('attackmap.stats') || '').includes('24h')`, "service worker, saved incidents or saved stats never ready")
	srv.Close()
	if err := chromedp.Run(ctx, network.EmulateNetworkConditions(true, 0, -1, -1), chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `document.querySelectorAll('#list .row').length === 2 && document.querySelector('#status.st-offline')`,
		"offline reload: no saved list, or the status does not say offline")
	status := eval[string](t, ctx, `document.getElementById('status').textContent`)
	total := eval[string](t, ctx, `document.querySelector('#stats .total').textContent`)
	crit := eval[string](t, ctx, `document.querySelector('#stats .sevs .s-critical .n').textContent`)
	if !strings.Contains(status, "offline") {
		t.Errorf("status %q", status)
	}
	if !strings.Contains(total, "2 in 24 h") || crit != "1" {
		t.Errorf("offline stats: %q, critical %s; want the saved 2 in 24 h, 1 critical", total, crit)
	}
	shot(t, ctx, "state-offline.png")
}

// TestWallMode: ?wall=1 drops the chrome, enlarges the type, offers the
// sound toggle (off by default) and drifts slowly.
func TestWallMode(t *testing.T) {
	srv := serve(t)
	now := time.Now().UTC()
	var ins []incident.Incident
	for i := range 30 {
		ins = append(ins, Incident(fmt.Sprintf("w%d", i), fmt.Sprintf("203.0.113.%d", 150+i), incident.High, float64(i*2), float64(i*5), "US", now))
	}
	publish(t, srv, ins...)
	ctx, stop := open(t, srv.URL+"/live?wall=1", 1280, 720)
	defer stop()
	waitJS(t, ctx, `!!document.querySelector('.am.wall') && document.querySelectorAll('#list .row').length === 30`, "wall mode never on")
	type wall struct {
		FontSize               string
		TitleShown, FootShown  bool
		FiltersShown           bool
		Sound                  string
		Animation              string
		ScrollTop, ScrollAfter float64
	}
	w := eval[wall](t, ctx, `(() => { const vis = s => { const e = document.querySelector(s); return !!e && e.getClientRects().length > 0; };
		return {FontSize: getComputedStyle(document.querySelector('.am')).fontSize, TitleShown: vis('.top h1'), FootShown: vis('.foot'),
			FiltersShown: vis('#filters'), Sound: document.getElementById('sound').getAttribute('aria-pressed'),
			Animation: getComputedStyle(document.querySelector('.am')).animationName,
			ScrollTop: document.querySelector('.side').scrollTop}; })()`)
	if w.FontSize != "18px" || w.TitleShown || w.FootShown || w.FiltersShown || w.Sound != "false" || w.Animation != "drift" {
		t.Errorf("wall mode: %+v; want 18px type, no title, footer or filters, sound off, the drift", w)
	}
	// The list scrolls by itself.
	waitJS(t, ctx, `document.querySelector('.side').scrollTop > 0`, "the wall's list does not scroll")
	shot(t, ctx, "wall.png")
}

// TestBottomSheetDrags: on a phone the list is a sheet that a drag of its
// handle moves to the nearest snap point, and a tap steps.
func TestBottomSheetDrags(t *testing.T) {
	srv := serve(t)
	ctx, stop := open(t, srv.URL+"/live", 390, 844)
	defer stop()
	waitJS(t, ctx, `!!document.querySelector('.side.sheet-mid')`, "the sheet does not start at mid")
	type pt struct{ X, Y float64 }
	h := eval[pt](t, ctx, `(() => { const r = document.getElementById('sheet-handle').getBoundingClientRect(); return {X: r.left + r.width/2, Y: r.top + r.height/2}; })()`)
	drag := func(toY float64) {
		t.Helper()
		if err := chromedp.Run(ctx,
			chromedp.MouseEvent(input.MousePressed, h.X, h.Y, chromedp.ButtonLeft),
			chromedp.MouseEvent(input.MouseMoved, h.X, (h.Y+toY)/2, chromedp.ButtonLeft),
			chromedp.MouseEvent(input.MouseMoved, h.X, toY, chromedp.ButtonLeft),
			chromedp.MouseEvent(input.MouseReleased, h.X, toY, chromedp.ButtonLeft),
		); err != nil {
			t.Fatal(err)
		}
	}
	drag(60) // up to the header
	waitJS(t, ctx, `!!document.querySelector('.side.sheet-full')`, "a drag to the top did not snap the sheet full")
	h = eval[pt](t, ctx, `(() => { const r = document.getElementById('sheet-handle').getBoundingClientRect(); return {X: r.left + r.width/2, Y: r.top + r.height/2}; })()`)
	drag(830) // down to the bottom
	waitJS(t, ctx, `!!document.querySelector('.side.sheet-peek')`, "a drag to the bottom did not snap the sheet to peek")
	if err := chromedp.Run(ctx, chromedp.Click(`#sheet-handle`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `!!document.querySelector('.side.sheet-mid') && !document.querySelector('.side').style.height`, "a tap did not step the sheet to mid")
}
