package logparse

import (
	"testing"
	"time"

	"github.com/attackmap/attackmap/sensor/event"
)

// errWant is the part of an http_error event a table test checks.
type errWant struct {
	detail, ip              string
	port                    uint16
	method, path, query     string
	user, vhost, ts, source string
}

func TestErrorLogLines(t *testing.T) {
	const ts = "2026-03-22T14:32:01Z"
	cases := []struct {
		name, line string
		want       *errWant // nil: ignored
	}{
		// nginx
		{"nginx forbidden by rule", `2026/03/22 14:32:01 [error] 1234#1234: *56 access forbidden by rule, client: 203.0.113.7, server: example.org, request: "GET /.git/config HTTP/1.1", host: "example.org"`,
			&errWant{detail: DetailForbiddenRule, ip: "203.0.113.7", method: "GET", path: "/.git/config", vhost: "example.org", ts: ts}},
		{"nginx open failed", `2026/03/22 14:32:01 [error] 1234#1234: *57 open() "/var/www/html/.env" failed (2: No such file or directory), client: 203.0.113.7, server: _, request: "GET /.env?x=1 HTTP/1.1", host: "198.51.100.9"`,
			&errWant{detail: DetailFileNotFound, ip: "203.0.113.7", method: "GET", path: "/.env", query: "x=1", vhost: "198.51.100.9", ts: ts}},
		{"nginx open failed without request", `2026/03/22 14:32:01 [error] 1234#1234: *57 open() "/var/www/html/wp-config.php.bak" failed (20: Not a directory), client: 203.0.113.7, server: _`,
			&errWant{detail: DetailFileNotFound, ip: "203.0.113.7", path: "/var/www/html/wp-config.php.bak", ts: ts}},
		{"nginx open permission denied", `2026/03/22 14:32:01 [crit] 1234#1234: *9 open() "/srv/site/.htpasswd" failed (13: Permission denied), client: 203.0.113.7, server: example.org, request: "GET /.htpasswd HTTP/1.1", host: "example.org"`,
			&errWant{detail: DetailDeniedByConfig, ip: "203.0.113.7", method: "GET", path: "/.htpasswd", vhost: "example.org", ts: ts}},
		{"nginx directory index", `2026/03/22 14:32:01 [error] 812#812: *3 directory index of "/var/www/html/backup/" is forbidden, client: 203.0.113.7, server: example.org, request: "GET /backup/ HTTP/1.1", host: "example.org"`,
			&errWant{detail: DetailDirIndexForbidden, ip: "203.0.113.7", method: "GET", path: "/backup/", vhost: "example.org", ts: ts}},
		{"nginx index not found", `2026/03/22 14:32:01 [error] 812#812: *3 "/var/www/html/admin/index.html" is not found (2: No such file or directory), client: 203.0.113.7, server: example.org, request: "GET /admin/ HTTP/1.1", host: "example.org"`,
			&errWant{detail: DetailFileNotFound, ip: "203.0.113.7", method: "GET", path: "/admin/", vhost: "example.org", ts: ts}},
		{"nginx limiting requests", `2026/03/22 14:32:01 [error] 812#812: *3 limiting requests, excess: 10.520 by zone "one", client: 203.0.113.7, server: example.org, request: "POST /wp-login.php HTTP/1.1", host: "example.org", referrer: "https://example.org/wp-login.php"`,
			&errWant{detail: DetailRateLimited, ip: "203.0.113.7", method: "POST", path: "/wp-login.php", vhost: "example.org", ts: ts}},
		{"nginx limiting connections", `2026/03/22 14:32:01 [error] 812#812: *3 limiting connections by zone "addr", client: 203.0.113.7, server: example.org, request: "GET / HTTP/1.1", host: "example.org"`,
			&errWant{detail: DetailRateLimited, ip: "203.0.113.7", method: "GET", path: "/", vhost: "example.org", ts: ts}},
		{"nginx invalid method", `2026/03/22 14:32:01 [info] 812#812: *3 client sent invalid method while reading client request line, client: 203.0.113.7, server: _, request: "\x16\x03\x01\x00\xF7\x01"`,
			&errWant{detail: DetailInvalidMethod, ip: "203.0.113.7", path: `\x16\x03\x01\x00\xF7\x01`, ts: ts}},
		{"nginx invalid request", `2026/03/22 14:32:01 [info] 812#812: *3 client sent invalid request while reading client request line, client: 203.0.113.7, server: example.org, request: "GET /a b HTTP/1.1"`,
			&errWant{detail: DetailBadRequest, ip: "203.0.113.7", method: "GET", path: "/a b", vhost: "example.org", ts: ts}},
		{"nginx basic auth user not found", `2026/03/22 14:32:01 [error] 812#812: *3 user "admin" was not found in "/etc/nginx/.htpasswd", client: 203.0.113.7, server: example.org, request: "GET /private/ HTTP/1.1", host: "example.org"`,
			&errWant{detail: DetailAuthFailure, ip: "203.0.113.7", method: "GET", path: "/private/", user: "admin", vhost: "example.org", ts: ts}},
		{"nginx basic auth password mismatch", `2026/03/22 14:32:01 [error] 812#812: *3 user "x y": password mismatch, client: 203.0.113.7, server: example.org, request: "GET /private/ HTTP/1.1", host: "example.org"`,
			&errWant{detail: DetailAuthFailure, ip: "203.0.113.7", method: "GET", path: "/private/", user: "x y", vhost: "example.org", ts: ts}},
		{"nginx basic auth missing", `2026/03/22 14:32:01 [error] 812#812: *3 no user/password was provided for basic authentication, client: 203.0.113.7, server: example.org, request: "GET /private/ HTTP/1.1", host: "example.org"`,
			&errWant{detail: DetailAuthMissing, ip: "203.0.113.7", method: "GET", path: "/private/", vhost: "example.org", ts: ts}},
		{"nginx primary script unknown", `2026/03/22 14:32:01 [error] 812#812: *3 FastCGI sent in stderr: "Primary script unknown" while reading response header from upstream, client: 203.0.113.7, server: example.org, request: "GET /shell.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.org"`,
			&errWant{detail: DetailFileNotFound, ip: "203.0.113.7", method: "GET", path: "/shell.php", vhost: "example.org", ts: ts}},
		{"nginx ipv6 client", `2026/03/22 14:32:01 [error] 812#812: *3 access forbidden by rule, client: 2001:db8::1, server: example.org, request: "GET /.env HTTP/1.1", host: "[2001:db8::2]"`,
			&errWant{detail: DetailForbiddenRule, ip: "2001:db8::1", method: "GET", path: "/.env", vhost: "[2001:db8::2]", ts: ts}},
		{"nginx CRLF", "2026/03/22 14:32:01 [error] 812#812: *3 access forbidden by rule, client: 203.0.113.7, server: example.org, request: \"GET /.env HTTP/1.1\", host: \"example.org\"\r",
			&errWant{detail: DetailForbiddenRule, ip: "203.0.113.7", method: "GET", path: "/.env", vhost: "example.org", ts: ts}},
		{"nginx inside syslog", `Mar 22 14:32:05 web-1 nginx: 2026/03/22 14:32:01 [error] 812#812: *3 access forbidden by rule, client: 203.0.113.7, server: example.org, request: "GET /.git/HEAD HTTP/1.1", host: "example.org"`,
			&errWant{detail: DetailForbiddenRule, ip: "203.0.113.7", method: "GET", path: "/.git/HEAD", vhost: "example.org", ts: ts}},
		{"nginx quote in request", `2026/03/22 14:32:01 [error] 812#812: *3 access forbidden by rule, client: 203.0.113.7, server: example.org, request: "GET /a"b HTTP/1.1", host: "example.org"`,
			&errWant{detail: DetailForbiddenRule, ip: "203.0.113.7", method: "GET", path: `/a"b`, vhost: "example.org", ts: ts}},
		{"nginx address in request is not the client", `2026/03/22 14:32:01 [error] 812#812: *3 access forbidden by rule, client: 203.0.113.7, server: example.org, request: "GET /?client:%201.2.3.4 HTTP/1.1", host: "1.2.3.4", referrer: "http://1.2.3.4/"`,
			&errWant{detail: DetailForbiddenRule, ip: "203.0.113.7", method: "GET", path: "/", query: "client:%201.2.3.4", vhost: "1.2.3.4", ts: ts}},
		// A decoded path or user that carries ", client: A" is ambiguous:
		// ignored rather than pinned on someone else.
		{"nginx fake client in path", `2026/03/22 14:32:01 [error] 812#812: *3 open() "/var/www/x, client: 192.0.2.1, server: a" failed (2: No such file or directory), client: 203.0.113.7, server: example.org, request: "GET /x,%20client:%20192.0.2.1,%20server:%20a HTTP/1.1", host: "example.org"`, nil},
		{"nginx fake client in user", `2026/03/22 14:32:01 [error] 812#812: *3 user "a, client: 192.0.2.1, server: x": password mismatch, client: 203.0.113.7, server: example.org, request: "GET / HTTP/1.1"`, nil},
		{"nginx fake client in referrer", `2026/03/22 14:32:01 [error] 812#812: *3 access forbidden by rule, client: 203.0.113.7, server: example.org, request: "GET / HTTP/1.1", host: "example.org", referrer: "x", client: 192.0.2.1, server: y"`, nil},
		{"nginx upstream timed out", `2026/03/22 14:32:01 [error] 812#812: *56 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 203.0.113.7, server: example.org, request: "GET /api HTTP/1.1", upstream: "http://127.0.0.1:8080/api", host: "example.org"`, nil},
		{"nginx php notice", `2026/03/22 14:32:01 [error] 812#812: *3 FastCGI sent in stderr: "PHP message: PHP Warning:  Undefined variable $x in /var/www/index.php on line 3" while reading response header from upstream, client: 203.0.113.7, server: example.org, request: "GET / HTTP/1.1"`, nil},
		{"nginx tls handshake", `2026/03/22 14:32:01 [crit] 812#812: *3 SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking, client: 203.0.113.7, server: 0.0.0.0:443`, nil},
		{"nginx plain http to https", `2026/03/22 14:32:01 [info] 812#812: *3 client sent plain HTTP request to HTTPS port while reading client request headers, client: 203.0.113.7, server: example.org, request: "GET / HTTP/1.1"`, nil},
		{"nginx no client", `2026/03/22 14:32:01 [notice] 812#812: signal process started`, nil},
		{"nginx unix client", `2026/03/22 14:32:01 [error] 812#812: *3 access forbidden by rule, client: unix:, server: example.org`, nil},
		{"nginx enoent of another errno", `2026/03/22 14:32:01 [crit] 812#812: *3 open() "/var/www/x" failed (24: Too many open files), client: 203.0.113.7, server: example.org`, nil},
		// Apache 2.4
		{"apache invalid uri", `[Sun Mar 22 14:32:01.123456 2026] [core:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH00126: Invalid URI in request GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1`,
			&errWant{detail: DetailInvalidURI, ip: "203.0.113.7", port: 54321, method: "GET", path: "/%2e%2e/%2e%2e/etc/passwd", ts: "2026-03-22T14:32:01.123456Z"}},
		{"apache invalid method", `[Sun Mar 22 14:32:01.123456 2026] [core:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH00135: Invalid method in request \x16\x03\x01`,
			&errWant{detail: DetailInvalidMethod, ip: "203.0.113.7", port: 54321, path: `\x16\x03\x01`, ts: "2026-03-22T14:32:01.123456Z"}},
		{"apache denied by configuration", `[Sun Mar 22 14:32:01 2026] [authz_core:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH01630: client denied by server configuration: /var/www/html/.git`,
			&errWant{detail: DetailDeniedByConfig, ip: "203.0.113.7", port: 54321, path: "/var/www/html/.git", ts: ts}},
		{"apache denied without path", `[Sun Mar 22 14:32:01 2026] [access_compat:error] [pid 1234] [client 203.0.113.7:54321] AH01797: client denied by server configuration: /srv/www/server-status, referer: http://1.2.3.4/`,
			&errWant{detail: DetailDeniedByConfig, ip: "203.0.113.7", port: 54321, path: "/srv/www/server-status", ts: ts}},
		{"apache cannot serve directory", `[Sun Mar 22 14:32:01.000001 2026] [autoindex:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH01276: Cannot serve directory /var/www/html/: No matching DirectoryIndex (index.html) found, and server-generated directory index forbidden by Options directive`,
			&errWant{detail: DetailDirIndexForbidden, ip: "203.0.113.7", port: 54321, path: "/var/www/html/", ts: "2026-03-22T14:32:01.000001Z"}},
		{"apache file does not exist", `[Sun Mar 22 14:32:01 2026] [core:info] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH00128: File does not exist: /var/www/html/.env`,
			&errWant{detail: DetailFileNotFound, ip: "203.0.113.7", port: 54321, path: "/var/www/html/.env", ts: ts}},
		{"apache password mismatch", `[Sun Mar 22 14:32:01 2026] [auth_basic:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH01617: user admin: authentication failure for "/admin": Password Mismatch`,
			&errWant{detail: DetailAuthFailure, ip: "203.0.113.7", port: 54321, path: "/admin", user: "admin", ts: ts}},
		{"apache user not found", `[Sun Mar 22 14:32:01 2026] [auth_basic:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH01618: user root not found: /admin`,
			&errWant{detail: DetailAuthFailure, ip: "203.0.113.7", port: 54321, path: "/admin", user: "root", ts: ts}},
		{"apache invalid uri path", `[Sun Mar 22 14:32:01 2026] [core:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH10244: invalid URI path (/cgi-bin/.%2e/.%2e/bin/sh)`,
			&errWant{detail: DetailInvalidURI, ip: "203.0.113.7", port: 54321, path: "/cgi-bin/.%2e/.%2e/bin/sh", ts: ts}},
		{"apache script not found", `[Sun Mar 22 14:32:01 2026] [cgi:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH02811: script not found or unable to stat: /usr/lib/cgi-bin/luci`,
			&errWant{detail: DetailFileNotFound, ip: "203.0.113.7", port: 54321, path: "/usr/lib/cgi-bin/luci", ts: ts}},
		{"apache ipv6 client", `[Sun Mar 22 14:32:01 2026] [core:info] [pid 1234:tid 5678] [client 2001:db8::1:54321] AH00128: File does not exist: /var/www/html/.env`,
			&errWant{detail: DetailFileNotFound, ip: "2001:db8::1", port: 54321, path: "/var/www/html/.env", ts: ts}},
		{"apache bracketed ipv6 client", `[Sun Mar 22 14:32:01 2026] [core:info] [pid 1234:tid 5678] [client [2001:db8::1]:54321] AH00128: File does not exist: /var/www/html/.env`,
			&errWant{detail: DetailFileNotFound, ip: "2001:db8::1", port: 54321, path: "/var/www/html/.env", ts: ts}},
		{"apache status before client", `[Sun Mar 22 14:32:01 2026] [core:error] [pid 1234:tid 5678] (13)Permission denied: [client 203.0.113.7:54321] AH00035: access to /secret/ denied (filesystem path '/srv/secret') because search permissions are missing on a component of the path`,
			&errWant{detail: DetailDeniedByConfig, ip: "203.0.113.7", port: 54321, path: "/secret/", ts: ts}},
		{"apache iso stamp CRLF", "[2026-03-22 14:32:01.250000] [core:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH00126: Invalid URI in request GET /..%2f..%2fetc/passwd?a=b HTTP/1.1\r",
			&errWant{detail: DetailInvalidURI, ip: "203.0.113.7", port: 54321, method: "GET", path: "/..%2f..%2fetc/passwd", query: "a=b", ts: "2026-03-22T14:32:01.25Z"}},
		{"apache inside syslog", `Mar 22 14:32:01 web-1 apache2[1234]: [core:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH00126: Invalid URI in request GET /%2e%2e/ HTTP/1.1`,
			&errWant{detail: DetailInvalidURI, ip: "203.0.113.7", port: 54321, method: "GET", path: "/%2e%2e/", ts: ts}},
		{"apache address in message is not the client", `[Sun Mar 22 14:32:01 2026] [core:info] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH00128: File does not exist: /var/www/[client 192.0.2.1:1] x`,
			&errWant{detail: DetailFileNotFound, ip: "203.0.113.7", port: 54321, path: "/var/www/[client 192.0.2.1:1] x", ts: ts}},
		{"apache php message", `[Sun Mar 22 14:32:01 2026] [proxy_fcgi:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH01071: Got error 'PHP message: PHP Warning:  Undefined array key "x" in /var/www/index.php on line 7'`, nil},
		{"apache remote is a back-end", `[Sun Mar 22 14:32:01 2026] [proxy:error] [pid 1234:tid 5678] [remote 10.0.0.5:8080] AH00128: File does not exist: /x`, nil},
		{"apache no client", `[Sun Mar 22 14:32:01 2026] [mpm_event:notice] [pid 1234:tid 5678] AH00489: Apache/2.4.62 (Debian) configured -- resuming normal operations`, nil},
		{"apache client not in header", `[Sun Mar 22 14:32:01 2026] [core:error] [pid 1234:tid 5678] AH00128: File does not exist: [client 192.0.2.1:1] /x`, nil},
		// Apache 2.2
		{"apache 2.2 file does not exist", `[Sun Mar 22 14:32:01 2026] [error] [client 203.0.113.7] File does not exist: /var/www/.env`,
			&errWant{detail: DetailFileNotFound, ip: "203.0.113.7", path: "/var/www/.env", ts: ts}},
		{"apache 2.2 ipv6 client", `[Sun Mar 22 14:32:01 2026] [error] [client 2001:db8::1] client denied by server configuration: /var/www/.git`,
			&errWant{detail: DetailDeniedByConfig, ip: "2001:db8::1", path: "/var/www/.git", ts: ts}},
		// Not error lines
		{"access line", `203.0.113.7 - - [22/Mar/2026:14:32:01 +0000] "GET /.env HTTP/1.1" 404 153 "-" "x"`, nil},
		{"sshd line", `Mar 22 14:32:01 web-1 sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2`, nil},
		{"other program in syslog", `Mar 22 14:32:01 web-1 myapp: 2026/03/22 14:32:01 [error] 812#812: *3 access forbidden by rule, client: 203.0.113.7, server: x`, nil},
		{"empty", ``, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, ok := NewErrorLog(testOpts()).Line(c.line)
			if c.want == nil {
				if ok {
					t.Fatalf("want ignored, got %+v", ev)
				}
				return
			}
			if !ok {
				t.Fatal("ignored")
			}
			checkErrorEvent(t, ev, *c.want)
		})
	}
}

