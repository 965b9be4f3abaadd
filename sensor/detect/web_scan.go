package detect

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
	"github.com/attackmap/attackmap/sensor/webrule"
)

// WebScan scores the web requests of each address: every request that hits
// a web rule (package webrule) adds the weight of the rule's category, a
// request answered with an error to a path the address had not asked for
// yet adds the weight of "error_path", and the incident fires when the
// score goes above the Score bucket's capacity.
type WebScan struct {
	Switch
	// Severity is the base severity (default medium). It rises one step
	// at 2x and two at 3x the score threshold in suspicious requests, one
	// step for three attack categories or more, and to at least high as
	// soon as a category of High is seen.
	Severity incident.Severity `json:"severity"`
	// Score is the leaky bucket of points: capacity 9, one point leaking
	// out every 10 s, so 10 points within a short while fire. A point is
	// one distinct error path, which keeps the old rule (ten distinct
	// 404s fire) while a browser's broken link or mistyped URL (one or two
	// points) never does.
	Score Bucket `json:"score"`
	// Weights are the points one request scores per rule category (the
	// highest of its hits counts), plus "error_path" for a non-static
	// path answered with one of ErrorStatuses the first time. Defaults,
	// with the hits that fire at capacity 9:
	//
	//	sensitive_file, scanner_ua, traversal, cmd_injection,
	//	open_proxy: 10 (one request: a .env probe, a sqlmap user
	//	            agent, ../../etc/passwd, ;cat /etc/passwd, CONNECT
	//	            are never a browser's doing)
	//	backdoor, protocol: 5 (two: one webshell name or malformed
	//	            line can be a fluke, two are a list being tried)
	//	sqli, xss:  4 (three, even on one path: sqlmap and wapiti hammer
	//	            one parameter, and a search box may see one odd query)
	//	wordpress, admin_probe: 2 per distinct directory (five plugin or
	//	            admin-tool directories: a site's own broken asset links
	//	            stay in one or two)
	//	error_path: 1 (ten distinct not-found paths)
	//	login, cve: 0 (credential_stuffing and exploit_attempt own them)
	Weights map[string]int `json:"weights"`
	// RuleWeights override Weights for single rules, by rule id. Defaults:
	// protocol-w00tw00t 10 (the DFind scanner's calling card, never a
	// client's mistake, unlike the rest of its category), scanner-hydra 0
	// (a login brute forcer: credential_stuffing tells that story).
	RuleWeights map[string]int `json:"rule_weights"`
	// PerDirectory are the categories whose hits count once per distinct
	// directory (the path up to its fourth '/', "/wp-content/plugins/x/",
	// or its directory when shorter, "/phpmyadmin/"): default wordpress
	// and admin_probe, so a page that keeps asking for missing assets of
	// one plugin adds two points once.
	PerDirectory []string `json:"per_directory"`
	// High are the categories that make the incident at least high
	// (default sqli, cmd_injection, traversal: payloads, not mere
	// probing).
	High []string `json:"high"`
	// ErrorStatuses are the answers that count a path as an error path
	// (default 400, 403, 404, 410).
	ErrorStatuses []int `json:"error_statuses"`

	// Errors is the old name of Score (same unit: one distinct error path
	// is one point); when set it replaces Score.
	Errors *Bucket `json:"errors,omitempty"`
	// Sensitive, Admin, Traversal and ScannerAgents were pattern lists
	// before the rule pack. They are accepted so that old configuration
	// files load, and ignored with a warning: write such patterns as
	// rules in a web_rules file.
	Sensitive     []string `json:"sensitive,omitempty"`
	Admin         []string `json:"admin,omitempty"`
	Traversal     []string `json:"traversal,omitempty"`
	ScannerAgents []string `json:"scanner_agents,omitempty"`
}

// weightErrorPath is the Weights key of a plain error path.
const weightErrorPath = "error_path"

