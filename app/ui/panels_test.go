package ui

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/live"
	"github.com/attackmap/attackmap/incident"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestProblemTextSaysWhatToDo(t *testing.T) {
	const origin = "https://map.example.org"
	for _, tt := range []struct {
		name   string
		r      probeResult
		status int
		relay  string
		want   []string
	}{
		{"cors refused names the origin and the flag", probeCORS, 0, "https://relay.example.net",
			[]string{"does not allow https://map.example.org", "--allow-origin https://map.example.org"}},
		{"unreachable names the relay", probeUnreachable, 0, "https://relay.example.net",
			[]string{"Cannot reach the relay at https://relay.example.net"}},
		{"unreachable own origin", probeUnreachable, 0, "", []string{"Cannot reach the relay:"}},
		{"http error names the status", probeHTTP, 503, "", []string{"503", "connection limit"}},
		{"a relay that answers is no problem", probeOK, 200, "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := problemText(tt.r, tt.status, origin, tt.relay)
			if tt.want == nil && got != "" {
				t.Errorf("problem %q, want none", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
		})
	}
}

func TestEmptyListSaysWhy(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    emptyHint
		want []string
		not  []string
	}{
		{"connecting waits", emptyHint{Status: StatusConnecting}, []string{"Waiting for incidents"}, []string{"drill"}},
		{"quiet relay explains and names the drill", emptyHint{Status: StatusLive, Seeded: true},
			[]string{"No incidents yet", "private and loopback", "no log files found", "sudo make drill"}, nil},
		{"quiet now, busy today", emptyHint{Status: StatusLive, Seeded: true, Total: 12}, []string{"12 in 24 h", "sudo make drill"}, nil},
		{"offline", emptyHint{Status: StatusOffline}, []string{"Offline"}, []string{"Waiting"}},
		{"a problem points at the banner", emptyHint{Status: StatusReconnecting, Problem: "x"}, []string{"until the relay answers"}, nil},
		{"a filter hides everything", emptyHint{Status: StatusLive, Seeded: true, Filtered: true}, []string{"match the filter"}, []string{"drill"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := live.New(live.Config{})
			if tt.h.Filtered { // the list reads the filter from its model
				m.SetFilter(live.Filter{Query: "203.0.113.0/24"})
			}
			html := load(t, &sidebar{M: m, Rows: &[]incident.Incident{}, Empty: tt.h})
			for _, w := range tt.want {
				if !strings.Contains(html, w) {
					t.Errorf("lacks %q:\n%s", w, html)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(html, w) {
					t.Errorf("says %q:\n%s", w, html)
				}
			}
		})
	}
}

func TestDecodeFeedInOnePass(t *testing.T) {
	a := `{"id":"a","source":"ssh_bruteforce","severity":"high","ip":"192.0.2.1","ts":"2026-03-22T14:32:00Z"}`
	b := `{"id":"b","source":"port_scan","severity":"low","ip":"192.0.2.2","ts":"2026-03-22T14:33:00Z"}`
	for _, tt := range []struct {
		name  string
		body  string
		ids   []string
		array bool
	}{
		{"array in order", "[" + a + "," + b + "]", []string{"a", "b"}, true},
		{"a wrong type skips one element", "[" + a + `,{"id":"x","count":"many"},` + b + "]", []string{"a", "b"}, true},
		{"broken JSON keeps what came before", "[" + a + `,{"id":`, []string{"a"}, true},
		{"not an array", `{"id":"a"}`, nil, false},
		{"empty", ``, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			ok := decodeFeed([]byte(tt.body), func(in incident.Incident) { ids = append(ids, in.ID) })
			if ok != tt.array || strings.Join(ids, ",") != strings.Join(tt.ids, ",") {
				t.Errorf("decodeFeed = %v %v, want %v %v", ok, ids, tt.array, tt.ids)
			}
		})
	}
}

