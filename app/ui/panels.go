package ui

import (
	"strconv"
	"strings"
	"time"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/live"
	"github.com/attackmap/attackmap/incident"
)

// sidebar lists the newest incidents. Rows are buttons (keyboard: Tab to
// the list, arrows to move, Enter to select); clicks and keys are handled
// once on the list, not per row.
type sidebar struct {
	app.Compo
	M *live.Model
	// Rows is the list as last shown (the model's may be newer): clicks
	// resolve against what the user saw.
	Rows *[]incident.Incident
	Gen  uint64

	// blockedOnly is the "Blocked only" filter: the list shows only the
	// incidents whose source the sensor blocked. Unexported, so go-app
	// keeps it across the page's re-renders.
	blockedOnly bool
}

// Render draws the list, newest first.
func (s *sidebar) Render() app.UI {
	items := *s.Rows
	selID, _, _ := s.M.Selected()
	rows := make([]app.UI, 0, len(items))
	for i := range items {
		in := &items[i]
		if s.blockedOnly && actionClass(in.Action) != "blocked" {
			continue
		}
		// data-idx stays the index in Rows, so clicks resolve
		// whatever the filter hides.
		rows = append(rows, app.Li().Body(s.row(i, in, in.ID == selID)))
	}
	return app.Section().Class("feed").Aria("label", "Newest incidents").Body(
		app.Div().Class("feed-head").Body(
			app.H2().Text("Newest incidents"),
			app.Button().Type("button").Class("filter").ID("blocked-only").
				Aria("pressed", s.blockedOnly).Title("Show only the incidents whose source was blocked").
				On("click", s.onFilter).Text("Blocked only"),
		),
		app.If(len(items) == 0, func() app.UI { return app.P().Class("empty").Text("Waiting for incidents…") }).
			ElseIf(len(rows) == 0, func() app.UI { return app.P().Class("empty").Text("No blocked incidents among the newest.") }),
		app.Ol().Class("list").ID("list").On("click", s.onClick).On("keydown", s.onKey).Body(rows...),
	)
}

// onFilter toggles the "Blocked only" filter.
func (s *sidebar) onFilter(ctx app.Context, e app.Event) {
	s.blockedOnly = !s.blockedOnly
}

func (s *sidebar) row(i int, in *incident.Incident, selected bool) app.UI {
	country := in.Country
	if country == "" {
		country = "??"
	}
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
	return app.Button().Type("button").Class(cls...).DataSet("idx", i).Aria("pressed", selected).Body(
		app.Span().Class("t").Text(in.TS.Local().Format("15:04:05")),
		app.Span().Class("cc").Title("%s", country).Text(country),
		app.Span().Class("ip").Text(clean(in.IP, incident.MaxIP)),
		app.Span().Class("type").Style("--type", live.TypeColour(in.Source)).Text(clean(live.Label(in.Source), 64)),
		app.Span().Class("sev").Text(string(in.Severity)),
		app.Span().Class(actCls...).Text(clean(action, incident.MaxAction)),
		app.If(in.AbuseScore != nil, func() app.UI {
			return app.Span().Class("abuse").Text("abuse " + strconv.Itoa(*in.AbuseScore))
		}),
		app.If(live.IsDrill(in), func() app.UI { return app.Span().Class("drill").Text("drill") }),
	)
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
	if cur, _, _ := s.M.Selected(); cur == id {
		id = "" // a second click clears the selection
	}
	s.M.Select(id)
}

// onKey moves the focus between rows with the arrow keys, Home and End.
func (s *sidebar) onKey(ctx app.Context, e app.Event) {
	key := e.Get("key").String()
	active := app.Window().Get("document").Get("activeElement")
	li := active.Call("closest", "li")
	if !li.Truthy() {
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
	ctx.PreventUpdate()
	if next.Truthy() {
		next.Call("querySelector", "button").Call("focus")
	}
}

// details shows everything about the selected incident, as text.
type details struct {
	app.Compo
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
	add("Source IP", clean(in.IP, incident.MaxIP))
	place := in.Country
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
	add("Severity", string(in.Severity))
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
	add("Tags", joinClean(in.Tags, incident.MaxTag))
	add("Geolocation", clean(in.GeoSource, incident.MaxGeoSource))
	if ev := in.Evidence; ev != nil {
		add("Users", joinClean(ev.Users, 64))
		add("Ports", joinInts(ev.Ports))
		add("Paths", joinClean(ev.Paths, 128))
		add("User agents", joinClean(ev.UserAgents, 128))
		add("Methods", joinClean(ev.Methods, 16))
		add("Statuses", joinInts(ev.Statuses))
		add("Process", clean(ev.Comm, 64))
		add("Parent", clean(ev.Parent, 64))
		add("Command", clean(strings.Join(ev.Argv, " "), 256))
		add("Destination", clean(ev.Dst, 128))
		add("Lists", joinClean(ev.Lists, 64))
	}
	return app.Section().Class("details").ID("details").Aria("label", "Selected incident").Body(
		app.H2().Body(
			app.Text(clean(title, incident.MaxTitle)),
			app.If(actionClass(in.Action) == "blocked", func() app.UI { return app.Span().Class("badge-blocked").Text("blocked") }),
			app.If(live.IsDrill(in), func() app.UI { return app.Span().Class("drill").Text("drill") }),
		),
		app.If(in.Summary != "", func() app.UI { return app.P().Class("summary").Text(clean(in.Summary, incident.MaxSummary)) }),
		app.Dl().Body(rows...),
	)
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
			app.Span().Class("k").Text(kv.Key),
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
	same := func(s string) string { return s }
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
			app.Div().Body(app.H3().Text("Top countries"), list(v.Countries, same, false)),
		),
	)
}
