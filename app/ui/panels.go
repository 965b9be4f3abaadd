package ui

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/live"
	"github.com/attackmap/attackmap/incident"
)

// sidebar lists the newest incidents. Rows are buttons with a roving
// tabindex: the list is one Tab stop (the active row), the arrows, Home
// and End move between rows, Enter opens the details and moves the focus
// into them, Escape closes them and the focus returns to the row. Clicks
// and keys are handled once on the list, not per row.
type sidebar struct {
	app.Compo
	M *live.Model
	// Rows is the list as last shown (the model's may be newer): clicks
	// resolve against what the user saw.
	Rows *[]incident.Incident
	Gen  uint64
	// Empty is what the list says when it has no rows.
	Empty emptyHint
	// active is the id of the row that holds the list's Tab stop (the
	// first row when it is no longer listed).
	active string
}

// Render draws the list, newest first.
func (s *sidebar) Render() app.UI {
	items := *s.Rows
	selID, _, _ := s.M.Selected()
	stop := -1 // the row with tabindex 0
	for i := range items {
		if items[i].ID == s.active {
			stop = i
		}
	}
	if stop < 0 && len(items) > 0 {
		stop = 0
	}
	rows := make([]app.UI, len(items))
	for i := range items {
		in := &items[i]
		rows[i] = app.Li().Body(s.row(i, in, in.ID == selID, i == stop))
	}
	empty := s.Empty
	f := s.M.Filter()
	empty.Filtered = !f.IsZero()
	empty.BlockedOnly = f.BlockedOnly
	return app.Section().Class("feed").Aria("label", "Newest incidents").Body(
		app.Div().Class("feed-head").Body(
			app.H2().ID("feed-title").Text("Newest incidents"),
		),
		app.Div().Class("empty-slot").Body(app.If(len(rows) == 0, func() app.UI { return empty.render() })),
		app.Ol().Class("list").ID("list").Aria("labelledby", "feed-title").
			On("click", s.onClick).On("keydown", s.onKey).Body(rows...),
	)
}

func (s *sidebar) row(i int, in *incident.Incident, selected, tabStop bool) app.UI {
	cls := []string{"row", "s-" + string(in.Severity)}
	if selected {
		cls = append(cls, "sel")
	}
	action := in.Action
	if action == "" {
		action = "logged"
	}
	actCls := []string{"act"}
	if ac := actionClass(in.Action); ac != "" {
		cls = append(cls, ac)
		actCls = append(actCls, "act-"+ac) // a badge: blocked, or would block (dry run)
	}
	tab := -1
	if tabStop {
		tab = 0
	}
	return app.Button().Type("button").Class(cls...).DataSet("idx", i).TabIndex(tab).
		Aria("pressed", selected).Aria("controls", "details").Body(
		app.Span().Class("t").Text(in.TS.Local().Format("15:04:05")),
		app.Span().Class("ip").Text(clean(in.IP, incident.MaxIP)),
		sevLabel(in.Severity),
		app.Span().Class("type").Style("--type", live.TypeColour(in.Source)).Text(clean(live.Label(in.Source), 64)),
		app.Span().Class("badges").Body(
			app.Span().Class("cc").Text(countryLabel(in.Country)),
			app.Span().Class(actCls...).Text(clean(action, incident.MaxAction)),
			app.If(in.AbuseScore != nil, func() app.UI {
				return app.Span().Class("abuse").Text("abuse " + strconv.Itoa(*in.AbuseScore))
			}),
			app.If(live.IsDrill(in), func() app.UI { return app.Span().Class("drill").Text("drill") }),
		),
	)
}

// sevGlyphs give each severity a shape besides its colour, so that low
// and info (two cyans) and critical and high (two reds) differ for
// everyone, in the list, the stats and the legend.
var sevGlyphs = map[incident.Severity]string{
	incident.Critical: "◆", incident.High: "▲", incident.Medium: "■", incident.Low: "●", incident.Info: "○",
}

// sevLabel is a severity as shape and word.
func sevLabel(sev incident.Severity) app.UI {
	return app.Span().Class("sev").Body(
		app.Span().Class("glyph").Aria("hidden", true).Text(sevGlyphs[sev]),
		app.Text(string(sev)),
	)
}

// countryLabel is the country's name with its code ("Germany (DE)"), the
// code alone when the name is unknown, "Unknown location" without a code.
func countryLabel(code string) string {
	if code == "" {
		return "Unknown location"
	}
	code = clean(code, 8)
	if name := live.CountryName(code); name != "" {
		return name + " (" + code + ")"
	}
	return code
}

