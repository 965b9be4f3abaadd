package logparse

import (
	"net/netip"
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

// Caps on attacker-chosen access log fields, in bytes.
const (
	MaxPath   = 1024
	MaxQuery  = 1024
	MaxUA     = 512
	MaxMethod = 32
	MaxVhost  = 255
	// MaxHTTPVersion caps the protocol of a request line: real ones are
	// 8 bytes ("HTTP/1.1"); a longer one is kept, capped, as evidence of
	// a malformed request.
	MaxHTTPVersion = 16
)

// DetailStatic marks an http_request for a static resource (stylesheet,
// script, image, font): scanners' 404s on these are not counted.
const DetailStatic = "static"

// Access parses web server access lines in the common and combined formats
// (nginx, Apache), with or without a leading virtual host ("%v:%p " or
// "$host "), and inside syslog lines ("... nginx: <line>").
type Access struct {
	st stamper
}

// NewAccess returns an access log parser (source event.SourceAccessLog).
func NewAccess(o Options) *Access { return &Access{st: newStamper(o)} }

// Line parses one access log line.
func (p *Access) Line(line string) (event.Event, bool) {
	if ev, ok := parseAccess(line); ok {
		return ev, true
	}
	// Inside a syslog line: the stamp in brackets is the one that counts.
	if h, ok := p.st.ParseHeader(line); ok {
		return p.Message(h)
	}
	return event.Event{}, false
}

// Message parses an access line logged through syslog or the journal.
func (p *Access) Message(h Header) (event.Event, bool) {
	ev, ok := parseAccess(h.Msg)
	if !ok {
		return ev, false
	}
	if h.Source != "" {
		ev.Source = h.Source
	}
	return ev, true
}

// parseAccess reads
//
//	[vhost[:port] ]client ident user [22/Mar/2026:14:32:01 +0000] "GET /p?q HTTP/1.1" 404 153[ "referer" "ua"]
//
// The client address is the first or second field, which the server
// writes; everything from the request on is the client's. Variants seen
// in the wild parse too: a quoted user ("jeff"), one of ident and user
// missing, no size before the quoted fields, a single quoted field after
// the size (the user agent, unless it is "-" or a URL: then it is the
// referer), and extra quoted fields after the user agent (ignored).
func parseAccess(l string) (event.Event, bool) {
	var ev event.Event
	f1, rest, ok := strings.Cut(l, " ")
	if !ok {
		return ev, false
	}
	f2, rest2, ok := strings.Cut(rest, " ")
	if !ok {
		return ev, false
	}
	var vhost string
	var addr netip.Addr
	if a, ok := parseAddr(f2); ok && len(f1) > 0 && f1[0] != '[' {
		vhost, addr, rest = f1, a, rest2
	} else if a, ok := parseAddr(f1); ok {
		addr = a
	} else {
		return ev, false
	}
	// ident and user, then " [": the user comes from the client's
	// Authorization header and may hold spaces; the stamp is the first
	// bracketed, well-formed one.
	var ts time.Time
	idUser := rest
	for off := 0; ; {
		i := strings.Index(rest, " [")
		if i < 0 {
			return ev, false
		}
		off += i
		rest = rest[i+2:]
		if t, ok := parseCLFTime(rest); ok {
			ts = t
			rest = rest[len("22/Mar/2026:14:32:01 +0000]"):]
			idUser = idUser[:off]
			break
		}
		off += 2
	}
	// "ident user": the user is what follows the first space; nginx
	// writes it bare, some Apache formats quote it; "-" is none.
	var user string
	if _, u, ok := strings.Cut(idUser, " "); ok {
		if len(u) >= 2 && u[0] == '"' && u[len(u)-1] == '"' {
			u = u[1 : len(u)-1]
		}
		if u != "-" {
			user = u
		}
	}
	rest, ok = strings.CutPrefix(rest, " \"")
	if !ok {
		return ev, false
	}
	req, rest, ok := cutQuoted(rest)
	if !ok {
		return ev, false
	}
	rest, ok = strings.CutPrefix(rest, " ")
	if !ok || len(rest) < 3 {
		return ev, false
	}
	status := atoi(rest[:3])
	if status < 100 || status > 999 || (len(rest) > 3 && rest[3] != ' ') {
		return ev, false
	}
	rest = rest[min(4, len(rest)):]
	var sizeStr string
	if !strings.HasPrefix(rest, "\"") { // some formats log no size
		sizeStr, rest, _ = strings.Cut(rest, " ")
	}
	var size int64
	if sizeStr != "-" {
		for i := 0; i < len(sizeStr) && i < 18; i++ {
			c := sizeStr[i]
			if c < '0' || c > '9' {
				return ev, false
			}
			size = size*10 + int64(c-'0')
		}
	}
	var ua string
	if r, ok := strings.CutPrefix(rest, "\""); ok {
		var q1 string
		if q1, r, ok = cutQuoted(r); ok { // referer
			if r, ok = strings.CutPrefix(r, " \""); ok {
				ua, _, _ = cutQuoted(r)
			} else if !isReferer(q1) {
				// One quoted field only: "%r" %>s %b "%{User-agent}i".
				ua = q1
			}
		}
	}

	ev.TS = ts
	ev.Kind = event.KindHTTPRequest
	ev.Source = event.SourceAccessLog
	ev.SrcIP = addr
	ev.Status = status
	ev.Size = size
	if vhost != "" {
		ev.Vhost = incident.CleanText(vhost, MaxVhost)
	}
	if ua != "" && ua != "-" {
		ev.UA = incident.CleanText(ua, MaxUA)
	}
	if user != "" {
		ev.User = incident.CleanText(user, MaxUser)
	}
	method, target, proto := splitRequest(req)
	if proto == "" {
		// Not an HTTP request line (TLS handshake bytes, garbage): keep
		// it whole as the path so that it is still evidence.
		ev.Path = incident.CleanText(req, MaxPath)
		return ev, true
	}
	ev.Method = incident.CleanText(method, MaxMethod)
	ev.HTTPVersion = incident.CleanText(proto, MaxHTTPVersion)
	path, query, _ := strings.Cut(target, "?")
	ev.Path = incident.CleanText(path, MaxPath)
	if query != "" {
		ev.Query = incident.CleanText(query, MaxQuery)
	}
	if IsStatic(path) {
		ev.Detail = DetailStatic
	}
	return ev, true
}

// splitRequest splits "GET /p HTTP/1.1" at its first and last spaces.
// CONNECT targets ("host:443") and absolute URIs ("http://host/p") are
// targets like any other.
func splitRequest(req string) (method, target, proto string) {
	i := strings.IndexByte(req, ' ')
	j := strings.LastIndexByte(req, ' ')
	if i <= 0 || j <= i || len(req)-j-1 < 5 || !strings.EqualFold(req[j+1:j+6], "HTTP/") {
		return "", "", ""
	}
	return req[:i], req[i+1 : j], req[j+1:]
}

// isReferer tells a lone quoted field that is a referer ("-", a URL)
// from a user agent.
func isReferer(s string) bool {
	return s == "" || s == "-" || strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") ||
		strings.HasPrefix(s, "/")
}

// cutQuoted reads a quoted field whose opening quote is already consumed,
// up to the closing quote (\" and \\ are escapes, as nginx and Apache
// write them), and returns the field without unescaping.
func cutQuoted(s string) (field, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// parseCLFTime parses "22/Mar/2026:14:32:01 +0000]".
func parseCLFTime(s string) (time.Time, bool) {
	if len(s) < 27 || s[2] != '/' || s[6] != '/' || s[11] != ':' || s[14] != ':' ||
		s[17] != ':' || s[20] != ' ' || s[26] != ']' {
		return time.Time{}, false
	}
	d, n1 := digitsAt(s, 0, 2)
	mon := monthOf(s[3:6])
	y, n2 := digitsAt(s, 7, 4)
	hh, n3 := digitsAt(s, 12, 2)
	mm, n4 := digitsAt(s, 15, 2)
	ss, n5 := digitsAt(s, 18, 2)
	zh, n6 := digitsAt(s, 22, 2)
	zm, n7 := digitsAt(s, 24, 2)
	if n1 != 2 || n2 != 4 || n3 != 2 || n4 != 2 || n5 != 2 || n6 != 2 || n7 != 2 || mon == 0 ||
		d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || zh > 14 || zm > 59 ||
		(s[21] != '+' && s[21] != '-') {
		return time.Time{}, false
	}
	off := (zh*60 + zm) * 60
	if s[21] == '-' {
		off = -off
	}
	return time.Date(y, mon, d, hh, mm, ss, 0, time.UTC).Add(-time.Duration(off) * time.Second), true
}

// IsStatic reports whether path names a static resource by its extension.
func IsStatic(path string) bool {
	dot := strings.LastIndexByte(path, '.')
	if dot < 0 || strings.IndexByte(path[dot:], '/') >= 0 || len(path)-dot > 7 {
		return false
	}
	switch strings.ToLower(path[dot+1:]) {
	case "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico",
		"woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "txt":
		return true
	}
	return false
}