// defaultWebScan returns the defaults of web_scan.
func defaultWebScan() WebScan {
	return WebScan{
		Severity: incident.Medium,
		Score:    Bucket{Capacity: 9, Leak: Duration(10 * time.Second)},
		Weights: map[string]int{
			webrule.CategorySensitiveFile: 10,
			webrule.CategoryScannerUA:     10,
			webrule.CategoryTraversal:     10,
			webrule.CategoryCmdInjection:  10,
			webrule.CategoryOpenProxy:     10,
			webrule.CategoryBackdoor:      5,
			webrule.CategoryProtocol:      5,
			webrule.CategorySQLi:          4,
			webrule.CategoryXSS:           4,
			webrule.CategoryWordPress:     2,
			webrule.CategoryAdminProbe:    2,
			webrule.CategoryLogin:         0,
			webrule.CategoryCVE:           0,
			weightErrorPath:               1,
		},
		RuleWeights:   map[string]int{"protocol-w00tw00t": 10, "scanner-hydra": 0},
		PerDirectory:  []string{webrule.CategoryWordPress, webrule.CategoryAdminProbe},
		High:          []string{webrule.CategorySQLi, webrule.CategoryCmdInjection, webrule.CategoryTraversal},
		ErrorStatuses: []int{400, 403, 404, 410},
	}
}

// webScanDetector is the table row of web_scan (detectors.go).
func webScanDetector() registration {
	return registration{
		name:     "web_scan",
		kinds:    []string{event.KindHTTPRequest, event.KindHTTPError},
		section:  func(c *Config) *Switch { return &c.WebScan.Switch },
		severity: func(c *Config) incident.Severity { return c.WebScan.Severity },
		buckets: func(c *Config) map[string]Bucket {
			m := map[string]Bucket{"score": c.WebScan.Score}
			if c.WebScan.Errors != nil {
				m["errors"] = *c.WebScan.Errors
			}
			return m
		},
		check: checkWebScan,
		build: func(e *Engine) detector { return newWebScan(e) },
	}
}

// checkWebScan validates the category names and weights of web_scan.
func checkWebScan(c *Config) error {
	w := &c.WebScan
	for k, v := range w.Weights {
		if k != weightErrorPath && webCat(k) < 0 {
			return fmt.Errorf("detect: web_scan.weights: unknown category %q (known: %s, %s)", k, strings.Join(webCats[:], ", "), weightErrorPath)
		}
		if v < 0 || v > 1_000_000 {
			return fmt.Errorf("detect: web_scan.weights.%s: %d is not between 0 and 1000000", k, v)
		}
	}
	for k, v := range w.RuleWeights {
		if v < 0 || v > 1_000_000 {
			return fmt.Errorf("detect: web_scan.rule_weights.%s: %d is not between 0 and 1000000", k, v)
		}
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"per_directory", w.PerDirectory}, {"high", w.High}} {
		for _, k := range l.v {
			if webCat(k) < 0 {
				return fmt.Errorf("detect: web_scan.%s: unknown category %q", l.name, k)
			}
		}
	}
	return nil
}

// Categories in the order that breaks ties for the title: payloads before
// probes, and the scanner's name last (it says who, not what).
var webCats = [...]string{
	webrule.CategoryCmdInjection, webrule.CategorySQLi, webrule.CategoryTraversal, webrule.CategoryXSS,
	webrule.CategoryBackdoor, webrule.CategorySensitiveFile, webrule.CategoryOpenProxy,
	webrule.CategoryWordPress, webrule.CategoryAdminProbe, webrule.CategoryProtocol,
	webrule.CategoryLogin, webrule.CategoryCVE, webrule.CategoryScannerUA,
}

const nWebCats = len(webCats)

// webCat returns the index of category c in webCats, or -1.
func webCat(c string) int {
	for i, s := range webCats {
		if s == c {
			return i
		}
	}
	return -1
}

var (
	catScannerUA = webCat(webrule.CategoryScannerUA)
	catProtocol  = webCat(webrule.CategoryProtocol)
)

// webCatTitles are the incident titles when a category dominates, and
// webCatNouns the words of the summary, both indexed like webCats.
var (
	webCatTitles = [nWebCats]string{"Command injection probing", "SQL injection probing", "Path traversal probing",
		"XSS probing", "Webshell probing", "Sensitive file scan", "Open proxy probe", "WordPress plugin scan",
		"Admin interface scan", "Malformed HTTP requests", "Login probing", "Exploit scan", "Web scan"}
	webCatNouns = [nWebCats]string{"command injection", "SQL injection", "path traversal", "XSS", "webshell",
		"sensitive file", "open proxy", "WordPress", "admin interface", "malformed request", "login",
		"exploit", "scanner user agent"}
)

