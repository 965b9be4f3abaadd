package detect

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// webLogin is an access log request with a user field (basic auth).
func webLogin(ip string, ts time.Time, method, path string, status int, user string) event.Event {
	ev := httpReq(ip, ts, method, path, status, "Mozilla/5.0 (Hydra)")
	ev.User = user
	return ev
}

// authFailure is an error log's basic-auth failure.
func authFailure(ip string, ts time.Time, path, user string) event.Event {
	return event.Event{TS: ts, Kind: event.KindHTTPError, Source: event.SourceErrorLog, SrcIP: netip.MustParseAddr(ip),
		Method: "GET", Path: path, User: user, Detail: logparse.DetailAuthFailure}
}

// stuffing feeds evs and returns the latest credential_stuffing incident,
// or nil when none was raised.
func stuffing(t *testing.T, evs []event.Event) *incident.Incident {
	t.Helper()
	e := New(every())
	got := bySource(feed(t, e, evs...), "credential_stuffing")
	if len(got) == 0 {
		return nil
	}
	return &got[len(got)-1]
}

func TestHTTPLoginBruteForce(t *testing.T) {
	cases := []struct {
		name    string
		evs     func() []event.Event
		title   string // "": no incident
		count   int
		summary string
	}{
		{"hydra POSTs wp-login.php answered 200", func() (evs []event.Event) {
			for i := range 30 {
				evs = append(evs, webLogin(attacker, at(time.Duration(i)*2*time.Second), "POST", "/wp-login.php", 200, ""))
			}
			return evs
		}, "WordPress login brute force", 30, "30 login attempts on 1 endpoint (/wp-login.php) in 58 s; status 200"},
		{"xmlrpc.php system.multicall", func() (evs []event.Event) {
			for i := range 12 {
				evs = append(evs, webLogin(attacker, at(time.Duration(i)*time.Second), "POST", "/xmlrpc.php", 200, ""))
			}
			return evs
		}, "XML-RPC brute force", 12, "12 login attempts on 1 endpoint (/xmlrpc.php) in 11 s; status 200"},
		{"Drupal logins answered 200 and 403", func() (evs []event.Event) {
			for i := range 20 {
				status := 200
				if i%2 == 1 {
					status = 403
				}
				evs = append(evs, webLogin(attacker, at(time.Duration(i)*3*time.Second), "POST", "/user/login", status, ""))
			}
			return evs
		}, "HTTP login brute force", 20, "20 login attempts on 1 endpoint (/user/login) in 57 s; statuses 200, 403"},
		{"POSTs answered 401", func() (evs []event.Event) {
			// Six failures in 5 s fill http_failures before login_posts.
			for i := range 6 {
				evs = append(evs, webLogin(attacker, at(time.Duration(i)*time.Second), "POST", "/login", 401, ""))
			}
			return evs
		}, "HTTP login brute force", 6, "6 login attempts on 1 endpoint (/login) in 5 s; status 401"},
		{"patator on several endpoints with extensions and queries", func() (evs []event.Event) {
			paths := []string{"/Login.aspx", "/admin/login.php", "/api/v1/auth", "/index.php?route=account/login", "/remote/logincheck"}
			for i := range 15 {
				evs = append(evs, webLogin(attacker, at(time.Duration(i)*time.Second), "POST", paths[i%len(paths)], 200, ""))
			}
			return evs
		}, "HTTP login brute force", 15, "15 login attempts on 5 endpoints (/Login.aspx, /admin/login.php, /api/v1/auth, ...) in 14 s; status 200"},
		{"basic-auth 401 burst with users", func() (evs []event.Event) {
			for i, u := range []string{"admin", "root", "tomcat", "manager", "admin", "test", "guest"} {
				evs = append(evs, webLogin(attacker, at(time.Duration(i)*time.Second), "GET", "/manager/html", 401, u))
			}
			return evs
		}, "HTTP basic-auth brute force", 7, "7 failed basic-auth logins on 1 endpoint (/manager/html) in 6 s; status 401; 6 users tried: admin, root, tomcat, ..."},
		{"basic-auth failures from the error log", func() (evs []event.Event) {
			for i := range 6 {
				evs = append(evs, authFailure(attacker, at(time.Duration(i)*time.Second), "/private/", fmt.Sprintf("user%d", i)))
			}
			return evs
		}, "HTTP basic-auth brute force", 6, "6 failed basic-auth logins on 1 endpoint (/private/) in 5 s; 6 users tried: user0, user1, user2, ..."},
		{"one basic-auth failure seen in both logs counts once", func() (evs []event.Event) {
			// Five failed requests, each in the access log and the
			// error log: five, not ten, so below the sixth.
			for i := range 5 {
				ts := at(time.Duration(i) * time.Second)
				u := fmt.Sprintf("user%d", i)
				evs = append(evs, authFailure(attacker, ts, "/private/", u), webLogin(attacker, ts, "GET", "/private/", 401, u))
			}
			return evs
		}, "", 0, ""},
		{"the owner logs in once", func() []event.Event {
			return []event.Event{
				webLogin(attacker, at(0), "GET", "/wp-login.php", 200, ""),
				webLogin(attacker, at(20*time.Second), "POST", "/wp-login.php", 302, ""),
				webLogin(attacker, at(21*time.Second), "GET", "/wp-admin/", 200, ""),
			}
		}, "", 0, ""},
		{"a user mistypes twice", func() []event.Event {
			return []event.Event{
				webLogin(attacker, at(0), "POST", "/login", 200, ""),
				webLogin(attacker, at(6*time.Second), "POST", "/login", 401, ""),
				webLogin(attacker, at(12*time.Second), "POST", "/login", 302, ""),
				webLogin(attacker, at(13*time.Second), "GET", "/private/", 401, ""),
				webLogin(attacker, at(20*time.Second), "GET", "/private/", 401, "alice"),
				webLogin(attacker, at(25*time.Second), "GET", "/private/", 401, "alice"),
				webLogin(attacker, at(30*time.Second), "GET", "/private/", 200, "alice"),
			}
		}, "", 0, ""},
		{"GETs of login pages and browser challenges never count", func() (evs []event.Event) {
			for i := range 40 {
				ts := at(time.Duration(i) * time.Second)
				evs = append(evs, httpReq(attacker, ts, "GET", "/login", 200, ""), httpReq(attacker, ts, "GET", "/wp-login.php", 401, ""),
					httpReq(attacker, ts, "POST", fmt.Sprintf("/api/items/%d", i), 403, ""),
					httpReq(attacker, ts, "POST", "/administrator/index.php?option=com_content&task=save", 200, ""),
					httpReq(attacker, ts, "POST", "/admin/posts/edit", 200, ""))
			}
			return evs
		}, "", 0, ""},
		{"other error log lines do not count", func() (evs []event.Event) {
			for i := range 20 {
				ev := authFailure(attacker, at(time.Duration(i)*time.Second), "/private/", "")
				ev.Detail = logparse.DetailAuthMissing
				evs = append(evs, ev)
			}
			return evs
		}, "", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := stuffing(t, c.evs())
			if c.title == "" {
				if in != nil {
					t.Fatalf("raised %q: %s", in.Title, in.Summary)
				}
				return
			}
			if in == nil {
				t.Fatal("nothing raised")
			}
			if in.Title != c.title || in.Count != c.count || in.Summary != c.summary {
				t.Fatalf("got %q, count %d, %q\nwant %q, count %d, %q", in.Title, in.Count, in.Summary, c.title, c.count, c.summary)
			}
		})
	}
}

