package ui

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/live"
	"github.com/attackmap/attackmap/incident"
)

var t0 = time.Date(2026, 3, 22, 14, 32, 0, 0, time.UTC)

func inc(id, ip string, sev incident.Severity, lat, lon float64) incident.Incident {
	in := incident.Incident{ID: id, Source: "ssh_bruteforce", Severity: sev, IP: ip, Country: "DE", TS: t0, Count: 1}
	in.SetLocation(lat, lon)
	return in
}

func load(t *testing.T, c app.Composer) string {
	t.Helper()
	e := app.NewTestEngine()
	if err := e.Load(c); err != nil {
		t.Fatal(err)
	}
	e.ConsumeAll()
	return sortAttrs(app.HTMLString(c))
}

var (
	tagRE  = regexp.MustCompile(`<[a-zA-Z][a-zA-Z0-9-]*(?:\s+[^\s=>]+(?:="[^"]*")?)+\s*/?>`)
	attrRE = regexp.MustCompile(`\s+([^\s=>/]+(?:="[^"]*")?)`)
)

// sortAttrs puts every tag's attributes in name order: go-app keeps an
// element's attributes in a map, so the order it writes them in changes
// from run to run, and a test that looks for two attributes side by side
// must see them in one order.
func sortAttrs(html string) string {
	return tagRE.ReplaceAllStringFunc(html, func(tag string) string {
		name := tag[:strings.IndexAny(tag, " \t\n")]
		end := ">"
		if strings.HasSuffix(tag, "/>") {
			end = "/>"
		}
		var attrs []string
		for _, m := range attrRE.FindAllStringSubmatch(tag[len(name):len(tag)-len(end)], -1) {
			attrs = append(attrs, m[1])
		}
		slices.Sort(attrs)
		return name + " " + strings.Join(attrs, " ") + end
	})
}

