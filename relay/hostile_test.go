package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/testkit"
)

// The hostile-client suite: each attack runs against a real attackmap-relay
// process on loopback, started with a low open file limit, and checks the
// bound the relay keeps (descriptors held, resident memory, socket buffers
// still queued, /healthz latency for a well-behaved client, slots freed)
// rather than only that it survives. Attackers are played from 127.x
// source addresses. Bounds are generous: the machine running the tests is
// small and shared.
func TestHostileClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the relay binary; about a minute")
	}
	bin := buildRelayBinary(t)
	t.Run("trickled bodies and unfinished heads hold few descriptors", func(t *testing.T) { hostileHeldConns(t, bin) })
	t.Run("clients that do not read their answer are cut off", func(t *testing.T) { hostileNonReaders(t, bin) })
	t.Run("a closed stream frees its slot at once; reloads are never locked out", func(t *testing.T) { hostileReloads(t, bin) })
	t.Run("stream caps count IPv6 per /64 and per /48", func(t *testing.T) { hostileNetCaps(t, bin) })
	t.Run("whole-ring pulls are bounded", func(t *testing.T) { hostileRingPulls(t, bin) })
	t.Run("metrics are not on the public port", func(t *testing.T) { hostileMetrics(t, bin) })
}

// relayProc is a relay process under test.
type relayProc struct {
	t       *testing.T
	pid     int
	addr    string // public host:port
	metrics string // metrics host:port, "" when disabled
	tok     string
	logs    *testkit.SyncBuffer
}

var (
	listenRe  = regexp.MustCompile(`msg="relay listening" addr=(\S+)`)
	metricsRe = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)
)

// startRelayProc starts bin serve with an open file limit of nofile (soft
// and hard, through prlimit) and extra flags; metrics on a free loopback
// port unless the flags say otherwise.
func startRelayProc(t *testing.T, bin string, nofile int, flags ...string) *relayProc {
	t.Helper()
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tokens")
	out, err := exec.Command(bin, "token", "add", "--token-file", tokFile, "web-1", "--lat", "50.11", "--lon", "8.68").Output()
	if err != nil {
		t.Fatalf("token add: %v", err)
	}
	args := []string{"--nofile=" + strconv.Itoa(nofile), "--", bin, "serve", "--listen", "127.0.0.1:0",
		"--data", filepath.Join(dir, "data"), "--token-file", tokFile, "--ingest-rate", "-1"}
	if !strings.Contains(strings.Join(flags, " "), "--metrics-listen") {
		args = append(args, "--metrics-listen", "127.0.0.1:0")
	}
	args = append(args, flags...)
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("needs prlimit (Debian package util-linux) to start the relay with a low descriptor limit")
	}
	cmd := exec.Command(prlimit, args...)
	l := startLogged(t, cmd)
	p := &relayProc{t: t, pid: cmd.Process.Pid, tok: strings.TrimSpace(string(out)), logs: l.logs}
	select {
	case p.addr = <-l.addr:
	case <-time.After(20 * time.Second):
		t.Fatalf("relay did not start:\n%s", p.logs.String())
	}
	select {
	case p.metrics = <-l.metrics:
	default: // logged before the listening line, or disabled
	}
	return p
}

func (p *relayProc) url() string { return "http://" + p.addr }

// fds counts the relay's open descriptors.
func (p *relayProc) fds() int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid))
	if err != nil {
		p.t.Fatalf("reading the relay's descriptors: %v", err)
	}
	return len(es)
}

// rss is the relay's resident memory in bytes.
func (p *relayProc) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		p.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	p.t.Fatal("no VmRSS")
	return 0
}

// queued sums the send queues of the sockets on the relay's port,
// orphaned ones (closed by the relay, data still unsent) included: the
// kernel memory non-reading clients pin.
func (p *relayProc) queued() int64 {
	_, port, _ := net.SplitHostPort(p.addr)
	pn, _ := strconv.Atoi(port)
	want := fmt.Sprintf(":%04X", pn)
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		p.t.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasSuffix(f[1], want) {
			continue
		}
		tx, _, _ := strings.Cut(f[4], ":")
		n, _ := strconv.ParseInt(tx, 16, 64)
		total += n
	}
	return total
}