func TestIPLinksOnlyForPublicParsedAddresses(t *testing.T) {
	for _, tt := range []struct {
		ip   string
		want string // the AbuseIPDB link, "" for none
	}{
		{"203.0.113.7", "https://www.abuseipdb.com/check/203.0.113.7"},
		{"2001:db8::7", "https://www.abuseipdb.com/check/2001:db8::7"},
		{"::ffff:198.51.100.9", "https://www.abuseipdb.com/check/198.51.100.9"},
		{"10.0.0.1", ""},
		{"::ffff:10.0.0.1", ""},
		{"127.0.0.1", ""},
		{"fe80::1%eth0", ""},
		{"203.0.113.0/24", ""}, // masked by the relay
		{"203.0.113.7/../../evil", ""},
		{"<script>", ""},
		{"", ""},
	} {
		t.Run(tt.ip, func(t *testing.T) {
			links := ipLinks(tt.ip)
			if tt.want == "" {
				if len(links) != 0 {
					t.Errorf("links for %q: %v", tt.ip, links)
				}
				return
			}
			if len(links) != 4 || links[0].URL != tt.want {
				t.Fatalf("links %v, want 4 starting with %s", links, tt.want)
			}
			ip := strings.TrimPrefix(tt.want, "https://www.abuseipdb.com/check/")
			for _, want := range []string{"https://www.shodan.io/host/" + ip, "https://www.virustotal.com/gui/ip-address/" + ip, "https://rdap.org/ip/" + ip} {
				found := false
				for _, l := range links {
					found = found || l.URL == want
				}
				if !found {
					t.Errorf("no link %s in %v", want, links)
				}
			}
		})
	}
}

func TestCVETagsLinkToNVD(t *testing.T) {
	for _, tt := range []struct {
		tag, want string
	}{
		{"CVE-2024-6387", "https://nvd.nist.gov/vuln/detail/CVE-2024-6387"},
		{"cve-2021-44228", "https://nvd.nist.gov/vuln/detail/CVE-2021-44228"},
		{"CVE-2024-1234567", "https://nvd.nist.gov/vuln/detail/CVE-2024-1234567"},
		{"CVE-2024-123", ""},
		{"CVE-2024-6387x", ""},
		{"CVE-2024-6387/../x", ""},
		{"xCVE-2024-6387", ""},
		{"drill", ""},
	} {
		t.Run(tt.tag, func(t *testing.T) {
			l, ok := cveLink(tt.tag)
			if ok != (tt.want != "") || l.URL != tt.want {
				t.Errorf("cveLink(%q) = %v %v, want %q", tt.tag, l, ok, tt.want)
			}
		})
	}
}

// TestDetailsGolden pins the details panel of a rich incident: links out
// with rel=noopener noreferrer in a new tab, CVE tags as NVD links, the
// country's name, evidence lists as lists (user agents hold commas).
// go test ./app/ui -run TestDetailsGolden -update rewrites it.
func TestDetailsGolden(t *testing.T) {
	in := inc("d1", "203.0.113.30", incident.Critical, 40.71, -74.01)
	in.Country, in.City, in.Source = "US", "New York", "exploit_attempt"
	in.Tags = []string{"CVE-2024-6387", "drill", "cve-bogus"}
	in.Evidence = &incident.Evidence{
		UserAgents: []string{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)", "curl/8.5.0"},
		Paths:      []string{"/cgi-bin/luci;stok=/locale", "/.env"},
		Users:      []string{"<b>root</b>"},
	}
	html := load(t, &details{In: in})
	golden := filepath.Join("testdata", "details.golden.html")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(html), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	// go-app writes attributes in map order: compare attribute sets.
	if norm(html) != norm(string(want)) {
		t.Errorf("details differ from %s:\n%s", golden, html)
	}
	links := regexp.MustCompile(`<a [^>]*>`).FindAllString(html, -1)
	if len(links) != 5 {
		t.Errorf("%d links, want 4 lookups and 1 CVE: %v", len(links), links)
	}
	for _, a := range links {
		if !strings.Contains(a, `rel="noopener noreferrer"`) || !strings.Contains(a, `target="_blank"`) {
			t.Errorf("link %s does not open safely in a new tab", a)
		}
	}
	if n := strings.Count(html, `<li>curl/8.5.0</li>`) + strings.Count(html, `<li>Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)</li>`); n != 2 {
		t.Errorf("user agents are not one list item each:\n%s", html)
	}
	for _, w := range []string{"New York, United States of America (US)", "&lt;b&gt;root&lt;/b&gt;", "https://nvd.nist.gov/vuln/detail/CVE-2024-6387", "<li>cve-bogus</li>"} {
		if !strings.Contains(html, w) {
			t.Errorf("details lack %s", w)
		}
	}
}