// Details of http_error events (the error-log parser's) that web_scan
// counts: the first three are protocol violations, the others a request
// the server refused or could not serve.
const (
	errInvalidURI    = "invalid_uri"
	errBadRequest    = "bad_request"
	errInvalidMethod = "invalid_method"
	errForbiddenRule = "forbidden_rule"
	errDeniedConfig  = "denied_by_config"
	errDirIndex      = "dir_index_forbidden"
	errFileNotFound  = "file_not_found"
)

// webMatch runs the web rules once per event and keeps the hits, so that
// web_scan and exploit_attempt, which visit the same event one after the
// other, share one Match. Its buffers are reused: no allocation per event.
type webMatch struct {
	set  *webrule.Set
	seq  uint64 // Engine.seq of the event the hits belong to
	req  webrule.Request
	hits []webrule.Hit
}

// webHits returns the rules the current event ev matches.
func (e *Engine) webHits(ev *event.Event) []webrule.Hit {
	w := &e.web
	if w.seq == e.seq {
		return w.hits
	}
	w.seq = e.seq
	w.req = webrule.Request{Method: ev.Method, Path: ev.Path, Query: ev.Query, UA: ev.UA,
		Version: ev.HTTPVersion, Status: ev.Status, User: ev.User}
	clear(w.hits) // drop the last event's rule pointers
	w.hits = w.set.Match(&w.req, w.hits[:0])
	return w.hits
}

// webHitsNoCache matches ev without touching the per-event cache, for
// explain, which also runs before Handle has counted the event.
func (e *Engine) webHitsNoCache(ev *event.Event) []webrule.Hit {
	req := webrule.Request{Method: ev.Method, Path: ev.Path, Query: ev.Query, UA: ev.UA,
		Version: ev.HTTPVersion, Status: ev.Status, User: ev.User}
	return e.web.set.Match(&req, nil)
}

// webScan raises "web_scan" (medium) for an address whose requests score
// above the Score bucket (see WebScan): scanners, probes for sensitive
// files and webshells, injection payloads, open proxy and protocol probes,
// WordPress and admin-interface enumeration, and plain not-found sprays.
// http_error events (the web server's error log) count too: their paths
// are error paths and invalid URIs or request lines are protocol hits.
// A request that hits a cve rule is left to exploit_attempt (unless that
// detector is off), so one exploit probe makes one incident.
type webScan struct {
	cfg      WebScan
	weights  [nWebCats]int
	errW     int
	perDir   [nWebCats]bool
	high     [nWebCats]bool
	statuses map[int]bool
	exploits bool // exploit_attempt is on: requests that hit a cve rule are its
	t        *tracker[webState]
}

// webSeenMax caps the distinct error paths and directories remembered per
// address while its bucket is filled: past it every path counts as new,
// and by then the address has long fired.
const webSeenMax = 64

// webPathsMax caps the distinct paths an incident counts for its summary;
// more show as "256+".
const webPathsMax = 256

// webState is one address's state.
type webState struct {
	score bucket
	seen  distinct // error paths and per-directory dirs, while score is filled
	tally webTally // what was seen before the incident fired
	pre   []webPre // the requests before it fired, for the evidence
	ep    *episode
	cur   *webTally // the open incident's tally
}

// webTally is what an incident saw: it lives with the episode, so that a
// copy rendered after a new episode started still tells its own story.
type webTally struct {
	n     int             // requests that scored
	since int64           // when the first of them came
	hits  [nWebCats]int32 // requests that scored per category
	plain int32           // requests that scored only as error paths
	paths distinct        // distinct paths, without query
	first *webrule.Rule   // the first rule that scored
	tool  *webrule.Rule   // the scanner_ua rule, naming the tool
	cves  []string        // CVE tags of the rules hit
}

// webPre is a request seen before the incident fired.
type webPre struct {
	path, method, ua string
	status           int
}