// health times GET /healthz from a well-behaved client (127.0.0.1).
func (p *relayProc) health() (time.Duration, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := c.Get(p.url() + "/healthz")
	if err != nil {
		return time.Since(start), err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "ok\n" {
		return time.Since(start), fmt.Errorf("healthz: %d %q", resp.StatusCode, b)
	}
	return time.Since(start), nil
}

// mustBeHealthy checks /healthz answers within a second.
func (p *relayProc) mustBeHealthy(when string) {
	p.t.Helper()
	d, err := p.health()
	if err != nil || d > time.Second {
		p.t.Fatalf("%s: /healthz took %v: %v\n%s", when, d, err, p.logs.String())
	}
}

// metric reads one series from the metrics port.
func (p *relayProc) metric(series string) float64 {
	p.t.Helper()
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// dialFrom opens a TCP connection to the relay from a 127.x address.
func (p *relayProc) dialFrom(local string, rcvBuf int) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	if rcvBuf > 0 {
		d.Control = setRcvBuf(rcvBuf)
	}
	return d.Dial("tcp", p.addr)
}

// 320 connections from one address against a relay allowed 300
// descriptors: first each trickling a body it declared, then each sending
// half a request head. The relay holds at most its per-address cap of
// them, answers every body at once with 413, and /healthz stays fast for
// everyone else.
func hostileHeldConns(t *testing.T, bin string) {
	p := startRelayProc(t, bin, 300)
	base := p.fds()
	for _, tc := range []struct {
		name string
		head string
		// body: the relay must answer 413 and close at once.
		body bool
	}{
		{"trickled body", "GET /api/stats HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n", true},
		{"chunked body", "GET /live HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"unfinished head", "GET /api/stats HTTP/1.1\r\nHost: x\r\nX-Slow: ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			refused := 0
			for range 320 {
				c, err := p.dialFrom("127.0.0.66", 0)
				if err != nil {
					refused++
					continue
				}
				if _, err := io.WriteString(c, tc.head); err != nil {
					refused++
					c.Close()
					continue
				}
				conns = append(conns, c)
			}
			// Trickle: a byte from every connection, twice.
			for range 2 {
				for _, c := range conns {
					_ = c.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = c.Write([]byte("a"))
				}
				p.mustBeHealthy(tc.name)
				time.Sleep(200 * time.Millisecond)
			}
			if held := p.fds() - base; held > DefaultMaxConnsPerAddr+8 {
				t.Fatalf("relay holds %d descriptors for one address, cap %d", held, DefaultMaxConnsPerAddr)
			}
			// Every connection is answered: 413 for a body, 429 over the
			// cap (or a reset); nothing is left hanging for a body.
			// Read them all at once: a read whose deadline has passed
			// fails without looking at what arrived.
			got := map[string]int{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, c := range conns {
				wg.Go(func() {
					_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
					b, err := io.ReadAll(c)
					status := "none"
					if f := strings.Fields(string(b)); len(f) > 1 {
						status = f[1]
					}
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						status += " and still open"
					}
					mu.Lock()
					got[status]++
					mu.Unlock()
				})
			}
			wg.Wait()
			if tc.body {
				if got["413"] < DefaultMaxConnsPerAddr-4 || got["413"]+got["429"]+got["none"] != len(conns) {
					t.Fatalf("answers %v, want about %d × 413 then closed, the rest 429", got, DefaultMaxConnsPerAddr)
				}
			} else if got["none and still open"] > DefaultMaxConnsPerAddr {
				t.Fatalf("answers %v: more than %d unfinished heads held", got, DefaultMaxConnsPerAddr)
			}
			p.mustBeHealthy(tc.name + ", after")
		})
	}
	if n := p.metric(`attackmap_relay_connections_refused_total{limit="per_addr"}`); n < 200 {
		t.Errorf("per-address refusals counted: %v", n)
	}
}