func checkErrorEvent(t *testing.T, ev event.Event, w errWant) {
	t.Helper()
	if w.source == "" {
		w.source = event.SourceErrorLog
	}
	got := errWant{detail: ev.Detail, ip: ev.SrcIP.String(), port: ev.SrcPort, method: ev.Method, path: ev.Path,
		query: ev.Query, user: ev.User, vhost: ev.Vhost, ts: ev.TS.Format(time.RFC3339Nano), source: ev.Source}
	if got != w || ev.Kind != event.KindHTTPError {
		t.Fatalf("got  %+v (kind %q)\nwant %+v", got, ev.Kind, w)
	}
}

func TestErrorLogStampsTakeTheConfiguredZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no zoneinfo for Europe/Berlin")
	}
	p := NewErrorLog(Options{Location: berlin})
	for _, l := range []string{
		`2026/03/22 14:32:01 [error] 1#1: *1 access forbidden by rule, client: 203.0.113.7, server: x`,
		`[Sun Mar 22 14:32:01 2026] [authz_core:error] [pid 1] [client 203.0.113.7:1] AH01630: client denied by server configuration: /x`,
	} {
		ev, ok := p.Line(l)
		if !ok || ev.TS.Format(time.RFC3339) != "2026-03-22T13:32:01Z" {
			t.Fatalf("%q: ok %v ts %v", l, ok, ev.TS)
		}
	}
}

