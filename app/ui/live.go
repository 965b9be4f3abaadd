package ui

import (
	"strconv"
	"strings"
	"sync"
	"time"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/live"
	"github.com/attackmap/attackmap/incident"
)

// Connection states shown in the header.
const (
	StatusConnecting   = "connecting"
	StatusLive         = "live"
	StatusReconnecting = "reconnecting"
	StatusOffline      = "offline"
)

// localStorage keys.
const (
	keyRelay  = "attackmap.relay"
	keyRecent = "attackmap.recent"
	keyStats  = "attackmap.stats"
)

// Limits and timings of the live connection.
const (
	// maxInbox bounds the incidents waiting for the UI goroutine. They
	// pile up only while the UI goroutine cannot run (a frozen tab); past
	// this the oldest are dropped, since the map is about the present and
	// the relay keeps history. 10,000 is five minutes at 33/s.
	maxInbox = 10000
	// feedLimit is how many recent incidents the initial feed asks for:
	// the relay's maximum, so the map starts with the last five minutes.
	feedLimit = 500
	// maxFeedBytes caps the initial feed: feedLimit incidents of at most
	// incident.MaxBytes each.
	maxFeedBytes = feedLimit * incident.MaxBytes
	// tickEvery drives expiry and the per-minute rate; once a second is
	// as fine as a 5-minute lifetime needs, and it is not per frame.
	tickEvery = time.Second
	// statsEvery re-seeds the statistics from the relay, correcting what
	// the live counting cannot know (incidents leaving the 24 h window).
	statsEvery = time.Minute
	// panelEvery is the sidebar's redraw interval under load: four times a
	// second reads as live and keeps a burst from re-patching the list on
	// every frame.
	panelEvery = 250 * time.Millisecond
	// saveEvery throttles writing the sidebar to localStorage for the
	// offline shell.
	saveEvery = 5 * time.Second
	// The reconnect backoff after the stream failed for good (HTTP error,
	// bad content type: the browser gives up and so do its own retries).
	retryMin = 2 * time.Second
	retryMax = 30 * time.Second
	// probeEvery spaces the probes that explain a failed stream: the
	// stream retries every 2-30 s and each retry that fails would probe
	// again; one explanation per 10 s is enough and costs the relay little.
	probeEvery = 10 * time.Second
)

// Live is the map page.
type Live struct {
	app.Compo

	m      *live.Model
	ctx    app.Context
	relay  string
	status string

	es         *eventSource
	removes    []func()
	lastID     string
	retries    int
	retryTimer app.Value
	retryFunc  app.Func
	stopped    bool

	mu        sync.Mutex
	incoming  []arrival
	control   []func(app.Context)
	scheduled bool
	dropped   int

	savedGen uint64
	savedAt  time.Time
	statsAt  time.Time

	// The sidebar and the stats panel are text-heavy and change with every
	// incident: they are redrawn at most every panelEvery (and the stats
	// on the 1 Hz tick), so a burst of incidents costs marker chunks, not
	// hundreds of text nodes per frame.
	sidebarShown  uint64
	rows          []incident.Incident // the sidebar as last shown
	panelPending  bool
	statsView     live.StatsView
	settingsOpen  bool
	settingsInput string
	settingsErr   string
	hidden        bool
	// askRelay is a ?relay= link waiting for the user's yes; origin is
	// the page's own origin (location.origin), for the header and the
	// question.
	askRelay string
	origin   string

	// problem explains a stream that keeps failing (CORS refused, relay
	// unreachable, HTTP error), from a probe of /api/stats; "" when none.
	problem  string
	probing  bool
	probedAt time.Time

	// sheet is the bottom sheet's snap point on a phone (sheet.go), drag
	// the drag in progress.
	sheet string
	drag  sheetDrag
	// legendOpen is the legend's initial state: open on a wide screen.
	legendOpen bool
	wall       wallState

	// filter is the page's filter (also in the URL, filters.go), query
	// the search box as typed, filterErr what a link held that was left
	// out.
	filter      live.Filter
	query       string
	filterErr   string
	filtersOpen bool
	// replay is the replay in progress (replay.go), nil while live.
	replay *replayState
}

type arrival struct {
	data string
	id   string
}