// bigIncidents ingests n incidents of about 14 KiB each.
func (p *relayProc) bigIncidents(n int) {
	p.t.Helper()
	s := dialSensor(p.t, p.url(), p.tok)
	pad := strings.Repeat("p", 200)
	var ev struct {
		Paths      []string `json:"paths"`
		UserAgents []string `json:"user_agents"`
	}
	for i := range 32 {
		ev.Paths = append(ev.Paths, fmt.Sprintf("/%d/%s", i, pad))
		ev.UserAgents = append(ev.UserAgents, fmt.Sprintf("agent %d %s", i, pad))
	}
	for sent := 0; sent < n; {
		var batch []json.RawMessage
		for j := 0; j < 16 && sent < n; j++ {
			batch = append(batch, inc(fmt.Sprintf("big-%d", sent), map[string]any{"evidence": ev, "summary": strings.Repeat("s", 1000)}))
			sent++
		}
		if ack := s.send(batch...); ack.Accepted != len(batch) {
			p.t.Fatalf("ack %+v", ack)
		}
	}
}

// Clients that ask for the biggest answers and never read them: 30 of
// /api/live-feed?limit=500 and 50 of /api/live-feed.geojson?limit=2000 (7
// and 28 MiB each). The relay's memory does not grow with the answers' size,
// the clients are cut off after the per-chunk timeout with a reset (no
// kernel buffers left queued for them), their descriptors are released,
// and /healthz answers throughout.
func hostileNonReaders(t *testing.T, bin string) {
	p := startRelayProc(t, bin, 1024)
	p.bigIncidents(2000)
	for _, tc := range []struct {
		name    string
		path    string
		clients int
	}{
		{"feed", "/api/live-feed?limit=500", 30},
		{"geojson", "/api/live-feed.geojson?limit=2000", 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseFDs, baseRSS := p.fds(), p.rss()
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for i := range tc.clients {
				// Over several addresses so the per-address cap is
				// not what stops them.
				c, err := p.dialFrom(fmt.Sprintf("127.0.20.%d", 1+i%8), 16<<10)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				if _, err := io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
			}
			// Each gets its answer's head: the relay is writing to them.
			for _, c := range conns {
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				head := make([]byte, 12)
				if _, err := io.ReadFull(c, head); err != nil || string(head) != "HTTP/1.1 200" {
					t.Fatalf("answer %q: %v", head, err)
				}
			}
			start := time.Now()
			var peak int64
			for time.Since(start) < 3*time.Second {
				peak = max(peak, p.rss()-baseRSS)
				p.mustBeHealthy(tc.name + " clients stalled")
				time.Sleep(300 * time.Millisecond)
			}
			if peak > 64<<20 {
				t.Errorf("relay RSS grew by %d MiB for %d stalled clients", peak>>20, tc.clients)
			}
			// Cut off after chunkTimeout (10 s) of no progress, reset.
			waitLong(t, 30*time.Second, "descriptors released and socket queues dropped", func() bool {
				return p.fds() <= baseFDs+2 && p.queued() < 256<<10
			})
			t.Logf("%s: cut after %.1fs; RSS peak +%.1f MiB", tc.name, time.Since(start).Seconds(), float64(peak)/(1<<20))
			for _, c := range conns {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := io.Copy(io.Discard, c)
				if err == nil && n > 8<<20 {
					t.Fatalf("a stalled client still got a whole answer (%d bytes)", n)
				}
			}
			p.mustBeHealthy(tc.name + ", after")
		})
	}
}