func newWebScan(e *Engine) *webScan {
	c := e.cfg.WebScan
	if c.Errors != nil {
		c.Score = *c.Errors
	}
	if c.Errors != nil || len(c.Sensitive)+len(c.Admin)+len(c.Traversal)+len(c.ScannerAgents) > 0 {
		e.log.Warn("detect: web_scan: errors, sensitive, admin, traversal and scanner_agents are old settings: " +
			"errors is read as score, the pattern lists are ignored (write them as rules in a web_rules file)")
	}
	d := &webScan{cfg: c, statuses: map[int]bool{}, exploits: !e.cfg.ExploitAttempt.Disabled}
	for k, v := range c.Weights {
		if k == weightErrorPath {
			d.errW = v
		} else if i := webCat(k); i >= 0 {
			d.weights[i] = v
		}
	}
	for _, k := range c.PerDirectory {
		if i := webCat(k); i >= 0 {
			d.perDir[i] = true
		}
	}
	for _, k := range c.High {
		if i := webCat(k); i >= 0 {
			d.high[i] = true
		}
	}
	for _, s := range c.ErrorStatuses {
		d.statuses[s] = true
	}
	d.t = newTracker(e, func(s *webState) int64 {
		return e.keepUntil(s.score.drainedAt(d.cfg.Score), s.ep)
	})
	return d
}

func (d *webScan) sweep(now int64) { d.t.sweep(now) }
func (d *webScan) keys() int       { return d.t.keys() }

// dirSalt keeps directory hashes apart from path hashes in one set.
const dirSalt = 0x9e3779b97f4a7c15

// toolDir returns the part of a path that names what a probe looks for:
// up to its fourth '/' ("/wp-content/plugins/x/css/a.css" ->
// "/wp-content/plugins/x/"), or its directory when shorter
// ("/phpmyadmin/index.php" -> "/phpmyadmin/"). A page's broken links into
// one plugin share it; a scanner's probes for many plugins do not.
func toolDir(p string) string {
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			if n++; n == 4 {
				return p[:i+1]
			}
		}
	}
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1]
	}
	return p
}

func (d *webScan) handle(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	if !e.reportable(ev.SrcIP) {
		return out
	}
	errPath, proto := false, false
	switch ev.Kind {
	case event.KindHTTPRequest:
		errPath = d.statuses[ev.Status] && ev.Detail != logparse.DetailStatic
	case event.KindHTTPError:
		switch ev.Detail {
		case errInvalidURI, errBadRequest, errInvalidMethod:
			proto = true
		case errForbiddenRule, errDeniedConfig, errDirIndex, errFileNotFound:
		default:
			return out
		}
		errPath = ev.Path != "" && !logparse.IsStatic(ev.Path)
	default:
		return out
	}
	hits := e.webHits(ev)
	if len(hits) == 0 && !errPath && !proto {
		return out
	}
	if d.exploits {
		for _, h := range hits {
			if h.Rule.Category == webrule.CategoryCVE {
				return out // exploit_attempt tells this request's story
			}
		}
	}

	st := d.t.get(ev.SrcIP, now)
	if st.ep != nil && e.over(st.ep, now) {
		st.ep, st.cur = nil, nil
	}
	if st.ep == nil && st.score.empty(now, d.cfg.Score) {
		st.seen.reset()
		st.pre = st.pre[:0]
		paths := st.tally.paths
		paths.reset()
		st.tally = webTally{paths: paths, cves: st.tally.cves[:0]}
	}
	// An error-log line is mostly a second view of a request the access
	// log has too: its path counts only when new.
	newPath := true
	if errPath {
		newPath = st.seen.add(e.hash(ev.Path), webSeenMax)
	}
	if ev.Kind == event.KindHTTPError && !newPath {
		return out
	}
	pts, mask := 0, uint32(0)
	var first, tool *webrule.Rule
	for _, h := range hits {
		c := webCat(h.Rule.Category)
		if c < 0 {
			continue
		}
		w := d.weights[c]
		if len(d.cfg.RuleWeights) > 0 {
			if rw, ok := d.cfg.RuleWeights[h.Rule.ID]; ok {
				w = rw
			}
		}
		if w == 0 {
			continue
		}
		if mask&(1<<c) == 0 {
			if d.perDir[c] && !st.seen.add(e.hash(toolDir(ev.Path))^dirSalt, webSeenMax) {
				continue
			}
			mask |= 1 << c
		}
		pts = max(pts, w)
		switch {
		case c == catScannerUA:
			tool = h.Rule
		case first == nil || c < webCat(first.Category):
			first = h.Rule // the request's most telling rule
		}
	}
	if proto && mask&(1<<catProtocol) == 0 && d.weights[catProtocol] > 0 {
		mask |= 1 << catProtocol
		pts = max(pts, d.weights[catProtocol])
	}
	plain := false
	if errPath && newPath && d.errW > 0 && pts == 0 {
		pts, plain = d.errW, true
	}
	if pts == 0 {
		return out
	}

	ty := &st.tally
	if st.cur != nil {
		ty = st.cur
	}
	ty.add(now, mask, plain, e.hash(ev.Path), first, tool, hits)
	fired := st.score.addN(now, pts, d.cfg.Score)
	if st.ep != nil {
		st.ep.count++
		d.evidence(st.ep, ev.Path, ev.Query, ev.Method, ev.UA, ev.Status)
		return e.publish(st.ep, now, d.severity(st.ep, st.cur), out)
	}
	if !fired {
		if len(st.pre) < incident.MaxList {
			st.pre = append(st.pre, webPre{path: pathQuery(ev.Path, ev.Query), method: ev.Method, ua: ev.UA, status: ev.Status})
		}
		return out
	}
	ep := e.open("web_scan", ev.SrcIP.String(), d.cfg.Severity, d.cfg.Score.threshold(), st.tally.since, now, st.tally.n)
	// The tally moves to the episode; the state starts a fresh one for
	// whatever comes after this episode.
	cur := new(webTally)
	*cur = st.tally
	st.tally = webTally{}
	for _, p := range st.pre {
		d.evidence(ep, p.path, "", p.method, p.ua, p.status)
	}
	clear(st.pre)
	st.pre = st.pre[:0]
	st.ep, st.cur = ep, cur
	d.evidence(ep, ev.Path, ev.Query, ev.Method, ev.UA, ev.Status)
	ep.render = func() { d.render(ep, cur) }
	return e.publish(ep, now, d.severity(ep, cur), out)
}