func (s *sidebar) onClick(ctx app.Context, e app.Event) {
	el := e.Get("target").Call("closest", "button[data-idx]")
	if !el.Truthy() {
		return
	}
	i, err := strconv.Atoi(el.Get("dataset").Get("idx").String())
	items := *s.Rows
	if err != nil || i < 0 || i >= len(items) {
		return
	}
	id := items[i].ID
	s.active = id
	if cur, _, _ := s.M.Selected(); cur == id {
		s.M.Select("") // a second click clears the selection
		return
	}
	s.M.Select(id)
	// A click from the keyboard (Enter or Space: detail is 0) moves the
	// focus into the details, once they are drawn; a click or a tap
	// scrolls them into view (they sit above the list).
	keyboard := e.Get("detail").Int() == 0
	ctx.Defer(func(app.Context) {
		if keyboard {
			focusID("details-title")
		} else if el := app.Window().GetElementByID("details"); el.Truthy() {
			el.Call("scrollIntoView", map[string]any{"block": "nearest"})
		}
	})
}

// onKey moves the focus between rows with the arrow keys, Home and End,
// moving the list's one Tab stop with it; Escape clears the selection.
func (s *sidebar) onKey(ctx app.Context, e app.Event) {
	key := e.Get("key").String()
	active := app.Window().Get("document").Get("activeElement")
	li := active.Call("closest", "li")
	if !li.Truthy() {
		ctx.PreventUpdate()
		return
	}
	var next app.Value
	switch key {
	case "ArrowDown":
		next = li.Get("nextElementSibling")
	case "ArrowUp":
		next = li.Get("previousElementSibling")
	case "Home":
		next = li.Get("parentElement").Get("firstElementChild")
	case "End":
		next = li.Get("parentElement").Get("lastElementChild")
	case "Escape":
		s.M.Select("")
		return
	default:
		ctx.PreventUpdate()
		return
	}
	e.PreventDefault()
	if !next.Truthy() {
		ctx.PreventUpdate()
		return
	}
	btn := next.Call("querySelector", "button")
	i, err := strconv.Atoi(btn.Get("dataset").Get("idx").String())
	if items := *s.Rows; err == nil && i >= 0 && i < len(items) {
		s.active = items[i].ID
	}
	// Move the Tab stop in the page at once (the render that follows
	// agrees), then the focus.
	active.Set("tabIndex", -1)
	btn.Set("tabIndex", 0)
	btn.Call("focus")
}

// focusID focuses the element with the given id, if it is on the page.
func focusID(id string) {
	if el := app.Window().GetElementByID(id); el.Truthy() {
		el.Call("focus")
	}
}

// focusRow gives the focus back to the list's Tab stop (the row last
// active), after the details closed.
func focusRow() {
	if el := app.Window().Get("document").Call("querySelector", `#list button[tabindex="0"]`); el.Truthy() {
		el.Call("focus")
	}
}

// details shows everything about the selected incident, as text, with
// links to look the address and the CVEs up elsewhere.
type details struct {
	app.Compo
	M  *live.Model
	In incident.Incident
}