func TestErrorLogJournalMessage(t *testing.T) {
	// What journald.Entry.Header gives for nginx logging to stderr under
	// systemd (the journal's own stamp is a few ms later).
	h := Header{TS: time.Date(2026, 3, 22, 14, 32, 1, 900e6, time.UTC), Prog: "nginx", PID: 812, Source: event.SourceJournald,
		Msg: `2026/03/22 14:32:01 [error] 812#812: *3 user "admin": password mismatch, client: 203.0.113.7, server: example.org, request: "GET /private/ HTTP/1.1", host: "example.org"`}
	ev, ok := NewErrorLog(testOpts()).Message(h)
	if !ok {
		t.Fatal("ignored")
	}
	checkErrorEvent(t, ev, errWant{detail: DetailAuthFailure, ip: "203.0.113.7", method: "GET", path: "/private/",
		user: "admin", vhost: "example.org", ts: "2026-03-22T14:32:01Z", source: event.SourceJournald})

	// Apache logging to syslog writes no stamp of its own.
	h.Prog, h.Msg = "apache2", `[core:error] [pid 1234:tid 5678] [client 203.0.113.7:54321] AH00126: Invalid URI in request GET /%2e%2e/ HTTP/1.1`
	ev, ok = NewErrorLog(testOpts()).Message(h)
	if !ok {
		t.Fatal("apache without stamp ignored")
	}
	checkErrorEvent(t, ev, errWant{detail: DetailInvalidURI, ip: "203.0.113.7", port: 54321, method: "GET", path: "/%2e%2e/",
		ts: "2026-03-22T14:32:01.9Z", source: event.SourceJournald})

	h.Prog = "sshd"
	if ev, ok := NewErrorLog(testOpts()).Message(h); ok {
		t.Fatalf("another program's message parsed: %+v", ev)
	}
}