// add counts one scored request.
func (t *webTally) add(now int64, mask uint32, plain bool, pathHash uint64, first, tool *webrule.Rule, hits []webrule.Hit) {
	if t.n == 0 {
		t.since = now
	}
	t.n++
	for c := range nWebCats {
		if mask&(1<<c) != 0 {
			t.hits[c]++
		}
	}
	if plain {
		t.plain++
	}
	t.paths.add(pathHash, webPathsMax)
	if t.first == nil {
		t.first = first
	}
	if tool != nil {
		t.tool = tool
	}
	for _, h := range hits {
		for _, tag := range h.Rule.Tags {
			if strings.HasPrefix(tag, "cve-") && validTag(tag) && len(t.cves) < incident.MaxTags && !containsStr(t.cves, tag) {
				t.cves = append(t.cves, tag)
			}
		}
	}
}

// addStatus adds an HTTP status to the evidence; 0 (unknown, an error-log
// line) and values no server writes (a hand-made events file) are left out.
func addStatus(list *[]int, s int) {
	if s >= 100 && s <= 999 {
		addInt(list, s)
	}
}

// pathQuery joins a path and its query as the request named them.
func pathQuery(path, query string) string {
	if query == "" {
		return path
	}
	return path + "?" + query
}

func (d *webScan) evidence(ep *episode, path, query, method, ua string, status int) {
	evd := ep.inc.Evidence
	if path != "" || query != "" {
		addText(&evd.Paths, pathQuery(path, query))
	}
	if method != "" {
		addText(&evd.Methods, method)
	}
	addStatus(&evd.Statuses, status)
	if ua != "" {
		addText(&evd.UserAgents, ua)
	}
}

// attackCats counts the categories seen other than the scanner's name.
func (t *webTally) attackCats() int {
	n := 0
	for c := range nWebCats {
		if c != catScannerUA && t.hits[c] > 0 {
			n++
		}
	}
	return n
}

// severity is the base escalated by suspicious requests (one step at 2x,
// two at 3x the threshold), one step more for three attack categories,
// and at least high once a High category was seen.
func (d *webScan) severity(ep *episode, t *webTally) incident.Severity {
	s := ep.severity(ep.count)
	if t.attackCats() >= 3 {
		s = s.Escalate(1)
	}
	for c := range nWebCats {
		if d.high[c] && t.hits[c] > 0 && s.Rank() < incident.High.Rank() {
			s = incident.High
		}
	}
	return s
}