// Render draws the details panel.
func (d *details) Render() app.UI {
	in := &d.In
	title := in.Title
	if title == "" {
		title = live.Label(in.Source)
	}
	var rows []app.UI
	add := func(k, v string) {
		if v != "" {
			rows = append(rows, app.Dt().Text(k), app.Dd().Text(v))
		}
	}
	addUI := func(k string, v app.UI) { rows = append(rows, app.Dt().Text(k), app.Dd().Body(v)) }
	if ip := clean(in.IP, incident.MaxIP); ip != "" {
		addUI("Source IP", app.Span().Body(
			app.Span().Class("ipv").Text(ip),
			app.If(len(ipLinks(in.IP)) > 0, func() app.UI { return linkList("lookup", ipLinks(in.IP)) }),
		))
	}
	place := countryLabel(in.Country)
	if in.City != "" {
		place = clean(in.City, incident.MaxCity) + ", " + place
	}
	add("Location", place)
	asn := ""
	if in.ASN != 0 {
		asn = "AS" + strconv.FormatUint(uint64(in.ASN), 10)
	}
	if in.Org != "" {
		asn = strings.TrimSpace(asn + " " + clean(in.Org, incident.MaxOrg))
	}
	add("Network", asn)
	add("Attack", live.Label(in.Source))
	addUI("Severity", sevLabel(in.Severity))
	if in.Action != "" {
		dd := app.Dd().Class("act").Text(clean(in.Action, incident.MaxAction))
		if ac := actionClass(in.Action); ac != "" {
			dd = dd.Class("act-" + ac)
		}
		rows = append(rows, app.Dt().Text("Action"), dd)
	}
	add("Host", clean(in.Host, incident.MaxHost))
	add("First seen", stamp(in.FirstSeen))
	add("Last seen", stamp(in.LastSeen))
	add("Raised", stamp(in.TS))
	if in.Count > 0 {
		add("Count", strconv.Itoa(in.Count))
	}
	if in.AbuseScore != nil {
		add("Abuse score", strconv.Itoa(*in.AbuseScore)+"/100")
	}
	if len(in.Tags) > 0 {
		addUI("Tags", tagList(in.Tags))
	}
	add("Geolocation", clean(in.GeoSource, incident.MaxGeoSource))
	if ev := in.Evidence; ev != nil {
		// Lists stay lists: a user agent holds commas, a joined line
		// would not say where one ends.
		list := func(k string, v []string, max int) {
			if len(v) > 0 {
				addUI(k, textList(v, max))
			}
		}
		list("Users", ev.Users, 64)
		add("Ports", joinInts(ev.Ports))
		list("Paths", ev.Paths, 128)
		list("User agents", ev.UserAgents, 128)
		add("Methods", joinClean(ev.Methods, 16))
		add("Statuses", joinInts(ev.Statuses))
		add("Process", clean(ev.Comm, 64))
		add("Parent", clean(ev.Parent, 64))
		add("Command", clean(strings.Join(ev.Argv, " "), 256))
		add("Destination", clean(ev.Dst, 128))
		list("Lists", ev.Lists, 64)
	}
	return app.Section().Class("details").ID("details").Aria("labelledby", "details-title").
		On("keydown", d.onKey).Body(
		app.Div().Class("details-head").Body(
			// The heading takes the focus when the details open from the
			// keyboard (tabindex -1: focusable, not a Tab stop).
			app.H2().ID("details-title").TabIndex(-1).Body(
				app.Text(clean(title, incident.MaxTitle)),
				app.If(actionClass(in.Action) == "blocked", func() app.UI { return app.Span().Class("badge-blocked").Text("blocked") }),
				app.If(live.IsDrill(in), func() app.UI { return app.Span().Class("drill").Text("drill") }),
			),
			app.Button().Type("button").Class("close").ID("details-close").
				Aria("label", "Close the details").Title("Close (Escape)").OnClick(d.onClose).Text("✕"),
		),
		app.If(in.Summary != "", func() app.UI { return app.P().Class("summary").Text(clean(in.Summary, incident.MaxSummary)) }),
		app.Dl().Body(rows...),
	)
}

// onKey closes the details on Escape and gives the focus back to the row.
func (d *details) onKey(ctx app.Context, e app.Event) {
	if e.Get("key").String() != "Escape" {
		ctx.PreventUpdate()
		return
	}
	e.PreventDefault()
	e.Call("stopPropagation")
	d.close(ctx)
}

func (d *details) onClose(ctx app.Context, e app.Event) { d.close(ctx) }

// close clears the selection. The focus goes back to the row first,
// while the details still stand: the update that follows removes them,
// and with them this component's context (a deferred call would not run).
func (d *details) close(ctx app.Context) {
	focusRow()
	if d.M != nil {
		d.M.Select("")
	}
}

// link is one outside page about an address or a CVE.
type link struct{ Label, URL string }

// ipLinks are the lookups for a source address, built only from an
// address that parses (netip), so nothing from the incident but a
// canonical address goes into a URL; none for a private, loopback or
// masked address (they tell nothing outside).
func ipLinks(raw string) []link {
	a, err := netip.ParseAddr(raw)
	if err != nil || a.Zone() != "" {
		return nil
	}
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return nil
	}
	ip := a.String()
	return []link{
		{"AbuseIPDB", "https://www.abuseipdb.com/check/" + ip},
		{"Shodan", "https://www.shodan.io/host/" + ip},
		{"VirusTotal", "https://www.virustotal.com/gui/ip-address/" + ip},
		{"whois (RDAP)", "https://rdap.org/ip/" + ip},
	}
}

// cvePattern is a CVE id as MITRE assigns them: year, then four or more
// digits. Only ids that match whole become NVD links.
var cvePattern = regexp.MustCompile(`^CVE-(1999|20[0-9]{2})-[0-9]{4,7}$`)

// cveLink returns the NVD page of a tag that is a CVE id ("cve-2024-6387"
// too), or false.
func cveLink(tag string) (link, bool) {
	id := strings.ToUpper(tag)
	if !cvePattern.MatchString(id) {
		return link{}, false
	}
	return link{id, "https://nvd.nist.gov/vuln/detail/" + id}, true
}

// outLink opens in a new tab, without handing the page or the referrer
// to the other site.
func outLink(l link) app.UI {
	return app.A().Href(l.URL).Target("_blank").Rel("noopener noreferrer").Text(l.Label)
}

func linkList(cls string, links []link) app.UI {
	items := make([]app.UI, len(links))
	for i, l := range links {
		items[i] = app.Li().Body(outLink(l))
	}
	return app.Ul().Class("links", cls).Body(items...)
}

