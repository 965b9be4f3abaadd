package ui

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/live"
	"github.com/attackmap/attackmap/incident"
)

// The filter toolbar: severity toggles, attack type, sensor host and
// country pickers, an address/CIDR/text search and "Blocked only". The
// filter lives in the page's URL (live.Filter.Encode, history.replaceState,
// so a filtered view can be shared and survives a reload) and applies
// through Model.SetFilter, so markers, arcs, the list and the statistics
// always agree.

// anyValue is the pickers' "no filter" option, several the option shown
// when a link selected more than one value (the toolbar picks one).
const (
	anyValue     = ""
	severalValue = "\x00several"
)

// loadFilter applies the filter in the page's URL; what it had to ignore
// is shown beside the toolbar.
func (c *Live) loadFilter(ctx app.Context) {
	f, err := live.ParseFilter(ctx.Page().URL().Query())
	c.filterErr = ""
	if err != nil {
		c.filterErr = "Ignored in the link: " + clean(err.Error(), 200)
	}
	c.filter = f
	c.m.SetFilter(f)
	c.query = f.Query
	c.showPanels()
}

// setFilter applies f to the shown model (and the live one during a
// replay, so that returning to live shows the same selection) and writes
// it into the URL.
func (c *Live) setFilter(f live.Filter) {
	c.filter = f
	c.filterErr = ""
	c.m.SetFilter(f)
	if c.replay != nil {
		c.replay.m.SetFilter(f)
	}
	c.showPanels()
	if app.IsServer {
		return
	}
	loc := app.Window().Get("location")
	q := parseQuery(loc.Get("search").String())
	f.Encode(q)
	u := loc.Get("pathname").String()
	if enc := q.Encode(); enc != "" {
		u += "?" + enc
	}
	u += loc.Get("hash").String()
	app.Window().Get("history").Call("replaceState", nil, "", u)
}

// toggleSev adds or removes one severity.
func (c *Live) toggleSev(sev incident.Severity) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		f := c.filter
		if i := slices.Index(f.Severities, sev); i >= 0 {
			f.Severities = slices.Delete(slices.Clone(f.Severities), i, i+1)
		} else {
			f.Severities = append(slices.Clone(f.Severities), sev)
		}
		c.setFilter(f)
	}
}

// pick sets one field from a picker's value.
func (c *Live) pick(field func(*live.Filter) *[]string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		v := ctx.JSSrc().Get("value").String()
		if v == severalValue {
			return
		}
		f := c.filter
		if v == anyValue {
			*field(&f) = nil
		} else {
			*field(&f) = []string{v}
		}
		c.setFilter(f)
	}
}

func (c *Live) onSearch(ctx app.Context, e app.Event) {
	e.PreventDefault()
	f := c.filter
	f.Query = strings.TrimSpace(c.query)
	if len(f.Query) > live.MaxQuery {
		f.Query = f.Query[:live.MaxQuery]
	}
	c.setFilter(f)
}

func (c *Live) toggleBlocked(ctx app.Context, e app.Event) {
	f := c.filter
	f.BlockedOnly = !f.BlockedOnly
	c.setFilter(f)
}

func (c *Live) clearFilter(ctx app.Context, e app.Event) {
	c.query = ""
	c.setFilter(live.Filter{})
}