// OnInit creates the model; it runs on the server too, where the page
// shell is pre-rendered with an empty map.
func (c *Live) OnInit() {
	c.m = live.New(live.Config{})
	c.status = StatusConnecting
	c.statsView = c.m.Stats(time.Now())
	c.sheet = sheetMid
	c.legendOpen = true
}

// OnMount starts the live connection in the browser.
func (c *Live) OnMount(ctx app.Context) {
	if app.IsServer {
		return
	}
	c.ctx = ctx
	c.stopped = false
	c.relay = c.relaySetting(ctx)
	c.settingsInput = c.relay
	c.loadRecent(ctx)
	c.loadFilter(ctx)
	doc := app.Window().Get("document")
	c.removes = append(c.removes, listen(doc, "visibilitychange", func(app.Value) {
		c.post(func(ctx app.Context) { c.hidden = documentHidden() })
	}))
	c.hidden = documentHidden()
	win := app.Window()
	c.wall.on = ctx.Page().URL().Query().Get("wall") == "1"
	// A phone starts with the legend folded to its one line.
	c.legendOpen = win.Get("innerWidth").Int() > 800 || c.wall.on
	c.removes = append(c.removes, c.listenSheet()...)
	c.removes = append(c.removes, c.listenWall()...)
	c.removes = append(c.removes,
		listen(win, "offline", func(app.Value) {
			c.post(func(ctx app.Context) { c.status, c.problem = StatusOffline, "" })
		}),
		// Back online: reconnect now rather than at the end of a backoff
		// that may have grown to 30 s while the network was gone.
		listen(win, "online", func(app.Value) {
			c.post(func(ctx app.Context) {
				if c.stopped || c.es != nil && c.es.ReadyState() != esClosed {
					return
				}
				c.retries = 0
				c.status = StatusReconnecting
				c.disconnect()
				c.connect(ctx)
			})
		}),
	)
	c.connect(ctx)
	ctx.After(tickEvery, c.tick)
}

// OnDismount stops everything OnMount started and releases every js.Func.
func (c *Live) OnDismount() {
	c.stopped = true
	c.disconnect()
	for _, remove := range c.removes {
		remove()
	}
	c.removes = nil
}

// relaySetting returns the remembered relay ("" for the page's own
// origin). A ?relay= link that differs from it is not used: it waits in
// askRelay for the user's yes (see live.ChooseRelay).
func (c *Live) relaySetting(ctx app.Context) string {
	c.origin = app.Window().Get("location").Get("origin").String()
	var saved string
	_ = ctx.LocalStorage().Get(keyRelay, &saved)
	choice := live.ChooseRelay(ctx.Page().URL().Query().Get("relay"), saved)
	c.askRelay = choice.Ask
	if choice.Err != "" {
		c.settingsErr, c.settingsOpen = choice.Err, true
	}
	return choice.Use
}

// watchAsked is the yes to a ?relay= link: watch it and remember it.
func (c *Live) watchAsked(ctx app.Context, e app.Event) {
	r := c.askRelay
	c.askRelay = ""
	c.dropRelayQuery(ctx)
	c.useRelay(ctx, r)
}

// keepRelay is the no: keep watching the current relay and forget the
// link (the address bar loses its ?relay=, so a reload does not ask again).
func (c *Live) keepRelay(ctx app.Context, e app.Event) {
	c.askRelay = ""
	c.dropRelayQuery(ctx)
}

func (c *Live) dropRelayQuery(ctx app.Context) {
	u := *ctx.Page().URL()
	q := u.Query()
	q.Del("relay")
	u.RawQuery = q.Encode()
	app.Window().Get("history").Call("replaceState", nil, "", u.String())
}

// watching names the relay shown for the header ("" for the page's own).
func (c *Live) watching() string { return live.RelayLabel(c.relay, c.origin) }

// renderAsk is the question a ?relay= link raises, in the page (a
// window.confirm would block go-app's goroutine).
func (c *Live) renderAsk() app.UI {
	keep := c.watching()
	if keep == "" {
		keep = c.origin
	}
	return app.Div().Class("relay-ask").ID("relay-ask").Role("alertdialog").
		Aria("labelledby", "relay-ask-q").Body(
		app.P().ID("relay-ask-q").Text("Watch incidents from "+clean(c.askRelay, live.MaxRelayURL)+"?"),
		app.P().Class("hint").Text("A link asked this map to show another relay's incidents. Only say yes if you trust it."),
		app.Button().Type("button").ID("relay-ask-watch").OnClick(c.watchAsked).Text("Watch"),
		app.Button().Type("button").ID("relay-ask-keep").OnClick(c.keepRelay).Text("Keep "+clean(keep, live.MaxRelayURL)),
	)
}

