package detect

import (
	"strconv"
	"strings"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// The HTTP half of credential_stuffing: web login brute force. What counts,
// once per request:
//
//   - a POST to a login endpoint (LoginPaths), whatever the answer: a real
//     login is one POST (answered 302, or 200 with the form again after a
//     typo), a tool POSTs dozens a minute; it fills the login_posts bucket,
//     or the wordpress bucket for WPPaths;
//   - a failed login: such a POST answered 401 or 403, a 401 to any request
//     that carried a user (failed basic auth: the access log's user field),
//     and an error log's basic-auth failure (logparse.DetailAuthFailure);
//     it also fills the http_failures bucket. The 401 challenge a browser
//     gets before it sends credentials carries no user and does not count.
//
// A GET of a login page never counts. When both the access log and the
// error log of one server are followed, a failed basic-auth request shows
// up in both: the second sighting (same address, user and second) is
// dropped.

// defaultLoginPaths are the login endpoints of common software: generic
// forms and APIs, WordPress, Drupal (/user/login), Joomla (the
// administrator's index.php without a query: its logged-in pages all
// carry one), OpenCart, Java EE form auth, Outlook Web Access, Fortinet
// and Cisco ASA VPN portals.
func defaultLoginPaths() []string {
	return []string{"/login", "/logon", "/log-in", "/signin", "/sign-in", "/sign_in",
		"/auth", "/authenticate", "/session", "/sessions", "/j_security_check",
		"/user/login", "/admin/login", "/api/login", "/api/v1/auth", "/admin?",
		"/wp-login.php", "/xmlrpc.php", "/administrator/index.php?", "/administrator?",
		"/index.php?route=account/login", "/owa/auth.owa", "/remote/logincheck",
		"/+CSCOE+/logon.html", "/dologin", "/checklogin", "/login_check"}
}

// webLogins is the per-address state of the HTTP half, next to the
// buckets credState already has (http: failures, wp: WordPress).
type webLogins struct {
	login bucket // LoginPosts
	since int64  // first counted request since the buckets were last empty
	// Counted requests since then, by what they were, for the title.
	n, basic, wp, xmlrpc, posts int
	preUsers                    []string // users tried before the incident opened
	preStatuses                 []int
	// seen holds recent basic-auth failures, to drop the second
	// sighting of one request (access log and error log). Allocated on
	// the first failure only.
	seen *[authSeen]authMark
	next uint8
}

// authSeen is how many recent basic-auth failures an address keeps. The two
// sightings of a request are written within the same second; eight covers
// a tool running several requests at once.
const authSeen = 8

type authMark struct {
	sec     int64 // unix seconds
	user    uint64
	fromErr bool // seen in an error log (else an access log)
	used    bool
}

// httpClass says what a web event is to the detector.
type httpClass uint8

const (
	httpNone   httpClass = iota
	httpBasic            // failed basic auth (a 401 with a user, an error-log auth failure)
	httpPost             // POST to a login endpoint
	httpWP               // POST to wp-login.php (WPPaths other than xmlrpc.php)
	httpXMLRPC           // POST to xmlrpc.php
)

// classify says how ev counts and whether it is a failed login.
func (d *credentialStuffing) classify(ev *event.Event) (c httpClass, failed bool) {
	if ev.Kind == event.KindHTTPError {
		if ev.Detail == logparse.DetailAuthFailure {
			return httpBasic, true
		}
		return httpNone, false
	}
	basic := ev.Status == 401 && ev.User != ""
	if ev.Method != "POST" {
		if basic {
			return httpBasic, true
		}
		return httpNone, false
	}
	failed = ev.Status == 401 || ev.Status == 403
	switch {
	case hasSuffixAnyFold(ev.Path, d.wpPaths):
		if containsFold(ev.Path, "xmlrpc") {
			return httpXMLRPC, failed
		}
		return httpWP, failed
	case matchLoginPath(ev.Path, ev.Query, d.loginPaths):
		return httpPost, failed
	case basic:
		return httpBasic, true
	}
	return httpNone, false
}

func (d *credentialStuffing) web(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	class, failed := d.classify(ev)
	if class == httpNone || !e.reportable(ev.SrcIP) {
		return out
	}
	st := d.t.get(ev.SrcIP, now)
	if class == httpBasic && st.web.secondSighting(e, ev, now) {
		return out
	}
	open := d.current(e, st, now)
	w := &st.web
	if open == nil && st.http.empty(now, d.cfg.HTTPFailures) && st.wp.empty(now, d.cfg.WordPress) &&
		w.login.empty(now, d.cfg.LoginPosts) {
		st.prePaths = st.prePaths[:0]
		w.preUsers, w.preStatuses = w.preUsers[:0], w.preStatuses[:0]
		w.n, w.basic, w.wp, w.xmlrpc, w.posts, w.since = 0, 0, 0, 0, 0, now
	}
	w.n++
	// Every bucket the request belongs to is filled; the first that
	// overflows (failures, then the endpoint's) names the threshold.
	var b *bucket
	var c Bucket
	fired := false
	if failed {
		b, c = &st.http, d.cfg.HTTPFailures
		fired = st.http.add(now, c)
	}
	var pb *bucket
	var pc Bucket
	switch class {
	case httpBasic:
		w.basic++
	case httpWP, httpXMLRPC:
		if class == httpWP {
			w.wp++
		} else {
			w.xmlrpc++
		}
		pb, pc = &st.wp, d.cfg.WordPress
	case httpPost:
		w.posts++
		pb, pc = &w.login, d.cfg.LoginPosts
	}
	if pb != nil {
		if pb.add(now, pc) && !fired {
			b, c, fired = pb, pc, true
		} else if b == nil {
			b, c = pb, pc
		}
	}
	if open != nil {
		open.count++
		st.httpCount++
		d.webEvidence(open, ev)
		return d.publish(e, st, open, now, out)
	}
	if !fired {
		if len(st.prePaths) < incident.MaxList {
			st.prePaths = appendDistinct(st.prePaths, ev.Path)
		}
		if ev.User != "" && len(w.preUsers) < incident.MaxList {
			w.preUsers = appendDistinct(w.preUsers, ev.User)
		}
		if ev.Status != 0 && len(w.preStatuses) < incident.MaxList {
			addInt(&w.preStatuses, ev.Status)
		}
		return out
	}
	ep := e.open("credential_stuffing", ev.SrcIP.String(), d.cfg.Severity, c.threshold(), min(b.since, w.since), now, w.n)
	for _, p := range st.prePaths {
		addText(&ep.inc.Evidence.Paths, p)
	}
	for _, u := range w.preUsers {
		addText(&ep.inc.Evidence.Users, u)
	}
	for _, s := range w.preStatuses {
		addInt(&ep.inc.Evidence.Statuses, s)
	}
	st.prePaths, st.ep, st.viaSSH, st.httpCount = nil, ep, false, w.n
	w.preUsers, w.preStatuses = nil, nil
	d.webEvidence(ep, ev)
	ep.inc.Title = "HTTP login brute force"
	ep.render = func() { d.renderWeb(ep, w) }
	return d.publish(e, st, ep, now, out)
}

// secondSighting reports whether a basic-auth failure is the other log's
// record of one already counted (same user, within a second), and
// otherwise remembers it.
func (w *webLogins) secondSighting(e *Engine, ev *event.Event, now int64) bool {
	if w.seen == nil {
		w.seen = new([authSeen]authMark)
	}
	sec, user, fromErr := now/1e9, e.hash(ev.User), ev.Kind == event.KindHTTPError
	for i := range w.seen {
		m := &w.seen[i]
		if !m.used && m.fromErr != fromErr && m.user == user && m.sec >= sec-1 && m.sec <= sec+1 {
			m.used = true
			return true
		}
	}
	w.seen[w.next%authSeen] = authMark{sec: sec, user: user, fromErr: fromErr}
	w.next++
	return false
}

func (d *credentialStuffing) webEvidence(ep *episode, ev *event.Event) {
	ev2 := ep.inc.Evidence
	addText(&ev2.Paths, ev.Path)
	if ev.Method != "" {
		addText(&ev2.Methods, ev.Method)
	}
	if ev.Status != 0 {
		addInt(&ev2.Statuses, ev.Status)
	}
	if ev.UA != "" {
		addText(&ev2.UserAgents, ev.UA)
	}
	if ev.User != "" {
		addText(&ev2.Users, ev.User)
	}
}

// summaryItems is how many endpoints and users a summary names (the
// evidence lists hold the rest), and summaryItem caps each, so that the
// summary stays far below incident.MaxSummary.
const (
	summaryItems = 3
	summaryItem  = 64
)

// renderWeb titles the incident by what the requests were and sums them
// up: "14 login attempts on 1 endpoint (/wp-login.php) in 40 s; statuses
// 200; 2 users tried: admin, editor".
func (d *credentialStuffing) renderWeb(ep *episode, w *webLogins) {
	ev := ep.inc.Evidence
	posts := w.wp + w.xmlrpc + w.posts
	noun := "login attempt"
	switch {
	case w.basic > 0 && w.basic >= posts:
		ep.inc.Title, noun = "HTTP basic-auth brute force", "failed basic-auth login"
	case posts > 0 && w.xmlrpc == posts:
		ep.inc.Title = "XML-RPC brute force"
	case posts > 0 && w.wp+w.xmlrpc == posts:
		ep.inc.Title = "WordPress login brute force"
	default:
		ep.inc.Title = "HTTP login brute force"
	}
	var b strings.Builder
	b.WriteString(plural(ep.count, false, noun))
	b.WriteString(" on ")
	b.WriteString(plural(len(ev.Paths), len(ev.Paths) >= incident.MaxList, "endpoint"))
	writeList(&b, " (", ev.Paths, ")")
	b.WriteString(" in ")
	b.WriteString(span(ep.first, ep.last))
	if n := len(ev.Statuses); n > 0 {
		if n == 1 {
			b.WriteString("; status ")
		} else {
			b.WriteString("; statuses ")
		}
		for i, st := range ev.Statuses {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(st))
		}
	}
	if len(ev.Users) > 0 {
		b.WriteString("; ")
		b.WriteString(plural(len(ev.Users), len(ev.Users) >= incident.MaxList, "user"))
		b.WriteString(" tried")
		writeList(&b, ": ", ev.Users, "")
	}
	ep.inc.Summary = incident.CleanText(b.String(), incident.MaxSummary)
}