// renderFilters draws the toolbar.
func (c *Live) renderFilters() app.UI {
	f := c.filter
	sevs := live.Severities()
	sevButtons := make([]app.UI, len(sevs))
	for i, sev := range sevs {
		sevButtons[i] = app.Button().Type("button").Class("sev-t", "s-"+string(sev)).ID("f-sev-"+string(sev)).
			Aria("pressed", slices.Contains(f.Severities, sev)).Title("Show "+string(sev)+" incidents").
			OnClick(c.toggleSev(sev)).Body(
			app.Span().Class("glyph").Aria("hidden", true).Text(sevGlyphs[sev]),
			app.Text(string(sev)),
		)
	}
	var types []option
	for _, t := range live.AttackTypes() {
		types = append(types, option{t.Source, t.Label})
	}
	var hosts []option
	for _, h := range c.m.Hosts(time.Now()) {
		hosts = append(hosts, option{h.Name, clean(h.Name, incident.MaxHost)})
	}
	var countries []option
	for _, cc := range c.countryCodes() {
		countries = append(countries, option{cc, countryLabel(cc)})
	}
	return app.Form().Class("filters").ID("filters").Aria("label", "Filters").OnSubmit(c.onSearch).Body(
		app.Div().Class("sev-group").Role("group").Aria("label", "Severity").Body(sevButtons...),
		picker("f-type", "Attack type", "All attack types", types, f.Types, c.pick(func(f *live.Filter) *[]string { return &f.Types })),
		picker("f-host", "Sensor host", "All hosts", hosts, f.Hosts, c.pick(func(f *live.Filter) *[]string { return &f.Hosts })),
		picker("f-cc", "Country", "All countries", countries, f.Countries, c.pick(func(f *live.Filter) *[]string { return &f.Countries })),
		app.Input().Type("search").ID("f-q").Class("search").Placeholder("Address, CIDR or text").
			Aria("label", "Search: an address, a CIDR prefix like 203.0.113.0/24, or text").
			MaxLength(live.MaxQuery).Value(c.query).OnInput(c.ValueTo(&c.query)).OnChange(c.onSearch),
		app.Button().Type("button").Class("filter").ID("blocked-only").
			Aria("pressed", f.BlockedOnly).Title("Show only the incidents whose source was blocked").
			OnClick(c.toggleBlocked).Text("Blocked only"),
		app.If(!f.IsZero(), func() app.UI {
			return app.Button().Type("button").ID("f-clear").OnClick(c.clearFilter).Text("Clear filters")
		}),
		app.If(c.filterErr != "", func() app.UI { return app.Span().Class("f-err").Role("status").Text(c.filterErr) }),
	)
}

type option struct{ Value, Label string }

// picker is a labelled <select> of one value; a filter holding several
// (from a link) shows as "several" until another is picked.
func picker(id, label, all string, opts []option, selected []string, onChange app.EventHandler) app.UI {
	cur := anyValue
	switch {
	case len(selected) == 1:
		cur = selected[0]
		if !slices.ContainsFunc(opts, func(o option) bool { return o.Value == cur }) {
			opts = append(opts, option{cur, clean(cur, live.MaxFilterValue)})
		}
	case len(selected) > 1:
		cur = severalValue
	}
	items := []app.UI{app.Option().Value(anyValue).Selected(cur == anyValue).Text(all)}
	if cur == severalValue {
		items = append(items, app.Option().Value(severalValue).Selected(true).
			Text(strings.Join(cleanAll(selected), ", ")))
	}
	for _, o := range opts {
		items = append(items, app.Option().Value(o.Value).Selected(o.Value == cur).Text(o.Label))
	}
	return app.Select().ID(id).Aria("label", label).Title(label).OnChange(onChange).Body(items...)
}

func cleanAll(v []string) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = clean(s, live.MaxFilterValue)
	}
	return out
}

// countryCodes lists the countries worth offering: those in the list and
// the 24 h statistics, and any the filter holds, sorted by code.
func (c *Live) countryCodes() []string {
	seen := map[string]bool{}
	for _, in := range c.rows {
		if in.Country != "" {
			seen[in.Country] = true
		}
	}
	for _, kv := range c.statsView.Countries {
		if len(kv.Key) == 2 {
			seen[kv.Key] = true
		}
	}
	for _, cc := range c.filter.Countries {
		seen[strings.ToUpper(cc)] = true
	}
	out := make([]string, 0, len(seen))
	for cc := range seen {
		out = append(out, cc)
	}
	sort.Strings(out)
	return out
}

func (c *Live) toggleFilters(ctx app.Context, e app.Event) { c.filtersOpen = !c.filtersOpen }

func barClass(open bool) []string {
	if open {
		return []string{"toolbar", "open"}
	}
	return []string{"toolbar"}
}

// filtersLabel is the phone's fold button: "Filters", with how many
// fields are set.
func filtersLabel(f live.Filter) string {
	n := 0
	for _, set := range []bool{len(f.Severities) > 0, len(f.Types) > 0, len(f.Hosts) > 0, len(f.Countries) > 0,
		strings.TrimSpace(f.Query) != "", f.BlockedOnly} {
		if set {
			n++
		}
	}
	if n == 0 {
		return "Filters"
	}
	return "Filters (" + strconv.Itoa(n) + ")"
}