func TestPageShellPrerenders(t *testing.T) {
	html := load(t, &Live{})
	for _, want := range []string{
		`viewBox="0 1.6 1000 708.0"`, `src="/web/world.svg"`, `class="status st-connecting"`,
		`aria-live="polite"`, "Natural Earth", "Waiting for incidents",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(html, "DB-IP") {
		t.Error("DB-IP attribution shown before any DB-IP data")
	}
}

func TestMarkerChunkDrawsSlots(t *testing.T) {
	m := live.New(live.Config{})
	opt := live.Options{Live: true}
	m.Apply(inc("a", "192.0.2.1", incident.High, 50.11, 8.68), t0, opt)
	m.Apply(inc("b", "192.0.2.2", incident.Critical, 10, 10), t0, opt)
	m.Apply(inc("c", "192.0.2.3", incident.Critical, 10, 10), t0, opt)
	html := load(t, &markerChunk{M: m, Index: 0, Gen: m.MarkerChunkGen(0)})
	for _, want := range []string{
		`data-slot="0"`, `cx="524.1"`, `cy="338.7"`, `fill="#f87171"`, `class="mk p1 s-high"`,
		`data-slot="1"`, `fill="#ef4444"`, `>2</text>`, // two incidents aggregate with a count
	} {
		if !strings.Contains(html, want) {
			t.Errorf("chunk lacks %s:\n%s", want, html)
		}
	}
	if n := strings.Count(html, "<circle"); n != 2 {
		t.Errorf("%d circles, want 2", n)
	}
}

// TestChunksRenderOnlyWhenTheirGenerationChanges: go-app compares the
// exported fields; the model bumps a chunk's generation when a slot in it
// changes, and only then does the chunk render again.
func TestChunksRenderOnlyWhenTheirGenerationChanges(t *testing.T) {
	m := live.New(live.Config{})
	m.Apply(inc("a", "192.0.2.1", incident.High, 10, 10), t0, live.Options{Live: true})
	e := app.NewTestEngine()
	c := &markerChunk{M: m, Index: 0, Gen: m.MarkerChunkGen(0)}
	if err := e.Load(c); err != nil {
		t.Fatal(err)
	}
	e.ConsumeAll()
	m.Apply(inc("b", "192.0.2.2", incident.Low, -30, 100), t0, live.Options{Live: true})

	// Same generation: go-app keeps the old tree.
	if err := e.Load(&markerChunk{M: m, Index: 0, Gen: c.Gen}); err != nil {
		t.Fatal(err)
	}
	e.ConsumeAll()
	if n := strings.Count(app.HTMLString(c), "<circle"); n != 1 {
		t.Fatalf("re-rendered without a generation change: %d circles", n)
	}
	if err := e.Load(&markerChunk{M: m, Index: 0, Gen: m.MarkerChunkGen(0)}); err != nil {
		t.Fatal(err)
	}
	e.ConsumeAll()
	if n := strings.Count(app.HTMLString(c), "<circle"); n != 2 {
		t.Fatalf("new generation: %d circles, want 2", n)
	}
}

func TestArcChunkDrawsPaths(t *testing.T) {
	m := live.New(live.Config{})
	in := inc("a", "192.0.2.1", incident.Critical, 35.68, 139.69)
	in.Target = &incident.Location{Lat: 37.77, Lon: -122.42}
	m.Apply(in, t0, live.Options{Live: true})
	html := load(t, &arcChunk{M: m, Index: 0, Gen: m.ArcChunkGen(0)})
	if !strings.Contains(html, `stroke="#ef4444"`) || !strings.Contains(html, `class="arc p1"`) || !strings.Contains(html, `style="--w:0.80"`) {
		t.Fatalf("arc:\n%s", html)
	}
	d := html[strings.Index(html, ` d="`)+4:]
	d = d[:strings.Index(d, `"`)]
	if strings.Count(d, "M") != 2 {
		t.Fatalf("Tokyo to San Francisco is not split at the antimeridian: %s", d)
	}
}

func TestSidebarAndDetailsShowAttackerTextAsText(t *testing.T) {
	m := live.New(live.Config{})
	in := inc("a", "2001:db8::7", incident.High, 10, 10)
	in.Evidence = &incident.Evidence{Users: []string{`<img src=x onerror=alert(1)>`}}
	in.Tags = []string{"drill"}
	score := 100
	in.AbuseScore = &score
	in.Action = "blocked"
	m.Apply(in, t0, live.Options{})
	rows := m.Sidebar()
	list := load(t, &sidebar{M: m, Rows: &rows, Gen: m.SidebarGen()})
	for _, want := range []string{"2001:db8::7", "SSH brute force", "high", "blocked", "abuse 100", `class="drill"`, `data-idx="0"`} {
		if !strings.Contains(list, want) {
			t.Errorf("sidebar lacks %s:\n%s", want, list)
		}
	}
	det := load(t, &details{In: in})
	if strings.Contains(det, "<img") || !strings.Contains(det, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("attacker markup not escaped:\n%s", det)
	}
}

func TestStatsPanel(t *testing.T) {
	html := load(t, &statsPanel{View: live.StatsView{PerMinute: 12, Total: 340,
		BySeverity: []live.KV{{Key: "critical", Count: 10}, {Key: "high", Count: 5}},
		ByType:     []live.KV{{Key: "port_scan", Count: 300}},
		Countries:  []live.KV{{Key: "CN", Count: 200}}}})
	// go-app writes attributes in map order: match the per-minute span
	// whatever the order of its id and class.
	if !regexp.MustCompile(`<span[^>]*\bid="per-minute"[^>]*>12<`).MatchString(html) {
		t.Errorf("stats lack the per-minute count 12:\n%s", html)
	}
	for _, want := range []string{"340 in 24 h", "Port scan", ">China (CN)<", "width:50%", "◆"} {
		if !strings.Contains(html, want) {
			t.Errorf("stats lack %s:\n%s", want, html)
		}
	}
}

func TestHandlerUsesLocalIcons(t *testing.T) {
	h := NewHandler("v1")
	for _, u := range []string{h.Icon.Default, h.Icon.Large, h.Icon.SVG, h.Icon.Maskable} {
		if !strings.HasPrefix(u, "/web/") {
			t.Errorf("icon %q is not local", u)
		}
	}
	if h.Version != "v1" {
		t.Errorf("version %q", h.Version)
	}
}
