package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// webRequest is one request of a web attack.
type webRequest struct {
	method, target, ua, body string
}

// Scanner user agents, as the tools send them.
const (
	uaNikto   = "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000003)"
	uaSqlmap  = "sqlmap/1.7.2#stable (https://sqlmap.org)"
	uaZgrab   = "Mozilla/5.0 zgrab/0.x"
	uaBrowser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	uaPython  = "python-requests/2.31.0"
	uaCurl    = "curl/7.88.1"
)

// webScanRequests: the landing page, then 13 distinct paths answered 404
// (the web_scan detector fires at 10 distinct): sensitive files, admin
// panels, a traversal and a sqlmap injection.
var webScanRequests = []webRequest{
	{"GET", "/", uaZgrab, ""},
	{"GET", "/.env", uaZgrab, ""},
	{"GET", "/.git/config", uaZgrab, ""},
	{"GET", "/.aws/credentials", uaZgrab, ""},
	{"GET", "/wp-config.php.bak", uaZgrab, ""},
	{"GET", "/backup.sql", uaZgrab, ""},
	{"GET", "/wp-admin/", uaNikto, ""},
	{"GET", "/phpmyadmin/", uaNikto, ""},
	{"GET", "/admin/", uaNikto, ""},
	{"GET", "/server-status", uaNikto, ""},
	{"GET", "/.DS_Store", uaNikto, ""},
	{"GET", "/../../../../etc/passwd", uaNikto, ""},
	{"GET", "/index.php?id=1%27%20OR%20%271%27%3D%271", uaSqlmap, ""},
	{"GET", "/index.php?id=1%20AND%20SLEEP(5)", uaSqlmap, ""},
}

// exploitRequests are two unmistakable exploit probes: PHPUnit's
// eval-stdin.php (CVE-2017-9841) and Apache's cgi-bin traversal
// (CVE-2021-41773), as botnets send them every day.
var exploitRequests = []webRequest{
	{"POST", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", uaBrowser, `<?php echo md5("attackmap-drill"); ?>`},
	{"POST", "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh", uaCurl, "echo Content-Type: text/plain; echo; id"},
}

// webLoginRequests are leaked-credential logins answered 401: four on a
// site login form and four on WordPress.
var webLoginRequests = []webRequest{
	{"POST", "/login", uaPython, "username=admin&password=drill-Summer2024"},
	{"POST", "/login", uaPython, "username=jsmith&password=drill-Welcome1"},
	{"POST", "/login", uaPython, "username=maria&password=drill-qwerty123"},
	{"POST", "/login", uaPython, "username=support&password=drill-Passw0rd"},
	{"POST", "/wp-login.php", uaPython, "log=admin&pwd=drill-admin123&wp-submit=Log+In"},
	{"POST", "/wp-login.php", uaPython, "log=editor&pwd=drill-letmein&wp-submit=Log+In"},
	{"POST", "/wp-login.php", uaPython, "log=wordpress&pwd=drill-123456&wp-submit=Log+In"},
	{"POST", "/wp-login.php", uaPython, "log=webmaster&pwd=drill-iloveyou&wp-submit=Log+In"},
}

func webRequests(name string) []webRequest {
	switch name {
	case WebScan:
		return webScanRequests
	case ExploitProbe:
		return exploitRequests
	case WebLoginStuff:
		return webLoginRequests
	}
	return nil
}

// webReadTimeout bounds reading a request's headers: the drill's own
// clients send them at once; it only keeps a stray client from holding a
// connection.
const webReadTimeout = 5 * time.Second

// maxWebBody caps the request body the server reads (and discards).
const maxWebBody = 64 << 10

// webServer is a small HTTP server on loopback that answers like a site
// behind nginx and appends an nginx "combined" access log line per request.
type webServer struct {
	URL   string // http://127.0.0.1:port
	srv   *http.Server
	done  chan struct{}
	tally *tally
	log   *slog.Logger

	mu  sync.Mutex // serialises appends (each line is one write anyway)
	out *os.File
}

// startWeb starts the server, appending to accessLog.
func startWeb(accessLog string, t *tally, log *slog.Logger) (*webServer, error) {
	f, err := os.OpenFile(accessLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("drill: access log: %w", err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("drill: web server: %w", err)
	}
	w := &webServer{URL: "http://" + l.Addr().String(), out: f, tally: t, log: log, done: make(chan struct{})}
	w.srv = &http.Server{
		Handler:           w,
		ReadHeaderTimeout: webReadTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(w.done)
		if err := w.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			log.Error("drill: web server", "err", err)
		}
	}()
	return w, nil
}

// stop closes the server and the access log.
func (w *webServer) stop() {
	if w == nil {
		return
	}
	// Close, not Shutdown: every drill request has been answered by now.
	w.srv.Close()
	<-w.done
	w.out.Close()
}

const notFoundPage = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

const unauthorizedPage = "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

const indexPage = "<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body><h1>It works</h1></body></html>\n"

// route answers like a small site: the landing page, 401 for login posts,
// 404 for everything else.
func route(r *http.Request) (int, string) {
	path := r.URL.Path
	switch {
	case path == "/" && r.URL.RawQuery == "":
		return http.StatusOK, indexPage
	case r.Method == http.MethodPost && (path == "/login" || path == "/wp-login.php"):
		return http.StatusUnauthorized, unauthorizedPage
	}
	return http.StatusNotFound, notFoundPage
}

func (w *webServer) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, io.LimitReader(r.Body, maxWebBody))
	status, body := route(r)
	rw.Header().Set("Server", "nginx")
	rw.Header().Set("Content-Type", "text/html")
	rw.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rw.WriteHeader(status)
	n := 0
	if r.Method != http.MethodHead {
		n, _ = io.WriteString(rw, body)
	}
	// nginx writes the log line once the response is sent.
	if f, ok := rw.(http.Flusher); ok {
		f.Flush()
	}
	w.logRequest(r, status, n, time.Now())
}

