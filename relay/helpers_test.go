package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/testkit"
	"github.com/attackmap/attackmap/relay/token"
)

// testRelay is a relay with a real token file and data directory, served
// over a real loopback socket (httptest or Relay.Serve).
type testRelay struct {
	*Relay
	url   string
	tok   string
	dir   string
	close func()
}

// startRelay builds a relay from cfg (DataDir and TokenFile filled in when
// empty) and serves it with httptest.
func startRelay(t *testing.T, cfg Config) *testRelay {
	t.Helper()
	tr := newTestRelay(t, cfg)
	srv := httptest.NewServer(tr.Handler())
	tr.url = srv.URL
	tr.close = func() {
		srv.Close()
		_ = tr.Relay.Close()
	}
	t.Cleanup(tr.close)
	return tr
}

// serveRelay serves with Relay.Serve on a real listener; cancel stops it.
func serveRelay(t *testing.T, cfg Config) (*testRelay, context.CancelFunc, <-chan error) {
	t.Helper()
	tr := newTestRelay(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Serve(ctx, ln) }()
	tr.url = "http://" + ln.Addr().String()
	tr.close = func() {
		cancel()
		<-done
		_ = tr.Relay.Close()
	}
	t.Cleanup(func() { cancel(); _ = tr.Relay.Close() })
	return tr, cancel, done
}

func newTestRelay(t *testing.T, cfg Config) *testRelay {
	t.Helper()
	dir := cfg.DataDir
	if dir == "" {
		dir = t.TempDir()
		cfg.DataDir = dir
	}
	tr := &testRelay{dir: dir}
	if cfg.TokenFile == "" {
		cfg.TokenFile = filepath.Join(dir, "tokens")
		tok, err := token.Add(cfg.TokenFile, "web-1", &incident.Location{Lat: 50.11, Lon: 8.68})
		if err != nil {
			t.Fatal(err)
		}
		tr.tok = tok
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = time.Hour // tests that want heartbeats set it
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr.Relay = r
	return tr
}

// incTime is the default ts and last_seen of inc: a minute before the
// tests started, since the relay refuses incidents far from its clock.
var incTime = time.Now().UTC().Add(-time.Minute).Truncate(time.Second)

// incTS formats incTime+d for an incident field.
func incTS(d time.Duration) string { return incTime.Add(d).Format(time.RFC3339) }

// inc returns a valid incident as JSON. Fields in extra override defaults.
func inc(id string, extra map[string]any) json.RawMessage {
	m := map[string]any{
		"id": id, "source": "ssh_bruteforce", "severity": "high", "ip": "185.220.101.34",
		"country": "DE", "lat": 51.29, "lon": 9.49, "ts": incTS(0),
		"title": "SSH brute force", "summary": "23 failed logins from 185.220.101.34",
		"count": 23, "last_seen": incTS(0), "geo_source": "dbip",
	}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// sensor is an ingest client.
type sensor struct {
	t     *testing.T
	c     *websocket.Conn
	batch uint64
}

func dialSensor(t *testing.T, base, tok string) *sensor {
	t.Helper()
	c, err := dialIngest(base, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return &sensor{t: t, c: c}
}

func dialIngest(base, tok string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/ingest", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	return c, nil
}

// send sends one batch and returns the ack.
func (s *sensor) send(incidents ...json.RawMessage) incident.Ack {
	s.t.Helper()
	s.batch++
	msg, _ := json.Marshal(incident.Batch{Type: incident.TypeIncidents, Batch: s.batch, Incidents: incidents})
	ack, err := s.sendRaw(websocket.MessageText, msg)
	if err != nil {
		s.t.Fatal(err)
	}
	if ack.Batch != s.batch {
		s.t.Fatalf("ack for batch %d, want %d", ack.Batch, s.batch)
	}
	return ack
}

func (s *sensor) sendRaw(typ websocket.MessageType, msg []byte) (incident.Ack, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ack incident.Ack
	if err := s.c.Write(ctx, typ, msg); err != nil {
		return ack, err
	}
	_, data, err := s.c.Read(ctx)
	if err != nil {
		return ack, err
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return ack, fmt.Errorf("ack %q: %w", data, err)
	}
	if ack.Type != incident.TypeAck || ack.Rejected == nil {
		return ack, fmt.Errorf("bad ack %s", data)
	}
	return ack, nil
}

// event is one parsed SSE event or comment.
type event struct {
	id      string
	name    string
	data    string
	comment string
	at      time.Time
}

// stream is a raw SSE client: a TCP connection with a hand-written request,
// like a browser's EventSource.
type stream struct {
	t      *testing.T
	conn   net.Conn
	br     *bufio.Reader
	status int
	header http.Header
}

type streamOpts struct {
	header http.Header
	query  string
	local  string // source address, e.g. "127.0.0.5"
	rcvBuf int    // SO_RCVBUF before connecting
}

func openStream(t *testing.T, base string, o streamOpts) *stream {
	t.Helper()
	s, err := tryStream(base, o)
	if err != nil {
		t.Fatal(err)
	}
	s.t = t
	t.Cleanup(func() { s.conn.Close() })
	return s
}

func tryStream(base string, o streamOpts) (*stream, error) {
	host := strings.TrimPrefix(base, "http://")
	d := net.Dialer{Timeout: 10 * time.Second}
	if o.local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.local)}
	}
	if o.rcvBuf > 0 {
		d.Control = setRcvBuf(o.rcvBuf)
	}
	conn, err := d.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	var req strings.Builder
	fmt.Fprintf(&req, "GET /api/live-feed/stream%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n", o.query, host)
	for k, vs := range o.header {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading status: %w", err)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		conn.Close()
		return nil, fmt.Errorf("bad status line %q", line)
	}
	code, _ := strconv.Atoi(f[1])
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	return &stream{conn: conn, br: br, status: code, header: http.Header(mh)}, nil
}

