package ui

import (
	"regexp"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/app/live"
	"github.com/attackmap/attackmap/incident"
)

func TestActionClass(t *testing.T) {
	for _, tt := range []struct{ action, want string }{
		{"blocked", "blocked"},
		{"blocked 1h", "blocked"},
		{"blocked 7d", "blocked"},
		{"would block (dry run)", "would"},
		{"not blocked: allow list", ""},
		{"logged", ""},
		{"", ""},
		{"rate_limited", ""},
	} {
		t.Run(tt.action, func(t *testing.T) {
			if got := actionClass(tt.action); got != tt.want {
				t.Errorf("actionClass(%q) = %q, want %q", tt.action, got, tt.want)
			}
		})
	}
}

// slotHTML returns a marker chunk's HTML from slot i's data-slot attribute
// up to the next slot's.
func slotHTML(t *testing.T, html string, i string) string {
	t.Helper()
	at := strings.Index(html, `data-slot="`+i+`"`)
	if at < 0 {
		t.Fatalf("no slot %s in:\n%s", i, html)
	}
	s := html[at+1:]
	if next := strings.Index(s, "data-slot="); next >= 0 {
		s = s[:next]
	}
	// The slot's own class sits before data-slot when go-app writes it
	// first: take the rest of the opening tag from before.
	return html[strings.LastIndex(html[:at], "<g"):at] + s
}

func TestBlockedMarkerWearsTheNoEntrySign(t *testing.T) {
	m := live.New(live.Config{})
	opt := live.Options{Live: true}
	blocked := inc("a", "192.0.2.1", incident.High, 50.11, 8.68)
	blocked.Action = "blocked 1h"
	dry := inc("b", "192.0.2.2", incident.High, 10, 10)
	dry.Action = "would block (dry run)"
	logged := inc("c", "192.0.2.3", incident.High, -30, 100)
	for _, in := range []incident.Incident{blocked, dry, logged} {
		m.Apply(in, t0, opt)
	}
	html := load(t, &markerChunk{M: m, Index: 0, Gen: m.MarkerChunkGen(0)})
	if n := strings.Count(html, `class="blk"`); n != 1 {
		t.Fatalf("%d no-entry signs, want 1 (only the blocked place):\n%s", n, html)
	}
	a := slotHTML(t, html, "0")
	if !regexp.MustCompile(`class="mk [^"]*\bblocked\b`).MatchString(a) || !strings.Contains(a, `class="blk"`) {
		t.Errorf("blocked place lacks the blocked class or sign:\n%s", a)
	}
	// The ring sits just outside the marker, centred on it.
	// (go-app writes attributes in no fixed order.)
	if ring := regexp.MustCompile(`<g class="blk">\s*<circle ([^>]*)>`).FindStringSubmatch(a); ring == nil ||
		!strings.Contains(ring[1], `cx="524.1"`) || !strings.Contains(ring[1], `cy="338.7"`) {
		t.Errorf("sign not centred on the marker:\n%s", a)
	}
	for _, slot := range []string{"1", "2"} {
		if s := slotHTML(t, html, slot); strings.Contains(s, "blocked") || strings.Contains(s, "blk") {
			t.Errorf("slot %s (dry run or logged) looks blocked:\n%s", slot, s)
		}
	}

	// The logged attacker is blocked later: the update under the same id
	// puts the sign on its place too.
	logged.Action, logged.Count = "blocked 24h", 2
	m.Apply(logged, t0, opt)
	html = load(t, &markerChunk{M: m, Index: 0, Gen: m.MarkerChunkGen(0)})
	if n := strings.Count(html, `class="blk"`); n != 2 {
		t.Errorf("%d no-entry signs after the update, want 2:\n%s", n, html)
	}
}

func TestSidebarShowsTheActionAsABadge(t *testing.T) {
	m := live.New(live.Config{})
	for _, c := range []struct{ id, action string }{
		{"a", "blocked 1h"}, {"b", "would block (dry run)"}, {"c", "not blocked: allow list"}, {"d", ""},
	} {
		in := inc(c.id, "192.0.2."+string('1'+rune(c.id[0]-'a')), incident.High, 10, 10)
		in.Action = c.action
		m.Apply(in, t0, live.Options{})
	}
	rows := m.Sidebar()
	html := load(t, &sidebar{M: m, Rows: &rows, Gen: m.SidebarGen()})
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`class="act act-blocked"[^>]*>blocked 1h<`),
		regexp.MustCompile(`class="act act-would"[^>]*>would block \(dry run\)<`),
		regexp.MustCompile(`class="act"[^>]*>not blocked: allow list<`),
		regexp.MustCompile(`class="act"[^>]*>logged<`),
		regexp.MustCompile(`class="row s-high blocked"`),
	} {
		if !want.MatchString(html) {
			t.Errorf("sidebar lacks %s:\n%s", want, html)
		}
	}

	det := load(t, &details{In: rows[len(rows)-1]}) // "a", the oldest row
	if rows[len(rows)-1].ID != "a" {
		t.Fatalf("oldest row is %q, want a", rows[len(rows)-1].ID)
	}
	for _, want := range []string{`class="badge-blocked"`, `act-blocked`, ">blocked 1h<"} {
		if !strings.Contains(det, want) {
			t.Errorf("details lack %s:\n%s", want, det)
		}
	}
}

func TestBlockedOnlyFilterHidesTheOtherRows(t *testing.T) {
	m := live.New(live.Config{})
	for i, action := range []string{"blocked 1h", "logged", "would block (dry run)", "blocked 24h"} {
		in := inc(string(rune('a'+i)), "192.0.2.9", incident.High, 10, 10)
		in.Action = action
		m.Apply(in, t0, live.Options{})
	}
	rows := m.Sidebar()
	all := load(t, &sidebar{M: m, Rows: &rows, Gen: m.SidebarGen()})
	if n := strings.Count(all, "<li"); n != 4 {
		t.Errorf("unfiltered: %d rows, want 4", n)
	}

	// "Blocked only" is part of the page's filter: the model's list
	// keeps the blocked rows only.
	m.SetFilter(live.Filter{BlockedOnly: true})
	rows = m.Sidebar()
	only := load(t, &sidebar{M: m, Rows: &rows, Gen: m.SidebarGen()})
	if n := strings.Count(only, "<li"); n != 2 {
		t.Errorf("blocked only: %d rows, want 2:\n%s", n, only)
	}
	if strings.Contains(only, ">logged<") || strings.Contains(only, "would block") {
		t.Errorf("blocked only still shows other rows:\n%s", only)
	}

	// Nothing blocked among the newest: the list says so.
	m2 := live.New(live.Config{})
	logged := inc("x", "192.0.2.9", incident.High, 10, 10)
	m2.Apply(logged, t0, live.Options{})
	m2.SetFilter(live.Filter{BlockedOnly: true})
	none := m2.Sidebar()
	empty := load(t, &sidebar{M: m2, Rows: &none, Gen: m2.SidebarGen()})
	if !strings.Contains(empty, "No blocked incidents") {
		t.Errorf("empty filtered list says nothing:\n%s", empty)
	}
}