// tagList shows the tags, CVE ids as links to NVD.
func tagList(tags []string) app.UI {
	items := make([]app.UI, len(tags))
	for i, t := range tags {
		if l, ok := cveLink(t); ok {
			items[i] = app.Li().Class("cve").Body(outLink(l))
		} else {
			items[i] = app.Li().Text(clean(t, incident.MaxTag))
		}
	}
	return app.Ul().Class("tags").Body(items...)
}

// textList shows evidence strings one per item, as text.
func textList(v []string, max int) app.UI {
	items := make([]app.UI, len(v))
	for i, s := range v {
		items[i] = app.Li().Text(clean(s, max))
	}
	return app.Ul().Class("ev").Body(items...)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// statsPanel shows the rate and the 24 h breakdowns.
type statsPanel struct {
	app.Compo
	View live.StatsView
}

// Render draws the statistics.
func (s *statsPanel) Render() app.UI {
	v := &s.View
	maxSev := 1
	for _, kv := range v.BySeverity {
		maxSev = max(maxSev, kv.Count)
	}
	sev := make([]app.UI, len(v.BySeverity))
	for i, kv := range v.BySeverity {
		sev[i] = app.Li().Class("s-"+kv.Key).Body(
			app.Span().Class("k").Body(
				app.Span().Class("glyph").Aria("hidden", true).Text(sevGlyphs[incident.Severity(kv.Key)]),
				app.Text(kv.Key),
			),
			app.Span().Class("bar").Style("width", strconv.Itoa(100*kv.Count/maxSev)+"%"),
			app.Span().Class("n").Text(strconv.Itoa(kv.Count)),
		)
	}
	list := func(kvs []live.KV, label func(string) string, swatch bool) app.UI {
		items := make([]app.UI, len(kvs))
		for i, kv := range kvs {
			k := app.Span().Class("k").Text(clean(label(kv.Key), 64))
			if swatch {
				k = k.Class("sw").Style("--type", live.TypeColour(kv.Key))
			}
			items[i] = app.Li().Body(
				k,
				app.Span().Class("n").Text(strconv.Itoa(kv.Count)),
			)
		}
		return app.Ul().Class("kv").Body(items...)
	}
	types := v.ByType
	if len(types) > 6 {
		types = types[:6]
	}
	return app.Section().Class("stats").ID("stats").Aria("label", "Statistics").Body(
		app.Div().Class("rate").Body(
			app.Span().Class("big").ID("per-minute").Text(strconv.Itoa(v.PerMinute)),
			app.Span().Text(" incidents / min"),
			app.Span().Class("total").Text(" · "+strconv.Itoa(v.Total)+" in 24 h"),
		),
		app.Ul().Class("sevs").Body(sev...),
		app.Div().Class("cols").Body(
			app.Div().Body(app.H3().Text("Attack types"), list(types, live.Label, true)),
			app.Div().Body(app.H3().Text("Top countries"), list(v.Countries, countryLabel, false)),
		),
	)
}

// legend explains the map's marks in its corner: the severities (colour,
// shape and word: low and info are both cyan), the arcs, the counts, the
// blocked sign, and that markers leave after five minutes while the list
// keeps the incidents. It is a <details>: open by default on a desktop,
// one line on a phone; the browser keeps that state, no Go code runs.
type legend struct {
	app.Compo
	// Open is the initial state (a phone starts it closed).
	Open bool
}

// Render draws the legend.
func (l *legend) Render() app.UI {
	sevs := []incident.Severity{incident.Critical, incident.High, incident.Medium, incident.Low, incident.Info}
	items := make([]app.UI, len(sevs))
	for i, sev := range sevs {
		items[i] = app.Li().Class("s-"+string(sev)).Body(
			app.Span().Class("sw").Style("background", live.Colour(sev)).Aria("hidden", true),
			app.Span().Class("glyph").Aria("hidden", true).Text(sevGlyphs[sev]),
			app.Span().Class("word").Text(string(sev)),
		)
	}
	return app.Details().Class("legend").ID("legend").Open(l.Open).Body(
		app.Summary().Body(
			app.Span().Class("legend-t").Text("Legend"),
			app.Span().Class("note").ID("marker-note").Text(" · markers show the last 5 minutes"),
		),
		app.Ul().Class("legend-sev").Aria("label", "Severity: colour and shape").Body(items...),
		app.Ul().Class("legend-misc").Body(
			app.Li().Body(app.Span().Class("arc-sw").Aria("hidden", true),
				app.Text("attacker → your host; thicker: more incidents on that path")),
			app.Li().Body(app.Span().Class("num-sw").Aria("hidden", true).Text("3"),
				app.Text("incidents at one place")),
			app.Li().Body(app.Span().Class("blk-sw").Aria("hidden", true),
				app.Text("source blocked by the sensor")),
			app.Li().Text("The list keeps incidents after their markers leave the map."),
		),
	)
}