// norm sorts each tag's attributes, so HTML from go-app compares whatever
// order it wrote them in.
func norm(html string) string {
	return regexp.MustCompile(`<([a-z0-9]+)((?: [^>]*?)?)(/?)>`).ReplaceAllStringFunc(html, func(tag string) string {
		m := regexp.MustCompile(`^<([a-z0-9]+)((?: [^>]*?)?)(/?)>$`).FindStringSubmatch(tag)
		attrs := regexp.MustCompile(`[a-z-]+(?:="[^"]*")?`).FindAllString(m[2], -1)
		sortStrings(attrs)
		return "<" + m[1] + " " + strings.Join(attrs, " ") + m[3] + ">"
	})
}

func sortStrings(v []string) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

func TestUnknownLocationIsSaid(t *testing.T) {
	for _, tt := range []struct{ code, want string }{
		{"", "Unknown location"}, {"DE", "Germany (DE)"}, {"de", "Germany (de)"}, {"XX", "XX"},
	} {
		if got := countryLabel(tt.code); got != tt.want {
			t.Errorf("countryLabel(%q) = %q, want %q", tt.code, got, tt.want)
		}
	}
	m := live.New(live.Config{})
	in := inc("u", "203.0.113.1", incident.High, 10, 10)
	in.Country = ""
	m.Apply(in, t0, live.Options{})
	rows := m.Sidebar()
	html := load(t, &sidebar{M: m, Rows: &rows})
	if strings.Contains(html, "??") || !strings.Contains(html, "Unknown location") {
		t.Errorf("row for an unlocated source:\n%s", html)
	}
}

// TestListIsOneTabStop: one row holds tabindex 0 (the active one, else
// the newest), every other -1.
func TestListIsOneTabStop(t *testing.T) {
	m := live.New(live.Config{})
	for i := range 3 {
		m.Apply(inc(strconv.Itoa(i), "203.0.113."+strconv.Itoa(i+1), incident.High, 10, float64(10*i)), t0.Add(time.Duration(i)*time.Second), live.Options{})
	}
	rows := m.Sidebar()
	stops := func(html string) []string {
		var out []string
		for _, b := range regexp.MustCompile(`<button[^>]*class="row[^>]*>`).FindAllString(html, -1) {
			if strings.Contains(b, `tabindex="0"`) {
				out = append(out, regexp.MustCompile(`data-idx="(\d+)"`).FindStringSubmatch(b)[1])
			} else if !strings.Contains(b, `tabindex="-1"`) {
				t.Errorf("row without a tabindex: %s", b)
			}
		}
		return out
	}
	if got := stops(load(t, &sidebar{M: m, Rows: &rows})); strings.Join(got, ",") != "0" {
		t.Errorf("Tab stops %v, want the newest row only", got)
	}
	s := &sidebar{M: m, Rows: &rows, active: rows[2].ID}
	if got := stops(load(t, s)); strings.Join(got, ",") != "2" {
		t.Errorf("Tab stops %v, want the active row 2 only", got)
	}
}

// TestSeveritiesDifferWithoutColour: every severity has its own shape and
// word in the legend, the list and the stats, so low and info (both cyan)
// and critical and high (both red) differ for everyone.
func TestSeveritiesDifferWithoutColour(t *testing.T) {
	sevs := []incident.Severity{incident.Critical, incident.High, incident.Medium, incident.Low, incident.Info}
	seen := map[string]incident.Severity{}
	for _, s := range sevs {
		g := sevGlyphs[s]
		if g == "" {
			t.Errorf("%s has no shape", s)
		}
		if o, dup := seen[g]; dup {
			t.Errorf("%s and %s share the shape %s", s, o, g)
		}
		seen[g] = s
	}
	html := load(t, &legend{Open: true})
	for _, s := range sevs {
		if !strings.Contains(html, sevGlyphs[s]) || !strings.Contains(html, ">"+string(s)+"<") {
			t.Errorf("legend lacks %s with its shape:\n%s", s, html)
		}
	}
	for _, w := range []string{"markers show the last 5 minutes", "attacker → your host"} {
		if !strings.Contains(html, w) {
			t.Errorf("legend lacks %q", w)
		}
	}
}