// logRequest appends the combined line for r and records it in the tally.
func (w *webServer) logRequest(r *http.Request, status, size int, at time.Time) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	addr, _ := netip.ParseAddr(host)
	user, _, _ := r.BasicAuth()
	line := appendCombined(nil, combined{
		remoteAddr: host, remoteUser: user, at: at,
		request: r.Method + " " + r.RequestURI + " " + r.Proto,
		status:  status, size: size, referer: r.Referer(), ua: r.UserAgent(),
	})
	w.mu.Lock()
	_, err := w.out.Write(line)
	w.mu.Unlock()
	if err != nil {
		w.log.Error("drill: writing access log", "err", err)
		return
	}
	w.tally.record(addr.Unmap(), "request", time.Now())
}

// combined is one nginx combined log entry:
// $remote_addr - $remote_user [$time_local] "$request" $status
// $body_bytes_sent "$http_referer" "$http_user_agent"
type combined struct {
	remoteAddr, remoteUser string
	at                     time.Time
	request                string
	status, size           int
	referer, ua            string
}

// appendCombined appends e as nginx writes it: empty values as "-", and in
// the request, user, referer and user agent a `"`, `\`, control or non-ASCII
// byte as \xHH (nginx's default log escaping), so an attacker cannot forge a
// field or a line.
func appendCombined(b []byte, e combined) []byte {
	b = appendLogValue(b, e.remoteAddr, false)
	b = append(b, " - "...)
	// The user is the only attacker-chosen field outside quotes: a space
	// in it is escaped too (nginx would write it raw and shift the fields).
	b = appendLogValue(b, e.remoteUser, true)
	b = append(b, " ["...)
	b = e.at.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, `] "`...)
	b = appendLogValue(b, e.request, false)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(e.size), 10)
	b = append(b, ` "`...)
	b = appendLogValue(b, e.referer, false)
	b = append(b, `" "`...)
	b = appendLogValue(b, e.ua, false)
	b = append(b, '"', '\n')
	return b
}

func appendLogValue(b []byte, s string, escapeSpace bool) []byte {
	if s == "" {
		return append(b, '-')
	}
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e || c == ' ' && escapeSpace {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// webClientTimeout bounds one drill request; the server answers at once.
const webClientTimeout = 10 * time.Second

// webLogWait bounds the wait for the server's last access log line after
// the client has its last answer; it follows within microseconds.
const webLogWait = 5 * time.Second

// runWebAttack sends a web attack's requests from a.Addr to srv and waits
// until the access log holds a line for each.
func runWebAttack(ctx context.Context, a Attack, srv *webServer) Result {
	res := Result{Attack: a, Start: time.Now()}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: a.Addr.AsSlice()}, Timeout: webClientTimeout}
	tr := &http.Transport{
		Proxy:       nil, // loopback, never through a configured proxy
		DialContext: dialer.DialContext,
		// One keep-alive connection per attacker, as scanners do.
		MaxIdleConnsPerHost: 1,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		Timeout:       webClientTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	before := srv.tally.get(a.Addr).Marks["request"]
	for _, wr := range webRequests(a.Name) {
		status, err := webDo(ctx, client, srv.URL, wr)
		if err != nil {
			res.fail(fmt.Errorf("%s %s from %s: %w", wr.method, wr.target, a.Addr, err))
			return res
		}
		res.Count++
		res.Statuses = append(res.Statuses, status)
	}
	wctx, cancel := context.WithTimeout(ctx, webLogWait)
	defer cancel()
	got, err := srv.tally.wait(wctx, a.Addr, func(t addrTally) bool {
		return t.Marks["request"]-before >= res.Count
	})
	res.Lines, res.Last = got.Marks["request"]-before, got.Last
	res.Duration = res.Last.Sub(res.Start)
	if err != nil {
		res.fail(fmt.Errorf("access log holds %d of %d lines from %s: %w", res.Lines, res.Count, a.Addr, err))
	}
	return res
}

// webDo sends one request. The target is written on the wire exactly as
// given (url.Parse keeps "..", "%2e" and the query), as a scanner sends it.
func webDo(ctx context.Context, c *http.Client, base string, wr webRequest) (int, error) {
	u, err := url.Parse(base + wr.target)
	if err != nil {
		return 0, err
	}
	var body io.Reader
	if wr.body != "" {
		body = strings.NewReader(wr.body)
	}
	req, err := http.NewRequestWithContext(ctx, wr.method, u.String(), body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", wr.ua)
	if wr.body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebBody))
	resp.Body.Close()
	return resp.StatusCode, nil
}
