package detect

import (
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// WebScan looks for scanners in access logs.
type WebScan struct {
	Switch
	Severity incident.Severity `json:"severity"` // default medium
	// Errors: non-static requests answered with one of ErrorStatuses, by
	// distinct path; capacity 9 leaking one per 10 s (the 10th fires).
	Errors        Bucket `json:"errors"`
	ErrorStatuses []int  `json:"error_statuses"`
	// Sensitive, Admin and Traversal are case-insensitive path substrings;
	// ScannerAgents are case-insensitive user-agent substrings. One such
	// request raises the incident at once. Admin paths count only when
	// answered 4xx (a site's real admin page answers 200 or a redirect).
	Sensitive     []string `json:"sensitive"`
	Admin         []string `json:"admin"`
	Traversal     []string `json:"traversal"`
	ScannerAgents []string `json:"scanner_agents"`
}

// defaultWebScan returns the defaults of web_scan.
func defaultWebScan() WebScan {
	return WebScan{
		Severity:      incident.Medium,
		Errors:        Bucket{Capacity: 9, Leak: Duration(10 * time.Second)},
		ErrorStatuses: []int{400, 403, 404},
		Sensitive: []string{"/.env", "/.git/", "/.svn/", "/.hg/", "/.aws/credentials",
			"/.ssh/", "/.htpasswd", "/.htaccess", "/.ds_store", "/wp-config.php.", "/wp-config.bak",
			"/wp-config.old", "/wp-config.txt", "/config.php.bak", "/.vscode/sftp.json",
			"/id_rsa", "/.bash_history", "/.docker/config.json", "/server-status",
			".sql", ".sql.gz", ".sql.zip", "/backup.zip", "/backup.tar.gz", "/dump.rdb",
			"/phpinfo.php", "/info.php", "/.well-known/security.txt~", "/web.config", "/etc/passwd"},
		Admin: []string{"/wp-admin", "/phpmyadmin", "/pma/", "/myadmin", "/adminer", "/admin",
			"/manager/html", "/administrator/", "/cpanel", "/webmin", "/solr/admin", "/jenkins", "/console"},
		Traversal: []string{"../", "..%2f", "%2e%2e", "..\\", "..%5c", "%252e%252e"},
		ScannerAgents: []string{"sqlmap", "nikto", "nmap", "masscan", "zgrab", "nuclei", "gobuster",
			"dirbuster", "dirb/", "wpscan", "acunetix", "nessus", "openvas", "whatweb", "ffuf",
			"feroxbuster", "jaeles", "censysinspect", "l9explore", "l9tcpid", "fuzz faster"},
	}
}

// webScanDetector is the table row of web_scan (detectors.go).
func webScanDetector() registration {
	return registration{
		name:     "web_scan",
		kinds:    []string{event.KindHTTPRequest},
		section:  func(c *Config) *Switch { return &c.WebScan.Switch },
		severity: func(c *Config) incident.Severity { return c.WebScan.Severity },
		buckets:  func(c *Config) map[string]Bucket { return map[string]Bucket{"errors": c.WebScan.Errors} },
		build:    func(e *Engine) detector { return newWebScan(e) },
	}
}

// webScan raises "web_scan" (medium) for a scanner in the access logs:
// non-static requests answered 404/403/400 to many distinct paths (the
// 10th distinct path within a bucket leaking one per 10 s), or at once for
// a request for a sensitive file (.env, .git/, backups, credentials), a
// path traversal, a known scanner user agent, or an admin interface that
// answered 4xx.
type webScan struct {
	cfg                                   WebScan
	sensitive, admin, traversal, scanners []string
	statuses                              map[int]bool
	t                                     *tracker[webState]
}

type webState struct {
	errs bucket
	seen distinct
	n    int
	pre  []string
	ep   *episode
}

func newWebScan(e *Engine) *webScan {
	c := e.cfg.WebScan
	d := &webScan{cfg: c, sensitive: lowerAll(c.Sensitive), admin: lowerAll(c.Admin),
		traversal: lowerAll(c.Traversal), scanners: lowerAll(c.ScannerAgents), statuses: map[int]bool{}}
	for _, s := range c.ErrorStatuses {
		d.statuses[s] = true
	}
	d.t = newTracker(e, func(s *webState) int64 {
		exp := s.errs.drainedAt(d.cfg.Errors)
		if s.ep != nil {
			exp = max(exp, s.ep.last+int64(e.cfg.Cooldown))
		}
		return exp
	})
	return d
}

func (d *webScan) sweep(now int64) { d.t.sweep(now) }
func (d *webScan) keys() int       { return d.t.keys() }

// Reasons one request alone gives a scanner away.
const (
	sigNone = iota
	sigSensitive
	sigTraversal
	sigScanner
	sigAdmin
)

// signature returns why one request alone gives a scanner away, and the
// pattern that matched.
func (d *webScan) signature(ev *event.Event) (int, string) {
	if p, ok := containsAnyFold(ev.Path, d.sensitive); ok {
		return sigSensitive, p
	}
	if _, ok := containsAnyFold(ev.Path, d.traversal); ok {
		return sigTraversal, ""
	}
	if _, ok := containsAnyFold(ev.Query, d.traversal); ok {
		return sigTraversal, ""
	}
	if ev.UA != "" {
		if ua, ok := containsAnyFold(ev.UA, d.scanners); ok {
			return sigScanner, ua
		}
	}
	if ev.Status >= 400 && ev.Status < 500 {
		if p, ok := containsAnyFold(ev.Path, d.admin); ok {
			return sigAdmin, p
		}
	}
	return sigNone, ""
}

func whyText(sig int, pat string) string {
	switch sig {
	case sigSensitive:
		return "a request for " + pat
	case sigTraversal:
		return "a path traversal"
	case sigScanner:
		return "the scanner user agent " + pat
	case sigAdmin:
		return "admin interface probing (" + pat + ")"
	}
	return ""
}

func (d *webScan) handle(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	if ev.Kind != event.KindHTTPRequest || ev.Detail == logparse.DetailStatic || !e.reportable(ev.SrcIP) {
		return out
	}
	sig, pat := d.signature(ev)
	isErr := d.statuses[ev.Status]
	if sig == sigNone && !isErr {
		return out
	}
	st := d.t.get(ev.SrcIP, now)
	if st.ep != nil && e.over(st.ep, now) {
		st.ep = nil
	}
	if st.ep == nil && st.errs.empty(now, d.cfg.Errors) {
		st.seen.reset()
		st.n = 0
		st.pre = st.pre[:0]
	}
	st.n++
	fired := false
	if isErr && st.seen.add(hashString(ev.Path), max(64, 3*d.cfg.Errors.threshold())) {
		fired = st.errs.add(now, d.cfg.Errors)
	}
	if st.ep != nil {
		st.ep.count++
		d.evidence(st.ep, ev)
		return e.publish(st.ep, now, d.severity(st), out)
	}
	if !fired && sig == sigNone {
		if len(st.pre) < incident.MaxList {
			st.pre = appendDistinct(st.pre, ev.Path)
		}
		return out
	}
	first := st.errs.since
	if first == 0 {
		first = now
	}
	ep := e.open("web_scan", ev.SrcIP.String(), d.cfg.Severity, d.cfg.Errors.threshold(), first, now, st.n)
	for _, p := range st.pre {
		addText(&ep.inc.Evidence.Paths, p)
	}
	st.pre, st.ep = nil, ep
	d.evidence(ep, ev)
	why := whyText(sig, pat)
	ep.inc.Title = "Web scan"
	ep.render = func() { d.render(ep, why) }
	return e.publish(ep, now, d.severity(st), out)
}

func (d *webScan) evidence(ep *episode, ev *event.Event) {
	evd := ep.inc.Evidence
	addText(&evd.Paths, ev.Path)
	if ev.Method != "" {
		addText(&evd.Methods, ev.Method)
	}
	addInt(&evd.Statuses, ev.Status)
	if ev.UA != "" {
		addText(&evd.UserAgents, ev.UA)
	}
}

func (d *webScan) severity(st *webState) incident.Severity {
	return st.ep.severity(max(st.seen.len(), len(st.ep.inc.Evidence.Paths)))
}

func (d *webScan) render(ep *episode, why string) {
	paths := ep.inc.Evidence.Paths
	var b strings.Builder
	b.WriteString(plural(ep.count, false, "suspicious request"))
	b.WriteString(" to ")
	b.WriteString(plural(len(paths), len(paths) >= incident.MaxList, "distinct path"))
	b.WriteString(" in ")
	b.WriteString(span(ep.first, ep.last))
	if why != "" {
		b.WriteString(", starting with ")
		b.WriteString(why)
	}
	ep.inc.Summary = incident.CleanText(b.String(), incident.MaxSummary)
}