// TestColourContrastMeetsWCAGAA reads web/attackmap.css and checks every
// text colour against every background it is drawn on: at least 4.5:1
// (WCAG 2.1 AA for normal text).
func TestColourContrastMeetsWCAGAA(t *testing.T) {
	css, err := os.ReadFile(filepath.Join("..", "..", "web", "attackmap.css"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`--([a-z-]+):\s*(#[0-9a-fA-F]{6})`).FindAllSubmatch(css, -1) {
		vars[string(m[1])] = string(m[2])
	}
	texts := []string{"text", "dim", "critical", "high", "medium", "low", "info", "blocked"}
	backs := []string{"bg", "panel", "sel"}
	pairs := [][2]string{{"warn-text", "warn-bg"}, {"text", "warn-bg"}, {"dim", "warn-bg"}}
	for _, f := range texts {
		for _, b := range backs {
			pairs = append(pairs, [2]string{f, b})
		}
	}
	for _, p := range pairs {
		fg, bg := vars[p[0]], vars[p[1]]
		if fg == "" || bg == "" {
			t.Errorf("--%s or --%s missing from the CSS", p[0], p[1])
			continue
		}
		if r := contrast(fg, bg); r < 4.5 {
			t.Errorf("--%s %s on --%s %s: %.2f:1, under 4.5:1", p[0], fg, p[1], bg, r)
		}
	}
	// Fixed pairs written out in the CSS (badges).
	for _, p := range [][2]string{{"#ede9fe", "#4c1d95"}, {"#dcfce7", "#14532d"}} {
		if !bytes.Contains(css, []byte(p[0])) || !bytes.Contains(css, []byte(p[1])) {
			t.Errorf("badge colours %v no longer in the CSS: update this test", p)
		}
		if r := contrast(p[0], p[1]); r < 4.5 {
			t.Errorf("%s on %s: %.2f:1", p[0], p[1], r)
		}
	}
}

func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(hex string) float64 {
	ch := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(0) + 0.7152*ch(1) + 0.0722*ch(2)
}

func TestSheetSnaps(t *testing.T) {
	if got := []string{nextSnap(sheetPeek), nextSnap(sheetMid), nextSnap(sheetFull)}; strings.Join(got, ",") != "mid,full,peek" {
		t.Errorf("taps cycle %v", got)
	}
	for _, tt := range []struct {
		h    float64
		want string
	}{{90, sheetPeek}, {300, sheetMid}, {420, sheetMid}, {700, sheetFull}, {2000, sheetFull}} {
		if got := nearestSnap(tt.h, 88, 400, 780); got != tt.want {
			t.Errorf("nearestSnap(%v) = %s, want %s", tt.h, got, tt.want)
		}
	}
}

func TestHistoryURLAsksForTheLastDay(t *testing.T) {
	now := time.Date(2026, 3, 22, 14, 32, 5, 0, time.UTC)
	got := historyURL("https://relay.example.org", now)
	want := "https://relay.example.org/api/history?from=2026-03-21T14%3A32%3A05Z&limit=" + strconv.Itoa(live.MaxHistory) + "&to=2026-03-22T14%3A32%3A05Z"
	if got != want {
		t.Errorf("historyURL = %s, want %s", got, want)
	}
}

func TestFiltersLabelCountsTheSetFields(t *testing.T) {
	for _, tt := range []struct {
		f    live.Filter
		want string
	}{
		{live.Filter{}, "Filters"},
		{live.Filter{Severities: []incident.Severity{incident.High, incident.Critical}}, "Filters (1)"},
		{live.Filter{Countries: []string{"CN"}, Query: "203.0.113.0/24", BlockedOnly: true}, "Filters (3)"},
	} {
		if got := filtersLabel(tt.f); got != tt.want {
			t.Errorf("filtersLabel(%+v) = %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestPageMetaIsRelative(t *testing.T) {
	h := NewHandler("v1")
	if h.Author == "" || h.Image == "" {
		t.Errorf("author %q, image %q", h.Author, h.Image)
	}
	page := []byte(`<meta content="https:///live" property="og:url"><meta content="https:///web/icon-512.png" property="og:image"><a href="https://example.org/">`)
	got := string(PageMeta(page))
	for _, w := range []string{`content="/live" property="og:url"`, `content="/web/icon-512.png" property="og:image"`, `href="https://example.org/"`} {
		if !strings.Contains(got, w) {
			t.Errorf("PageMeta: %s lacks %s", got, w)
		}
	}
}

// The golden files hold local times: pin the zone, so they hold on any
// machine.
func init() { time.Local = time.UTC }

// FuzzDecodeFeed: any body, however broken, decodes without a panic, and
// every incident handed on came out of the body's array.
func FuzzDecodeFeed(f *testing.F) {
	f.Add([]byte(`[{"id":"a","source":"ssh_bruteforce","severity":"high","ip":"192.0.2.1","ts":"2026-03-22T14:32:00Z"}]`))
	f.Add([]byte(`[{"id":"a","count":"x"},{"id":"b"}]`))
	f.Add([]byte(`[`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n := 0
		ok := decodeFeed(body, func(in incident.Incident) { n++ })
		if !ok && n > 0 {
			t.Fatalf("not an array, yet %d incidents", n)
		}
		if n > len(body)/2 {
			t.Fatalf("%d incidents from %d bytes", n, len(body))
		}
	})
}

// TestPageShellHasTheToolbarLegendAndSheet: the prerendered page carries
// the filter toolbar (five severity toggles, pickers, search, blocked
// only), the replay button, the legend and the sheet's handle.
func TestPageShellHasTheToolbarLegendAndSheet(t *testing.T) {
	html := load(t, &Live{})
	for _, want := range []string{
		`id="filters"`, `id="f-sev-critical"`, `id="f-sev-info"`, `id="f-type"`, `id="f-host"`, `id="f-cc"`,
		`id="f-q"`, `id="blocked-only"`, `id="replay-start"`, `id="legend"`, `id="marker-note"`,
		`id="sheet-handle"`, `class="side sheet-mid"`, `alt="attackmap logo"`, `role="status"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(html, `id="f-clear"`) {
		t.Error("a clear button without a filter")
	}
}

func TestPickerShowsOneOrSeveral(t *testing.T) {
	opts := []option{{"CN", "China (CN)"}, {"RU", "Russia (RU)"}}
	one := load(t, &pickerHost{UI: picker("f-cc", "Country", "All countries", opts, []string{"RU"}, nil)})
	if !regexp.MustCompile(`<option[^>]*selected[^>]*>Russia \(RU\)<`).MatchString(one) {
		t.Errorf("RU not selected:\n%s", one)
	}
	several := load(t, &pickerHost{UI: picker("f-cc", "Country", "All countries", opts, []string{"CN", "<b>"}, nil)})
	if !regexp.MustCompile(`<option[^>]*selected[^>]*>CN, &lt;b&gt;<`).MatchString(several) {
		t.Errorf("several values not shown as one selected option:\n%s", several)
	}
	unknown := load(t, &pickerHost{UI: picker("f-host", "Host", "All hosts", nil, []string{"web-9"}, nil)})
	if !regexp.MustCompile(`<option[^>]*selected[^>]*>web-9<`).MatchString(unknown) {
		t.Errorf("a host from the link that is not listed is not offered:\n%s", unknown)
	}
}

// pickerHost renders one element as a component, for load.
type pickerHost struct {
	app.Compo
	UI app.UI
}

func (p *pickerHost) Render() app.UI { return app.Div().Body(p.UI) }