// loadRecent shows the incidents the page had last time, before any
// network answer: the offline shell.
func (c *Live) loadRecent(ctx app.Context) {
	var recent []incident.Incident
	if err := ctx.LocalStorage().Get(keyRecent, &recent); err != nil {
		return
	}
	now := time.Now()
	for i := len(recent) - 1; i >= 0; i-- {
		c.m.Apply(recent[i], now, live.Options{Hidden: true})
	}
	c.savedGen = c.m.SidebarGen()
	// The statistics it had, seeded at the time they were taken: the 24 h
	// numbers stay, the per-minute rate has faded out.
	var st savedStats
	if ctx.LocalStorage().Get(keyStats, &st) == nil && st.Body != "" && !st.At.After(now) {
		if snap, err := live.DecodeSnapshot([]byte(st.Body)); err == nil {
			c.m.Seed(snap, st.At)
		}
	}
	c.showPanels()
}

// connect opens the stream and asks for the recent feed and the stats. The
// stream opens first: an incident published between the two answers is
// then in at least one of them, and the model drops the overlap.
func (c *Live) connect(ctx app.Context) {
	url := live.Endpoint(c.relay, "/api/live-feed/stream")
	if c.lastID != "" {
		url += "?lastEventId=" + c.lastID
	}
	es := openEventSource(url)
	c.es = es
	es.On("open", func(app.Value) {
		c.post(func(ctx app.Context) {
			if c.es == es {
				c.status, c.retries, c.problem = StatusLive, 0, ""
			}
		})
	})
	es.On("error", func(app.Value) {
		state := es.ReadyState()
		c.post(func(ctx app.Context) {
			if c.es != es {
				return
			}
			c.status = StatusReconnecting
			if !online() {
				c.status = StatusOffline
			}
			if state == esClosed {
				c.scheduleReconnect(ctx)
			}
			// Whether the browser retries (a dropped stream) or gave up
			// (an HTTP error, a CORS refusal), find out why; probe
			// spaces these out.
			c.probe()
		})
	})
	es.On("incident", func(ev app.Value) {
		c.postIncident(ev.Get("data").String(), ev.Get("lastEventId").String())
	})
	// A resume point the relay no longer holds (older than its resume
	// window): it sends "reset", then its recent window. What came in
	// between is gone from the stream, so the map resumes after the reset
	// and fetches the statistics again to get the counts right.
	es.On("reset", func(ev app.Value) {
		id := ev.Get("lastEventId").String()
		c.post(func(ctx app.Context) {
			if c.es != es {
				return
			}
			if id != "" {
				c.lastID = id
			}
			c.fetchStats()
		})
	})
	if c.lastID == "" {
		fetchText(live.Endpoint(c.relay, "/api/live-feed?limit="+strconv.Itoa(feedLimit)), maxFeedBytes, func(body string, err error) {
			c.post(func(ctx app.Context) { c.applyFeed(body, err) })
		})
		c.fetchStats()
	}
}

func (c *Live) disconnect() {
	if c.es != nil {
		c.es.Close()
		c.es = nil
	}
	if c.retryFunc != nil {
		app.Window().Call("clearTimeout", c.retryTimer)
		c.retryFunc.Release()
		c.retryFunc = nil
	}
}

// scheduleReconnect reopens a stream the browser gave up on, resuming
// after the last event seen, with exponential backoff.
func (c *Live) scheduleReconnect(ctx app.Context) {
	c.disconnect()
	delay := retryMin << min(c.retries, 4)
	if delay > retryMax {
		delay = retryMax
	}
	c.retries++
	var f app.Func
	f = app.FuncOf(func(this app.Value, args []app.Value) any {
		c.post(func(ctx app.Context) {
			if c.retryFunc != f || c.stopped {
				return
			}
			c.retryFunc.Release()
			c.retryFunc = nil
			c.connect(ctx)
		})
		return nil
	})
	c.retryFunc = f
	c.retryTimer = app.Window().Call("setTimeout", f, delay.Milliseconds())
}