func TestHTTPLoginBruteForceEvidence(t *testing.T) {
	var evs []event.Event
	for i := range 12 {
		evs = append(evs, webLogin(attacker, at(time.Duration(i)*time.Second), "GET", "/admin/", 401, fmt.Sprintf("u%d\x1b[31m", i)))
	}
	in := stuffing(t, evs)
	if in == nil {
		t.Fatal("nothing raised")
	}
	ev := in.Evidence
	if len(ev.Users) != 12 || !strings.HasPrefix(ev.Users[0], "u0") || len(ev.Paths) != 1 || len(ev.Statuses) != 1 ||
		ev.Statuses[0] != 401 || len(ev.Methods) != 1 || ev.Methods[0] != "GET" {
		t.Fatalf("evidence %+v", ev)
	}
	for _, u := range ev.Users {
		if incident.CleanText(u, incident.MaxEvidenceString) != u {
			t.Fatalf("user %q not clean", u)
		}
	}
	if in.Severity != incident.Critical {
		// 12 failures are twice the threshold of 6: one step up.
		t.Fatalf("severity %s", in.Severity)
	}
}

func TestMatchLoginPath(t *testing.T) {
	pats := lowerAll(defaultLoginPaths())
	for _, c := range []struct {
		path, query string
		want        bool
	}{
		{"/login", "", true},
		{"/user/login/", "", true},
		{"/Account/Login.aspx", "ReturnUrl=%2f", true},
		{"/login.php", "", true},
		{"/api/v1/auth", "", true},
		{"/oauth", "", false},
		{"/index.php", "route=account/login", true},
		{"/index.php", "route=product/search", false},
		{"/administrator/index.php", "", true},
		{"/administrator/index.php", "option=com_content", false},
		{"/admin", "", true},
		{"/admin/posts/edit", "", false},
		{"/+CSCOE+/logon.html", "", true},
		{"/owa/auth.owa", "", true},
		{"/j_security_check", "", true},
		{"/blog/2026/03/login-tips-for-you", "", false},
		{"/", "", false},
	} {
		if got := matchLoginPath(c.path, c.query, pats); got != c.want {
			t.Errorf("%s?%s: %v, want %v", c.path, c.query, got, c.want)
		}
	}
}