// dominant returns the category tried most often, scanner_ua aside;
// ties go to the earlier one in webCats (sqlmap's first probe is SQL,
// XSS and traversal at once: it is SQL injection).
func (d *webScan) dominant(t *webTally) int {
	best, bestN := -1, int32(0)
	for c := range nWebCats {
		if c != catScannerUA && t.hits[c] > bestN {
			best, bestN = c, t.hits[c]
		}
	}
	return best
}

// toolName is the scanner a scanner_ua rule names: its first specific
// tag ("sqlmap", "nikto"), else its title.
func toolName(r *webrule.Rule) string {
	for _, t := range r.Tags {
		switch t {
		case "scanner", "ua", "user-agent", "tool", "recon":
			continue
		}
		return t
	}
	return r.Title
}

// render writes the title, summary and tags of a web_scan incident.
func (d *webScan) render(ep *episode, t *webTally) {
	// The dominant category names the attack when it is at least a
	// third of the requests; a not-found spray with one webshell name in
	// it is a web scan.
	dom := d.dominant(t)
	if dom >= 0 && 3*int(t.hits[dom]) < t.n {
		dom = -1
	}
	title := "Web scan"
	if dom >= 0 {
		title = webCatTitles[dom]
	}
	if t.tool != nil {
		if dom >= 0 && t.attackCats() == 1 {
			title += " (" + toolName(t.tool) + ")"
		} else {
			title = "Scanner: " + toolName(t.tool)
		}
	}
	ep.inc.Title = incident.CleanText(title, incident.MaxTitle)

	var b strings.Builder
	b.WriteString(plural(ep.count, false, "suspicious request"))
	b.WriteString(" to ")
	n := t.paths.len()
	b.WriteString(plural(n, n >= webPathsMax, "distinct path"))
	b.WriteString(" in ")
	b.WriteString(span(ep.first, ep.last))
	sep := ": "
	order := d.byHits(t)
	for _, c := range order {
		b.WriteString(sep)
		b.WriteString(webCatNouns[c])
		b.WriteString(" (")
		b.WriteString(strconv.Itoa(int(t.hits[c])))
		b.WriteString(")")
		sep = ", "
	}
	if t.plain > 0 {
		b.WriteString(sep)
		b.WriteString("not found (")
		b.WriteString(strconv.Itoa(int(t.plain)))
		b.WriteString(")")
	}
	if t.first != nil {
		b.WriteString("; first: ")
		b.WriteString(t.first.Title)
	}
	ep.inc.Summary = incident.CleanText(b.String(), incident.MaxSummary)

	var tags []string // fresh: earlier copies share the old slice
	for _, c := range order {
		if len(tags) < incident.MaxTags {
			tags = append(tags, webCats[c])
		}
	}
	for _, cve := range t.cves {
		if len(tags) < incident.MaxTags && !containsStr(tags, cve) {
			tags = append(tags, cve)
		}
	}
	ep.inc.Tags = tags
}

// byHits returns the categories seen, most hits first, ties in webCats
// order.
func (d *webScan) byHits(t *webTally) []int {
	var out []int
	for c := range nWebCats {
		if t.hits[c] > 0 {
			out = append(out, c)
		}
	}
	for i := 1; i < len(out); i++ { // insertion sort: a dozen items, stable
		for j := i; j > 0 && t.hits[out[j]] > t.hits[out[j-1]]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// validTag reports whether s can be an incident tag (a rule file's tag
// is user data).
func validTag(s string) bool {
	if s == "" || len(s) > incident.MaxTag {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// ruleNote names the rules an event hit: "rules sqli-union-select (sqli)".
func ruleNote(hits []webrule.Hit) string {
	if len(hits) == 0 {
		return "no rule matched"
	}
	var b strings.Builder
	b.WriteString("rules ")
	for i, h := range hits {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(h.Rule.ID + " (" + h.Rule.Category + ")")
	}
	return b.String()
}

// explain says what the event did to web_scan's state (see explainer).
func (d *webScan) explain(e *Engine, ev *event.Event) string {
	if !e.reportable(ev.SrcIP) {
		return "ignored: source " + ev.SrcIP.String() + " is private, special or allow-listed"
	}
	hits := e.webHitsNoCache(ev)
	st := d.t.peek(ev.SrcIP)
	if st == nil {
		return notes(ruleNote(hits), "no state")
	}
	now := ev.TS.UnixNano()
	return notes(ruleNote(hits), bucketNote("score", &st.score, d.cfg.Score, now), episodeNote(st.ep, now, e))
}