// probe finds out why the stream failed for good (see probe in
// browser.go), at most once per probeEvery, and shows what to do.
func (c *Live) probe() {
	now := time.Now()
	if c.probing || now.Sub(c.probedAt) < probeEvery {
		return
	}
	c.probing, c.probedAt = true, now
	relay := c.relay
	probe(live.Endpoint(relay, "/api/stats"), relay == "", func(r probeResult, status int) {
		c.post(func(ctx app.Context) {
			c.probing = false
			if relay != c.relay {
				return // the user switched relays meanwhile
			}
			if r == probeOffline {
				c.status, c.problem = StatusOffline, ""
				return
			}
			if c.status != StatusLive {
				c.problem = problemText(r, status, c.origin, relay)
			}
		})
	})
}

func (c *Live) fetchStats() {
	c.statsAt = time.Now()
	fetchText(live.Endpoint(c.relay, "/api/stats"), live.MaxStatsBytes, func(body string, err error) {
		c.post(func(ctx app.Context) {
			if err != nil {
				return // the live counts still run; the next refresh retries
			}
			if snap, err := live.DecodeSnapshot([]byte(body)); err == nil {
				now := time.Now()
				c.m.Seed(snap, now)
				c.statsView = c.statsNow()
				// Kept for the offline shell, beside the incidents.
				ctx.LocalStorage().Set(keyStats, savedStats{At: now, Body: body})
			}
		})
	})
}

func (c *Live) applyFeed(body string, err error) {
	if err != nil {
		if c.status != StatusLive {
			if !online() {
				c.status = StatusOffline
			} else {
				c.probe()
			}
		}
		return
	}
	now := time.Now()
	opt := live.Options{Hidden: c.hidden}
	// Oldest first, as the relay sends them; decoded in one pass.
	decodeFeed([]byte(body), func(in incident.Incident) { c.m.Apply(in, now, opt) })
	c.showPanels()
}

// post hands a function to the UI goroutine. It is called from js.Func
// callbacks and never blocks: at most one ctx.Dispatch is pending at a
// time, so go-app's dispatch queue cannot fill up because of us.
func (c *Live) post(fn func(app.Context)) {
	c.mu.Lock()
	c.control = append(c.control, fn)
	c.wakeLocked()
}

// postIncident queues one SSE data line; see maxInbox for the bound.
func (c *Live) postIncident(data, id string) {
	c.mu.Lock()
	if len(c.incoming) >= maxInbox {
		c.incoming = c.incoming[1:]
		c.dropped++
	}
	c.incoming = append(c.incoming, arrival{data, id})
	c.wakeLocked()
}

func (c *Live) wakeLocked() {
	wake := !c.scheduled
	c.scheduled = true
	c.mu.Unlock()
	if wake {
		c.ctx.Dispatch(c.drain)
	}
}

// drain runs on the UI goroutine: everything that arrived since the last
// frame is applied at once, and go-app renders once.
func (c *Live) drain(ctx app.Context) {
	c.mu.Lock()
	control, incoming := c.control, c.incoming
	c.control, c.incoming, c.scheduled = nil, nil, false
	c.mu.Unlock()
	for _, fn := range control {
		fn(ctx)
	}
	if len(incoming) == 0 {
		return
	}
	now := time.Now()
	opt := live.Options{Live: true, Hidden: documentHidden()}
	critical := false
	for _, a := range incoming {
		if a.id != "" {
			c.lastID = a.id
		}
		if in, err := incident.Decode([]byte(a.data)); err == nil {
			if r := c.m.Apply(in, now, opt); (r == live.Added || r == live.Updated) && wantsBeep(&in) {
				critical = true
			}
		} else {
			c.m.Rejected++
		}
	}
	if critical {
		c.beep(now, false)
	}
	if c.status != StatusLive {
		c.status, c.problem = StatusLive, ""
	}
	c.schedulePanels(ctx)
}

// schedulePanels redraws the sidebar panelEvery from now, once.
func (c *Live) schedulePanels(ctx app.Context) {
	if c.panelPending || c.sidebarShown == c.shown().SidebarGen() {
		return
	}
	c.panelPending = true
	ctx.After(panelEvery, func(ctx app.Context) {
		c.panelPending = false
		c.showPanels()
	})
}

