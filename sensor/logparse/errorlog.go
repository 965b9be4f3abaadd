package logparse

import (
	"net/netip"
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

// Detail values of http_error events (event.Event.Detail): what the web
// server refused.
const (
	// DetailInvalidURI: Apache "AH00126: Invalid URI in request ...",
	// "AH10244: invalid URI path (...)".
	DetailInvalidURI = "invalid_uri"
	// DetailInvalidMethod: nginx "client sent invalid method", Apache
	// "AH00135: Invalid method in request ..." (TLS or binary bytes sent
	// to a plain HTTP port, protocol probes).
	DetailInvalidMethod = "invalid_method"
	// DetailBadRequest: other malformed requests (nginx "client sent
	// invalid request/version/header line/host header", "client sent too
	// long URI", Apache "request failed: ...").
	DetailBadRequest = "bad_request"
	// DetailForbiddenRule: nginx "access forbidden by rule" (deny in the
	// configuration).
	DetailForbiddenRule = "forbidden_rule"
	// DetailDeniedByConfig: Apache "client denied by server
	// configuration" (AH01630, AH01797), file permissions and symlink
	// refusals, nginx open() or index "(13: Permission denied)".
	DetailDeniedByConfig = "denied_by_config"
	// DetailDirIndexForbidden: nginx "directory index of ... is
	// forbidden", Apache "AH01276: Cannot serve directory ...".
	DetailDirIndexForbidden = "dir_index_forbidden"
	// DetailFileNotFound: nginx open() "(2: No such file or directory)",
	// "... is not found", FastCGI "Primary script unknown"; Apache
	// "AH00128: File does not exist", "script not found or unable to
	// stat", "Got error 'Primary script unknown'".
	DetailFileNotFound = "file_not_found"
	// DetailRateLimited: nginx "limiting requests" / "limiting
	// connections" (limit_req, limit_conn rejected the request).
	DetailRateLimited = "rate_limited"
	// DetailAuthFailure: a failed HTTP basic authentication: nginx
	// `user "X" was not found in "F"`, `user "X": password mismatch`,
	// Apache "AH01617: user X: authentication failure for ...",
	// "AH01618: user X not found: ...". User is set.
	DetailAuthFailure = "auth_failure"
	// DetailAuthMissing: nginx "no user/password was provided for basic
	// authentication". Every browser's first request to a protected page
	// gets this challenge, so it is not hostile on its own; detectors
	// should not count it as a failed login.
	DetailAuthMissing = "auth_missing"
)

// maxErrorLine bounds the work on one error log line. nginx caps its
// error lines at 2 KiB (NGX_MAX_ERROR_STR) and Apache at 8 KiB
// (MAX_STRING_LEN); a longer line is not one of theirs.
const maxErrorLine = 16 << 10

// ErrorLog parses nginx and Apache (2.2 and 2.4) error log lines that name
// a client into http_error events: bare lines as the servers write them,
// lines inside syslog (`... nginx: 2026/03/22 14:32:01 [error] ...`,
// Apache's `ErrorLog syslog:`) and journal messages. Lines about no client
// (start-up notices, upstream trouble without a client) and lines that are
// not hostile (PHP notices, timeouts, TLS handshake failures, clients that
// went away) are ignored.
//
// The address is only ever the one the server writes: nginx's ", client: A"
// (the message before it and the request, host and referrer after it
// carry attacker text, so a line naming two different clients there is
// ambiguous and ignored: the access log still has the request), and
// Apache's "[client A:port]" in the header before the message.
type ErrorLog struct {
	st stamper
}

// NewErrorLog returns an error log parser (source event.SourceErrorLog).
// Stamps carry no zone (both servers write local time): they are read in
// Options.Location.
func NewErrorLog(o Options) *ErrorLog { return &ErrorLog{st: newStamper(o)} }

// Line parses one error log line, bare or inside syslog.
func (p *ErrorLog) Line(line string) (event.Event, bool) {
	if len(line) > maxErrorLine {
		return event.Event{}, false
	}
	line = strings.TrimSuffix(line, "\r")
	if ev, ok := p.parse(line, time.Time{}); ok {
		return ev, true
	}
	if h, ok := p.st.ParseHeader(line); ok {
		return p.Message(h)
	}
	return event.Event{}, false
}

// Message parses an error log line logged through syslog or the journal.
// Messages of programs that are not web servers are ignored, so that a
// message another program logs cannot pass for one.
func (p *ErrorLog) Message(h Header) (event.Event, bool) {
	if h.Prog != "" && !isWebServer(h.Prog) || len(h.Msg) > maxErrorLine {
		return event.Event{}, false
	}
	ev, ok := p.parse(strings.TrimSuffix(h.Msg, "\r"), h.TS)
	if !ok {
		return ev, false
	}
	if h.Source != "" {
		ev.Source = h.Source
	}
	return ev, true
}

// isWebServer reports whether a syslog tag or journal identifier names
// nginx (and its forks) or Apache httpd.
func isWebServer(prog string) bool {
	for _, w := range [...]string{"nginx", "apache", "httpd", "openresty", "angie"} {
		if containsLower(prog, w) {
			return true
		}
	}
	return false
}

// containsLower reports whether s contains the lower-case ASCII word w,
// ignoring case.
func containsLower(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		j := 0
		for ; j < len(w); j++ {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != w[j] {
				break
			}
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

// parse reads a bare error line; ts is the time to use when the line has
// no stamp of its own (Apache logging to syslog).
func (p *ErrorLog) parse(l string, ts time.Time) (event.Event, bool) {
	rest := l
	if t, n, ok := p.nginxStamp(rest); ok {
		ts, rest = t, rest[n:]
	} else if t, n, ok := p.apacheStamp(rest); ok {
		ts, rest = t, rest[n:]
	}
	if ts.IsZero() || len(rest) == 0 || rest[0] != '[' {
		return event.Event{}, false
	}
	var ev event.Event
	var ok bool
	if body, isNginx := nginxHeader(rest); isNginx {
		ev, ok = parseNginxError(body)
	} else {
		ev, ok = parseApacheError(rest)
	}
	if !ok {
		return ev, false
	}
	ev.TS = ts.UTC()
	ev.Kind = event.KindHTTPError
	ev.Source = event.SourceErrorLog
	return ev, true
}

// nginxStamp parses "2026/03/22 14:32:01 " (local time).
func (p *ErrorLog) nginxStamp(l string) (time.Time, int, bool) {
	if len(l) < 20 || l[4] != '/' || l[7] != '/' || l[10] != ' ' || l[13] != ':' || l[16] != ':' || l[19] != ' ' {
		return time.Time{}, 0, false
	}
	y, mo, d, hh, mm, ss, ok := dateTimeAt(l)
	if !ok {
		return time.Time{}, 0, false
	}
	return time.Date(y, time.Month(mo), d, hh, mm, ss, 0, p.st.opts.Location), 20, true
}

// apacheStamp parses "[Sun Mar 22 14:32:01.123456 2026] " (ctime, with or
// without microseconds, day zero- or space-padded) and the ISO form of
// ErrorLogFormat's %{cu}t, "[2026-03-22 14:32:01.123456] ", in local time.
func (p *ErrorLog) apacheStamp(l string) (time.Time, int, bool) {
	end := indexByteN(l, ']', 40)
	if len(l) < 2 || l[0] != '[' || end < 0 || end+1 >= len(l) || l[end+1] != ' ' {
		return time.Time{}, 0, false
	}
	s := l[1:end]
	if t, n, ok := ParseISO(s, p.st.opts.Location); ok && n == len(s) {
		return t, end + 2, true
	}
	// "Sun Mar 22 14:32:01[.123456] 2026"
	if len(s) < 24 || s[3] != ' ' || s[7] != ' ' {
		return time.Time{}, 0, false
	}
	mon := monthOf(s[4:7])
	i := 8
	if s[i] == ' ' {
		i++
	}
	day, n := digitsAt(s, i, 2)
	i += n
	if mon == 0 || n == 0 || day < 1 || day > 31 || i+9 > len(s) || s[i] != ' ' || s[i+3] != ':' || s[i+6] != ':' {
		return time.Time{}, 0, false
	}
	hh, n1 := digitsAt(s, i+1, 2)
	mm, n2 := digitsAt(s, i+4, 2)
	ss, n3 := digitsAt(s, i+7, 2)
	if n1 != 2 || n2 != 2 || n3 != 2 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, 0, false
	}
	i += 9
	nsec := 0
	if i < len(s) && s[i] == '.' {
		i++
		scale := 100000000
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && i-start < 9 {
			nsec += int(s[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == start {
			return time.Time{}, 0, false
		}
	}
	y, ny := digitsAt(s, i+1, 4)
	if i >= len(s) || s[i] != ' ' || ny != 4 || i+5 != len(s) {
		return time.Time{}, 0, false
	}
	return time.Date(y, mon, day, hh, mm, ss, nsec, p.st.opts.Location), end + 2, true
}

// nginxLevels are the levels nginx writes in brackets.
var nginxLevels = [...]string{"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}

// nginxHeader recognises "[level] PID#TID: [*CID ]" and returns the message
// after it.
func nginxHeader(l string) (string, bool) {
	end := indexByteN(l, ']', 8)
	if end < 0 {
		return "", false
	}
	level := l[1:end]
	known := false
	for _, lv := range nginxLevels {
		if level == lv {
			known = true
			break
		}
	}
	rest := l[end+1:]
	if !known || len(rest) < 2 || rest[0] != ' ' {
		return "", false
	}
	rest = rest[1:]
	_, n := digitsAt(rest, 0, 10)
	if n == 0 || n >= len(rest) || rest[n] != '#' {
		return "", false
	}
	rest = rest[n+1:]
	_, n = digitsAt(rest, 0, 20)
	if n == 0 || !strings.HasPrefix(rest[n:], ": ") {
		return "", false
	}
	rest = rest[n+2:]
	if len(rest) > 1 && rest[0] == '*' {
		_, n = digitsAt(rest, 1, 20)
		if n > 0 && n+1 < len(rest) && rest[n+1] == ' ' {
			rest = rest[n+2:]
		}
	}
	return rest, true
}

// nginxClientSep is what nginx writes before the client address
// (ngx_http_log_error).
const nginxClientSep = ", client: "

// parseNginxError reads "MESSAGE, client: A, server: S[, request: "R"]
// [, upstream: "U"][, host: "H"][, referrer: "F"]".
func parseNginxError(body string) (event.Event, bool) {
	var ev event.Event
	// Every well-formed ", client: A" names the same address, or the line
	// is ambiguous: attacker text (a decoded path or a basic-auth user in
	// the message, the request, host or referrer after it) can hold a
	// fake one, but never stop nginx writing the real one.
	msgEnd, tail := -1, ""
	for off := 0; ; {
		i := strings.Index(body[off:], nginxClientSep)
		if i < 0 {
			break
		}
		i += off
		off = i + len(nginxClientSep)
		a := body[off:]
		if j := strings.IndexByte(a, ','); j >= 0 {
			a = a[:j]
		}
		addr, ok := parseAddr(a)
		if !ok {
			continue
		}
		if msgEnd < 0 {
			msgEnd, tail, ev.SrcIP = i, body[off+len(a):], addr
		} else if addr != ev.SrcIP {
			return event.Event{}, false
		}
	}
	if msgEnd < 0 {
		return ev, false
	}
	msg := body[:msgEnd]
	var fsPath string
	switch {
	case strings.HasPrefix(msg, "access forbidden by rule"):
		ev.Detail = DetailForbiddenRule
	case strings.HasPrefix(msg, `directory index of "`):
		ev.Detail = DetailDirIndexForbidden
		fsPath, _, _ = strings.Cut(msg[len(`directory index of "`):], `" is forbidden`)
	case strings.HasPrefix(msg, `open() "`):
		// open() "PATH" failed (2: No such file or directory)
		r := msg[len(`open() "`):]
		i := strings.LastIndex(r, `" failed (`)
		if i < 0 {
			return ev, false
		}
		fsPath = r[:i]
		if ev.Detail = errnoDetail(r[i+len(`" failed (`):]); ev.Detail == "" {
			return ev, false
		}
	case len(msg) > 1 && msg[0] == '"':
		// The index module: "PATH/index.html" is not found (2: ...) or
		// is forbidden (13: ...).
		r := msg[1:]
		if i := strings.LastIndex(r, `" is not found (`); i >= 0 {
			fsPath, ev.Detail = r[:i], errnoDetail(r[i+len(`" is not found (`):])
		} else if i := strings.LastIndex(r, `" is forbidden (`); i >= 0 {
			fsPath, ev.Detail = r[:i], errnoDetail(r[i+len(`" is forbidden (`):])
		}
		if ev.Detail == "" {
			return ev, false
		}
	case strings.HasPrefix(msg, "limiting requests"), strings.HasPrefix(msg, "limiting connections"):
		ev.Detail = DetailRateLimited
	case strings.HasPrefix(msg, `user "`):
		r := msg[len(`user "`):]
		if u, ok := strings.CutSuffix(r, `": password mismatch`); ok {
			ev.User = u
		} else if u, _, ok := strings.Cut(r, `" was not found in "`); ok {
			ev.User = u
		} else {
			return ev, false
		}
		ev.Detail = DetailAuthFailure
	case strings.HasPrefix(msg, "no user/password was provided for basic authentication"):
		ev.Detail = DetailAuthMissing
	case strings.HasPrefix(msg, "client sent invalid method"):
		ev.Detail = DetailInvalidMethod
	case strings.HasPrefix(msg, "client sent plain HTTP request"):
		// A browser or monitor using http:// on an HTTPS port: a
		// mistake, not an attack.
		return ev, false
	case strings.HasPrefix(msg, "client sent "):
		ev.Detail = DetailBadRequest
	case strings.HasPrefix(msg, `FastCGI sent in stderr: "Primary script unknown`):
		ev.Detail = DetailFileNotFound
	default:
		return ev, false
	}
	var request, host, server string
	if r, ok := strings.CutPrefix(tail, ", server: "); ok {
		i := strings.Index(r, ", ")
		if i < 0 {
			i = len(r)
		}
		server, tail = r[:i], r[i:]
	}
	request = nginxField(tail, "request")
	host = nginxField(tail, "host")
	if host == "" && server != "_" {
		host = server
	}
	if host != "" {
		ev.Vhost = incident.CleanText(host, MaxVhost)
	}
	if ev.User != "" {
		ev.User = incident.CleanText(ev.User, MaxUser)
	}
	setRequest(&ev, request, fsPath)
	return ev, true
}

// nginxTailKeys are the quoted fields nginx writes after "server: S", in
// order (ngx_http_log_error_handler).
var nginxTailKeys = [...]string{"request", "subrequest", "upstream", "host", "referrer"}

// nginxField returns the quoted field key of the tail (`, key: "value"`).
// The value is attacker text and may itself hold quotes: it ends at the
// first quote followed by the end of the line or by another of nginx's
// fields.
func nginxField(tail, key string) string {
	open := ", " + key + `: "`
	i := strings.Index(tail, open)
	if i < 0 {
		return ""
	}
	v := tail[i+len(open):]
	for j := 0; j < len(v); j++ {
		if v[j] != '"' {
			continue
		}
		r := v[j+1:]
		if r == "" {
			return v[:j]
		}
		for _, k := range nginxTailKeys {
			if strings.HasPrefix(r, ", ") && strings.HasPrefix(r[2:], k) && strings.HasPrefix(r[2+len(k):], `: "`) {
				return v[:j]
			}
		}
	}
	return ""
}

// errnoDetail maps the "(N: text)" of a failed open() to a detail: not
// found or not a directory, and permission denied. Other errors (too many
// open files, I/O errors) are the server's trouble, not the client's.
func errnoDetail(s string) string {
	n, k := digitsAt(s, 0, 3)
	if k == 0 || k >= len(s) || s[k] != ':' {
		return ""
	}
	switch n {
	case 2, 20: // ENOENT, ENOTDIR
		return DetailFileNotFound
	case 13: // EACCES
		return DetailDeniedByConfig
	}
	return ""
}

// parseApacheError reads the rest of an Apache line after its stamp:
//
//	[core:error] [pid 1234:tid 5678] [(13)Permission denied: ][client A:P] MESSAGE[, referer: R]   (2.4)
//	[error] [client A] MESSAGE                                                                 (2.2)
func parseApacheError(rest string) (event.Event, bool) {
	var ev event.Event
	withPort := false
	for k := 0; len(rest) > 0 && rest[0] == '[' && !strings.HasPrefix(rest, "[client "); k++ {
		end := indexByteN(rest, ']', 80)
		if k == 4 || end < 0 || end+1 >= len(rest) || rest[end+1] != ' ' {
			return ev, false
		}
		field := rest[1:end]
		// 2.4 writes "[module:level]" and "[pid N:tid T]", and always a
		// port after the client address.
		if strings.IndexByte(field, ':') >= 0 || strings.HasPrefix(field, "pid ") {
			withPort = true
		}
		rest = rest[end+2:]
	}
	// Up to two "text: " parts the server writes before the client: the
	// source file at debug level, an APR status ("(13)Permission denied").
	for j := 0; j < 2 && len(rest) > 0 && rest[0] != '['; j++ {
		i := strings.Index(rest, ": ")
		if i < 0 || i > 256 || strings.IndexByte(rest[:i], '[') >= 0 {
			return ev, false
		}
		rest = rest[i+2:]
	}
	// "[remote A:P]" names a back-end, not a client.
	if !strings.HasPrefix(rest, "[client ") {
		return ev, false
	}
	rest = rest[len("[client "):]
	from := 0
	if len(rest) > 0 && rest[0] == '[' { // "[A]:port"
		from = max(0, indexByteN(rest, ']', 48)+1)
	}
	end := indexByteN(rest[from:], ']', 72) + from
	if end < from {
		return ev, false
	}
	if end+1 >= len(rest) || rest[end+1] != ' ' {
		return ev, false
	}
	addr, port, ok := apacheClient(rest[:end], withPort)
	if !ok {
		return ev, false
	}
	ev.SrcIP, ev.SrcPort = addr, port
	msg := rest[end+2:]
	if i := strings.Index(msg, ", referer: "); i >= 0 {
		msg = msg[:i]
	}
	// "AH00126: " codes (2.4); 2.2 has none.
	if len(msg) > 9 && msg[0] == 'A' && msg[1] == 'H' && msg[7] == ':' && msg[8] == ' ' {
		if _, n := digitsAt(msg, 2, 5); n == 5 {
			msg = msg[9:]
		}
	}
	var request, path string
	switch {
	case strings.HasPrefix(msg, "Invalid URI in request "):
		ev.Detail, request = DetailInvalidURI, msg[len("Invalid URI in request "):]
	case strings.HasPrefix(msg, "invalid URI path ("):
		ev.Detail, path = DetailInvalidURI, strings.TrimSuffix(msg[len("invalid URI path ("):], ")")
	case strings.HasPrefix(msg, "Invalid method in request "):
		ev.Detail, request = DetailInvalidMethod, msg[len("Invalid method in request "):]
	case strings.HasPrefix(msg, "request failed: ") && !strings.Contains(msg, "error reading the headers"):
		ev.Detail = DetailBadRequest
	case strings.HasPrefix(msg, "client denied by server configuration"):
		ev.Detail = DetailDeniedByConfig
		path, _ = strings.CutPrefix(msg[len("client denied by server configuration"):], ": ")
	case strings.HasPrefix(msg, "file permissions deny server access: "):
		ev.Detail, path = DetailDeniedByConfig, msg[len("file permissions deny server access: "):]
	case strings.HasPrefix(msg, "Symbolic link not allowed or link target not accessible: "):
		ev.Detail, path = DetailDeniedByConfig, msg[len("Symbolic link not allowed or link target not accessible: "):]
	case strings.HasPrefix(msg, "access to ") && strings.Contains(msg, " denied (filesystem path '"):
		ev.Detail = DetailDeniedByConfig
		path, _, _ = strings.Cut(msg[len("access to "):], " denied (filesystem path '")
	case strings.HasPrefix(msg, "Cannot serve directory "):
		ev.Detail = DetailDirIndexForbidden
		path, _, _ = strings.Cut(msg[len("Cannot serve directory "):], ": ")
	case strings.HasPrefix(msg, "File does not exist: "):
		ev.Detail, path = DetailFileNotFound, msg[len("File does not exist: "):]
	case strings.HasPrefix(msg, "script not found or unable to stat: "):
		ev.Detail, path = DetailFileNotFound, msg[len("script not found or unable to stat: "):]
	case strings.HasPrefix(msg, "Got error 'Primary script unknown"):
		ev.Detail = DetailFileNotFound
	case strings.HasPrefix(msg, "user "):
		// user U: authentication failure for "/admin": Password Mismatch
		// user U not found: /admin
		r := msg[len("user "):]
		if u, after, ok := strings.Cut(r, `: authentication failure for "`); ok {
			ev.User = u
			path, _, _ = strings.Cut(after, `"`)
		} else if u, after, ok := strings.Cut(r, " not found: "); ok {
			ev.User, path = u, after
		} else {
			return ev, false
		}
		ev.Detail = DetailAuthFailure
		ev.User = incident.CleanText(ev.User, MaxUser)
	default:
		return ev, false
	}
	setRequest(&ev, request, path)
	return ev, true
}

// apacheClient parses what "[client " holds: "A:port" (2.4; IPv6 without
// brackets, so the port is after the last colon), "[A]:port", or "A"
// (2.2).
func apacheClient(s string, withPort bool) (netip.Addr, uint16, bool) {
	if strings.HasPrefix(s, "[") {
		if i := strings.LastIndex(s, "]:"); i > 0 {
			a, ok := parseAddr(s[:i+1])
			p := atoi(s[i+2:])
			return a, uint16(p), ok && p > 0 && p <= 65535
		}
		a, ok := parseAddr(s)
		return a, 0, ok
	}
	if withPort {
		if i := strings.LastIndexByte(s, ':'); i > 0 {
			if p := atoi(s[i+1:]); p > 0 && p <= 65535 {
				if a, ok := parseAddr(s[:i]); ok {
					return a, uint16(p), true
				}
			}
		}
	}
	a, ok := parseAddr(s)
	return a, 0, ok
}

// setRequest fills Method, Path and Query from a quoted request line
// (split like the access parser's), or Path from the path the message
// names when there is no request line.
func setRequest(ev *event.Event, request, path string) {
	if request != "" {
		method, target, proto := splitRequest(request)
		if proto == "" {
			// TLS bytes or garbage instead of a request line: keep
			// it whole as evidence.
			ev.Path = incident.CleanText(request, MaxPath)
			return
		}
		ev.Method = incident.CleanText(method, MaxMethod)
		path = target
	}
	if path == "" {
		return
	}
	p, q, _ := strings.Cut(path, "?")
	ev.Path = incident.CleanText(p, MaxPath)
	if q != "" {
		ev.Query = incident.CleanText(q, MaxQuery)
	}
}