// A stream whose client closes frees its per-address slot at once, with
// no incident or heartbeat to write (the relay's heartbeat is 15 s);
// reloading ten times in a row from one address, with a cap of two streams
// per address, is never refused.
func hostileReloads(t *testing.T, bin string) {
	p := startRelayProc(t, bin, 1024, "--max-subscribers-per-addr", "2")
	for i := range 10 {
		st, err := tryStream(p.url(), streamOpts{local: "127.0.0.70"})
		if err != nil {
			t.Fatal(err)
		}
		if st.status != 200 {
			st.conn.Close()
			t.Fatalf("reload %d: status %d", i+1, st.status)
		}
		st.conn.Close()
		// A reload is never quicker than this (the page itself loads
		// first); the relay has two reloads' time to free the slot.
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	waitLong(t, 2*time.Second, "every stream removed after its client closed", func() bool {
		return p.metric("attackmap_relay_subscribers") == 0
	})
	t.Logf("last slot freed %v after close", time.Since(start).Round(time.Millisecond))
}

// The stream caps group IPv6 by /64 per address and by /48 per network,
// here through the forwarded address of a trusted proxy.
func hostileNetCaps(t *testing.T, bin string) {
	p := startRelayProc(t, bin, 1024, "--client-ip-header", "X-Forwarded-For",
		"--max-subscribers-per-addr", "2", "--max-subscribers-per-net", "3")
	for _, step := range []struct {
		from string
		want int
	}{
		{"2001:db8:1:1::1", 200},
		{"2001:db8:1:1::2", 200},
		{"2001:db8:1:1:ffff::9", 429}, // third in one /64
		{"2001:db8:1:2::1", 200},      // third in one /48
		{"2001:db8:1:3::1", 429},      // fourth in one /48
		{"2001:db8:2:1::1", 200},      // another /48
		{"198.51.100.1", 200},
	} {
		st := openStream(t, p.url(), streamOpts{header: http.Header{"X-Forwarded-For": {"203.0.113.1, " + step.from}}})
		if st.status != step.want {
			t.Fatalf("from %s: status %d, want %d", step.from, st.status, step.want)
		}
		if step.want == 429 && st.header.Get("Retry-After") == "" {
			t.Fatalf("429 without Retry-After")
		}
	}
	if n := p.metric(`attackmap_relay_subscribers_refused_total{limit="per_net"}`); n != 1 {
		t.Fatalf("per_net refusals %v", n)
	}
}

// GeoJSON is capped at 2,000 features; a stream resuming from far back
// gets "event: reset" and the newest 500 incidents, not the whole ring.
func hostileRingPulls(t *testing.T, bin string) {
	p := startRelayProc(t, bin, 1024)
	s := dialSensor(t, p.url(), p.tok)
	for b := range 6 {
		batch := make([]json.RawMessage, 100)
		for i := range batch {
			batch[i] = inc(fmt.Sprintf("r-%d", b*100+i), nil)
		}
		s.send(batch...)
	}
	for q, want := range map[string]int{"10000": 400, "2001": 400, "2000": 200} {
		resp, err := http.Get(p.url() + "/api/live-feed.geojson?limit=" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("geojson limit=%s: %d, want %d", q, resp.StatusCode, want)
		}
	}
	st := openStream(t, p.url(), streamOpts{query: "?lastEventId=0"})
	ev := st.next(wait)
	if ev.name != "reset" || ev.id != "100" || ev.data != `{"reason":"too_old","last_event_id":0,"next":101}` {
		t.Fatalf("first event %+v, want the reset", ev)
	}
	for want := 101; want <= 600; want++ {
		if ev, in := st.nextIncident(wait); ev.id != strconv.Itoa(want) || in.ID != fmt.Sprintf("r-%d", want-1) {
			t.Fatalf("got id %s (%s), want %d", ev.id, in.ID, want)
		}
	}
	near := openStream(t, p.url(), streamOpts{header: http.Header{"Last-Event-Id": {"550"}}})
	if ev := near.next(wait); ev.name != "incident" || ev.id != "551" {
		t.Fatalf("recent resume: first event %+v, want incident 551", ev)
	}
	if n := p.metric("attackmap_relay_stream_resets_total"); n != 1 {
		t.Fatalf("resets counted %v", n)
	}
}

// /metrics answers only on --metrics-listen; the public port says 404, and
// an empty --metrics-listen serves it nowhere.
func hostileMetrics(t *testing.T, bin string) {
	p := startRelayProc(t, bin, 1024)
	resp, err := http.Get(p.url() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || bytes.Contains(b, []byte("go_info")) {
		t.Fatalf("public /metrics: %d %.80q", resp.StatusCode, b)
	}
	if p.metrics == "" {
		t.Fatalf("no metrics listener:\n%s", p.logs.String())
	}
	resp, err = http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("attackmap_relay_connections ")) || !bytes.Contains(b, []byte("process_open_fds")) {
		t.Fatalf("metrics port: %d %.200q", resp.StatusCode, b)
	}
	off := startRelayProc(t, bin, 1024, "--metrics-listen", "")
	if strings.Contains(off.logs.String(), "metrics listening") {
		t.Fatalf("--metrics-listen \"\" still serves metrics:\n%s", off.logs.String())
	}
	off.mustBeHealthy("metrics off")
}