// showPanels makes the sidebar and the stats current (of the replay
// while one runs).
func (c *Live) showPanels() {
	m := c.shown()
	c.sidebarShown = m.SidebarGen()
	c.rows = append(c.rows[:0], m.Sidebar()...)
	c.statsView = c.statsNow()
}

// statsNow is the stats panel's figures, on the replay's clock during a
// replay.
func (c *Live) statsNow() live.StatsView {
	if m := c.shown(); m != c.m {
		return m.Stats(c.replay.p.Clock())
	}
	return c.m.Stats(time.Now())
}

// tick expires old markers, refreshes the rate, re-seeds the stats and
// saves the sidebar for the offline shell.
func (c *Live) tick(ctx app.Context) {
	if c.stopped {
		return
	}
	now := time.Now()
	c.m.Expire(now)
	c.statsView = c.statsNow()
	c.wallTick()
	if now.Sub(c.statsAt) >= statsEvery {
		c.fetchStats()
	}
	if g := c.m.SidebarGen(); g != c.savedGen && now.Sub(c.savedAt) >= saveEvery {
		c.savedGen, c.savedAt = g, now
		ctx.LocalStorage().Set(keyRecent, c.m.Sidebar())
	}
	ctx.After(tickEvery, c.tick)
}

// Render draws the page.
func (c *Live) Render() app.UI {
	m := c.shown()
	selID, _, _ := m.Selected()
	var sel incident.Incident
	hasSel := false
	if selID != "" {
		sel, hasSel = m.Incident(selID)
	}
	cls := []string{"am"}
	if c.wall.on {
		cls = append(cls, "wall")
	}
	return app.Div().Class(cls...).Body(
		app.Header().Class("top").Body(
			app.H1().Body(
				app.Img().Src("/web/icon.svg").Alt("attackmap logo").Class("logo"),
				app.Text("attackmap"),
			),
			// role=status: screen readers announce connection changes
			// politely, without moving focus.
			app.Span().Class("status", "st-"+c.status).ID("status").Role("status").Text(statusText(c.status)),
			app.If(c.watching() != "", func() app.UI {
				return app.Span().Class("relay-label").ID("relay-label").Text("from " + clean(c.watching(), live.MaxRelayURL))
			}),
			app.If(c.wall.on, func() app.UI {
				return app.Button().Type("button").Class("sound").ID("sound").
					Aria("pressed", c.wall.sound).Title("Beep on critical incidents").
					OnClick(c.toggleSound).Text("Sound")
			}),
			app.Button().Class("settings-btn").Type("button").
				Aria("expanded", c.settingsOpen).Aria("controls", "settings").
				OnClick(c.toggleSettings).Text("Settings"),
		),
		// go-app matches children by position: what comes and goes sits
		// in a fixed slot, so the map and the list after it are never
		// rebuilt (nor lose the focus) when a notice appears.
		app.Div().Class("notices").Body(
			app.If(c.askRelay != "", func() app.UI { return c.renderAsk() }),
			app.If(c.problem != "", func() app.UI {
				return app.P().Class("problem").ID("problem").Role("alert").Text(c.problem)
			}),
			app.If(c.settingsOpen, func() app.UI { return c.renderSettings() }),
		),
		app.Div().Class(barClass(c.filtersOpen)...).Body(
			// On a phone the filters fold behind this button (CSS);
			// on a wide screen they are always shown and it is hidden.
			app.Button().Type("button").Class("filters-toggle").ID("filters-toggle").
				Aria("expanded", c.filtersOpen).Aria("controls", "filters").
				OnClick(c.toggleFilters).Text(filtersLabel(c.filter)),
			c.renderFilters(),
			c.renderReplay(),
		),
		app.Main().Class("body").Body(
			&mapView{M: m, Gen: m.Gen(), Host: c}, // the map (mapview.go)
			&legend{Open: c.legendOpen},
			app.Aside().Class("side", "sheet-"+c.sheet).ID("side").Body(
				app.Button().Type("button").Class("sheet-handle").ID("sheet-handle").
					Aria("label", "Incident list: drag, or press to resize").
					Aria("expanded", c.sheet == sheetFull).OnClick(c.stepSheet).Body(
					app.Span().Class("grip").Aria("hidden", true),
				),
				&statsPanel{View: c.statsView},
				// A fixed slot, so the list after it keeps its place (and
				// the focused row) when the details open.
				app.Div().Class("details-slot").Body(
					app.If(hasSel, func() app.UI { return &details{M: m, In: sel} }),
				),
				&sidebar{M: m, Rows: &c.rows, Gen: c.sidebarShown, Empty: c.emptyHint()},
			),
		),
		app.Footer().Class("foot").Body(
			app.Span().Text("Map data: Natural Earth (public domain) via world-atlas"),
			app.If(m.DBIP, func() app.UI {
				return app.A().Href("https://db-ip.com").Rel("noopener").Target("_blank").ID("dbip").
					Text("IP Geolocation by DB-IP")
			}),
			app.If(c.dropped > 0, func() app.UI {
				return app.Span().Class("warn").Text(strconv.Itoa(c.dropped) + " incidents dropped while the page was busy")
			}),
		),
		app.Div().Class("sr-only").ID("announce").Aria("live", "polite").Text(m.Announcement),
	)
}