// next reads the next event or comment, failing the test after timeout.
func (s *stream) next(timeout time.Duration) event {
	s.t.Helper()
	ev, err := s.read(timeout)
	if err != nil {
		s.t.Fatalf("reading SSE: %v", err)
	}
	return ev
}

func (s *stream) read(timeout time.Duration) (event, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(timeout))
	defer s.conn.SetReadDeadline(time.Time{})
	var ev event
	seen := false
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if seen {
				ev.at = time.Now()
				return ev, nil
			}
			continue
		}
		seen = true
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimPrefix(v, " ")
		switch k {
		case "":
			ev.comment = v
		case "id":
			ev.id = v
		case "event":
			ev.name = v
		case "data":
			ev.data += v
		case "retry":
			seen = false // the retry line alone is not an event
		}
	}
}

// nextIncident skips comments and returns the next incident event.
func (s *stream) nextIncident(timeout time.Duration) (event, incident.Incident) {
	s.t.Helper()
	for {
		ev := s.next(timeout)
		if ev.comment != "" {
			continue
		}
		if ev.name != "incident" {
			s.t.Fatalf("event %q, want incident", ev.name)
		}
		in, err := incident.Decode([]byte(ev.data))
		if err != nil {
			s.t.Fatalf("event data %q: %v", ev.data, err)
		}
		if err := in.Validate(); err != nil {
			s.t.Fatalf("event data %q: %v", ev.data, err)
		}
		return ev, in
	}
}

// expectQuiet checks that nothing but comments arrives within d.
func (s *stream) expectQuiet(d time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		ev, err := s.read(left)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return
			}
			s.t.Fatalf("stream ended: %v", err)
		}
		if ev.comment == "" {
			s.t.Fatalf("unexpected event id=%s data=%s", ev.id, ev.data)
		}
	}
}

func getJSON(t *testing.T, url string, v any) http.Header {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, b)
	}
	return resp.Header
}