func TestErrorLogCapsAttackerText(t *testing.T) {
	long := make([]byte, 1500)
	for i := range long {
		long[i] = 'a'
	}
	l := `2026/03/22 14:32:01 [error] 1#1: *1 user "` + string(long) + "\x1b[31m" + `": password mismatch, client: 203.0.113.7, server: x, request: "GET /` + string(long) + `?` + string(long) + ` HTTP/1.1", host: "` + string(long) + `"`
	ev, ok := NewErrorLog(testOpts()).Line(l)
	if !ok {
		t.Fatal("ignored")
	}
	if len(ev.User) > MaxUser || len(ev.Path) > MaxPath || len(ev.Query) > MaxQuery || len(ev.Vhost) > MaxVhost {
		t.Fatalf("not capped: user %d path %d query %d vhost %d", len(ev.User), len(ev.Path), len(ev.Query), len(ev.Vhost))
	}
	checkEvent(t, NewErrorLog(testOpts()), l)
}

func BenchmarkErrorLogLine(b *testing.B) {
	p := NewErrorLog(testOpts())
	l := `2026/03/22 14:32:01 [error] 1234#1234: *56 open() "/var/www/html/.env" failed (2: No such file or directory), client: 203.0.113.7, server: example.org, request: "GET /.env HTTP/1.1", host: "example.org"`
	for b.Loop() {
		if _, ok := p.Line(l); !ok {
			b.Fatal("ignored")
		}
	}
}
