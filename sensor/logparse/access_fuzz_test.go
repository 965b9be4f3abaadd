package logparse

import (
	"strings"
	"testing"

	"github.com/attackmap/attackmap/incident"
)

// FuzzAccessRequest builds an access line around a fuzzed user, request
// line and user agent and checks that the parser gives them back: the
// request splits into method, path, query and version that rebuild it
// (or stays whole as the path when it is not HTTP), and user and user
// agent come back cleaned and capped.
func FuzzAccessRequest(f *testing.F) {
	for _, s := range []struct{ user, req, ua string }{
		{"-", "GET /index.html HTTP/1.1", "Mozilla/5.0"},
		{`"jeff"`, "GET /secret-base HTTP/1.1", "EvilAgent/2.0"},
		{"admin", "GET /wp-admin.php HTTP/1", "-"},
		{"-", "CONNECT www.google.com:443 HTTP/1.1", "-"},
		{"-", "GET http://example.com/?q=1 HTTP/1.0", "curl/8.5.0"},
		{"-", `\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03`, "-"},
		{"-", "GET /a b c?x=1&y=2 HTTP/2.0", "sqlmap/1.7#stable (https://sqlmap.org)"},
		{"a b", "POST /wp-login.php HTTP/1.1", "${jndi:ldap://x/a}"},
	} {
		f.Add(s.user, s.req, s.ua)
	}
	p := NewAccess(testOpts())
	f.Fuzz(func(t *testing.T, user, req, ua string) {
		line := "203.0.113.7 - " + user + " [22/Mar/2026:14:32:01 +0000] \"" + req + "\" 404 12 \"-\" \"" + ua + "\""
		ev, ok := p.Line(line)
		for _, s := range []struct {
			name, v string
			max     int
		}{{"user", ev.User, MaxUser}, {"version", ev.HTTPVersion, MaxHTTPVersion}, {"path", ev.Path, MaxPath},
			{"query", ev.Query, MaxQuery}, {"method", ev.Method, MaxMethod}, {"ua", ev.UA, MaxUA}} {
			if incident.CleanText(s.v, s.max) != s.v {
				t.Fatalf("%s not clean or over %d bytes: %q", s.name, s.max, s.v)
			}
		}
		// Beyond this point only inputs the parser must read back exactly:
		// printable ASCII without quotes or escapes, within the caps.
		plain := func(s string, max int) bool {
			return len(s) <= max && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e || r == '"' || r == '\\' })
		}
		if !plain(user, MaxUser) || strings.Contains(user, "[") || !plain(req, MaxPath) || !plain(ua, MaxUA) ||
			req == "" || ua == "" {
			return
		}
		if !ok {
			t.Fatalf("did not parse %q", line)
		}
		wantUser := user
		if len(wantUser) >= 2 && wantUser[0] == '"' && wantUser[len(wantUser)-1] == '"' {
			wantUser = wantUser[1 : len(wantUser)-1]
		}
		if wantUser == "-" {
			wantUser = ""
		}
		if ev.User != wantUser {
			t.Fatalf("user %q, want %q", ev.User, wantUser)
		}
		if want := ua; ua == "-" && ev.UA != "" || ua != "-" && ev.UA != want {
			t.Fatalf("ua %q, want %q", ev.UA, want)
		}
		if ev.Method == "" {
			if ev.Path != req || ev.Query != "" || ev.HTTPVersion != "" {
				t.Fatalf("non-HTTP request %q: got path %q query %q version %q", req, ev.Path, ev.Query, ev.HTTPVersion)
			}
			return
		}
		if len(ev.HTTPVersion) == MaxHTTPVersion || len(ev.Method) == MaxMethod {
			return // capped: cannot rebuild
		}
		if !strings.HasPrefix(req, ev.Method+" ") || !strings.HasSuffix(req, " "+ev.HTTPVersion) {
			t.Fatalf("request %q: method %q, version %q", req, ev.Method, ev.HTTPVersion)
		}
		target := req[len(ev.Method)+1 : len(req)-len(ev.HTTPVersion)-1]
		if path, query, _ := strings.Cut(target, "?"); ev.Path != path || ev.Query != query {
			t.Fatalf("request %q: path %q query %q, want %q %q", req, ev.Path, ev.Query, path, query)
		}
	})
}