// waitFor polls cond (cheap, in-process state) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitLong is waitFor with its own deadline, for state that costs a
// request or a system call to read (polled every 50 ms).
func waitLong(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// plainWriter hides http.Hijacker and Unwrap, like a middleware that wraps
// the ResponseWriter without forwarding them; it keeps Flush.
type plainWriter struct{ w http.ResponseWriter }

func (p plainWriter) Header() http.Header         { return p.w.Header() }
func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p plainWriter) WriteHeader(code int)        { p.w.WriteHeader(code) }
func (p plainWriter) Flush()                      { p.w.(http.Flusher).Flush() }

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// nopDeadlineConn lets a stream read from an http.Response body; the
// response's client has its own timeout.
type nopDeadlineConn struct{ net.Conn }

func (nopDeadlineConn) SetReadDeadline(time.Time) error { return nil }
func (nopDeadlineConn) Close() error                    { return nil }

// pushUntilAcked sends batches batches of size incidents, named
// prefix<batch>-<n>, through ingest sockets from dial, like the real
// sensor: a batch is sent again until it is acknowledged whole, on a new
// socket after any error. during(i), when not nil, runs before each
// attempt of batch i; acked gets the ids of each acknowledged batch. It
// returns the longest a batch waited from its first attempt to its ack.
func pushUntilAcked(t *testing.T, dial func() (*websocket.Conn, error), prefix string, batches, size int,
	during func(i int), acked func(ids []string)) (slowest time.Duration) {
	var s *sensor
	var batchStart time.Time // first attempt of the batch in hand
	for i := 0; i < batches; {
		if during != nil {
			during(i)
		}
		if s == nil {
			conn, err := dial()
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			s = &sensor{t: t, c: conn}
		}
		raws := make([]json.RawMessage, 0, size)
		ids := make([]string, 0, size)
		for j := range size {
			id := fmt.Sprintf("%s%02d-%02d", prefix, i, j)
			raws = append(raws, inc(id, nil))
			ids = append(ids, id)
		}
		if batchStart.IsZero() {
			batchStart = time.Now()
		}
		s.batch++
		msg, _ := json.Marshal(incident.Batch{Type: incident.TypeIncidents, Batch: s.batch, Incidents: raws})
		ack, err := s.sendRaw(websocket.MessageText, msg)
		if err != nil || ack.Accepted != len(raws) {
			_ = s.c.CloseNow()
			s = nil
			time.Sleep(100 * time.Millisecond)
			continue
		}
		slowest = max(slowest, time.Since(batchStart))
		batchStart = time.Time{}
		acked(ids)
		i++
	}
	if s != nil {
		_ = s.c.CloseNow()
	}
	return slowest
}

// buildRelayBinary builds cmd/attackmap-relay into the test's temporary
// directory, for the tests that run it as a process.
func buildRelayBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "attackmap-relay")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/attackmap/attackmap/cmd/attackmap-relay").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// procLog is what startLogged reads from a relay process.
type procLog struct {
	logs *testkit.SyncBuffer // every line
	// addr and metrics receive the addresses of the "relay listening"
	// and "metrics listening" lines (the first of each).
	addr, metrics chan string
	done          chan struct{} // closed when the process has ended
}

// startLogged starts cmd (a relay, or prlimit running one), which dies
// with the test binary and is killed when the test ends, and reads its
// log.
func startLogged(t *testing.T, cmd *exec.Cmd) *procLog {
	t.Helper()
	// The relay dies with the test binary even if a timeout kills it
	// (prlimit execs the relay, so the signal reaches it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &procLog{logs: &testkit.SyncBuffer{}, addr: make(chan string, 1), metrics: make(chan string, 1), done: make(chan struct{})}
	first := func(c chan string, s string) {
		select {
		case c <- s:
		default:
		}
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			_, _ = fmt.Fprintln(p.logs, sc.Text())
			if m := listenRe.FindStringSubmatch(sc.Text()); m != nil {
				first(p.addr, m[1])
			}
			if m := metricsRe.FindStringSubmatch(sc.Text()); m != nil {
				first(p.metrics, m[1])
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}