// writeList writes the first summaryItems values, each capped, between
// open and closing, with ", ..." when there are more.
func writeList(b *strings.Builder, open string, list []string, closing string) {
	if len(list) == 0 {
		return
	}
	b.WriteString(open)
	for i, v := range list {
		if i == summaryItems {
			b.WriteString(", ...")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(incident.CleanText(v, summaryItem))
	}
	b.WriteString(closing)
}

// matchLoginPath reports whether a request is for one of the login
// endpoints pats (lower case). A pattern matches a path that ends with
// it, ignoring ASCII case, one trailing slash and the path's extension
// (".php", ".aspx", ".do"); "P?Q" also needs a query that starts with Q,
// and "P?" a request without a query.
func matchLoginPath(path, query string, pats []string) bool {
	path = strings.TrimSuffix(path, "/")
	bare := path
	if dot := strings.LastIndexByte(path, '.'); dot >= 0 && len(path)-dot <= 6 && strings.IndexByte(path[dot:], '/') < 0 {
		bare = path[:dot]
	}
	for _, p := range pats {
		pp, pq, hasQ := strings.Cut(p, "?")
		if hasQ && (pq == "" && query != "" || pq != "" && !hasPrefixFold(query, pq)) {
			continue
		}
		if hasSuffixFold(path, pp) || hasSuffixFold(bare, pp) {
			return true
		}
	}
	return false
}

func hasSuffixFold(s, suf string) bool {
	return len(s) >= len(suf) && strings.EqualFold(s[len(s)-len(suf):], suf)
}

func hasPrefixFold(s, pre string) bool {
	return len(s) >= len(pre) && strings.EqualFold(s[:len(pre)], pre)
}

// hasSuffixAnyFold reports whether path ends with one of the lower-case
// suffixes, ignoring ASCII case.
func hasSuffixAnyFold(path string, sufs []string) bool {
	for _, s := range sufs {
		if hasSuffixFold(path, s) {
			return true
		}
	}
	return false
}