func statusText(s string) string {
	switch s {
	case StatusLive:
		return "● live"
	case StatusReconnecting:
		return "reconnecting…"
	case StatusOffline:
		return "offline: showing the last incidents"
	}
	return "connecting…"
}

func (c *Live) renderSettings() app.UI {
	return app.Form().Class("settings").ID("settings").OnSubmit(c.saveSettings).Body(
		app.Label().For("relay-url").Text("Relay URL (empty: this site)"),
		app.Input().ID("relay-url").Type("url").Placeholder("https://relay.example.org").
			Value(c.settingsInput).OnInput(c.ValueTo(&c.settingsInput)),
		app.Button().Type("submit").Text("Save"),
		app.Button().Type("button").OnClick(c.resetSettings).Text("Use this site"),
		app.If(c.settingsErr != "", func() app.UI { return app.P().Class("err").Role("alert").Text(c.settingsErr) }),
		app.P().Class("hint").Text("Another relay must allow this page's origin in its CORS settings."),
	)
}

func (c *Live) toggleSettings(ctx app.Context, e app.Event) {
	c.settingsOpen = !c.settingsOpen
	c.settingsInput = c.relay
}

func (c *Live) saveSettings(ctx app.Context, e app.Event) {
	e.PreventDefault()
	r, err := live.NormalizeRelay(c.settingsInput)
	if err != nil {
		c.settingsErr = err.Error()
		return
	}
	c.useRelay(ctx, r)
}

func (c *Live) resetSettings(ctx app.Context, e app.Event) {
	c.useRelay(ctx, "")
}

func (c *Live) useRelay(ctx app.Context, r string) {
	c.settingsErr, c.settingsOpen = "", false
	ctx.LocalStorage().Set(keyRelay, r)
	if r == c.relay {
		return
	}
	c.relay, c.lastID, c.retries = r, "", 0
	c.disconnect()
	c.m = live.New(live.Config{})
	c.m.SetFilter(c.filter)
	c.replay = nil
	c.showPanels()
	c.status = StatusConnecting
	c.connect(ctx)
}

// onMarkerClick selects the newest incident of the clicked marker: one
// delegated handler for all markers instead of one js.Func each.
func (c *Live) onMarkerClick(ctx app.Context, e app.Event) {
	el := e.Get("target").Call("closest", "[data-slot]")
	if !el.Truthy() {
		return
	}
	slot, err := strconv.Atoi(el.Get("dataset").Get("slot").String())
	m := c.shown()
	if err != nil || slot < 0 || slot >= len(m.Markers) || !m.Markers[slot].Used {
		return
	}
	m.Select(m.Markers[slot].Latest)
	c.showPanels()
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// clean caps and escapes text for display; it is always set as a text
// node too, never as markup.
func clean(s string, max int) string { return incident.CleanText(s, max) }

func joinClean(list []string, max int) string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = clean(s, max)
	}
	return strings.Join(out, ", ")
}

// emptyHint is what the list says while it has no rows.
func (c *Live) emptyHint() emptyHint {
	return emptyHint{Status: c.status, Problem: c.problem, Total: c.statsView.Total, Seeded: c.statsView.Seeded}
}
