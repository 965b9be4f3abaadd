package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/testkit"
	"github.com/attackmap/attackmap/relay/token"
)

// clusterRelay is one relay of an in-process cluster.
type clusterRelay struct {
	*Relay
	url  string
	srv  *httptest.Server
	dir  string
	cfg  Config
	once sync.Once
}

// kill stops the relay abruptly: every client connection is cut and its
// NATS node leaves the cluster.
func (c *clusterRelay) kill() {
	c.once.Do(func() {
		c.srv.CloseClientConnections()
		c.srv.Close()
		_ = c.Relay.Close()
	})
}

// startCluster starts n relays whose embedded NATS servers form one
// cluster on loopback, all at once (each waits for a quorum). Every relay
// gets its own data directory and token file; tokens[i] is the token of
// host "web-i" (i from 1), whose line is in relay i-1's file only: the
// bucket makes it valid on all.
func startCluster(t *testing.T, n int) (relays []*clusterRelay, tokens []string) {
	t.Helper()
	routes := testkit.FreeAddrs(t, n)
	var urls []string
	for _, a := range routes {
		urls = append(urls, "nats://"+a)
	}
	relays = make([]*clusterRelay, n)
	tokens = make([]string, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		dir := t.TempDir()
		tf := filepath.Join(dir, "tokens")
		tok, err := token.Add(tf, "web-"+strconv.Itoa(i+1), &incident.Location{Lat: 50, Lon: float64(i)})
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = tok
		cfg := Config{DataDir: filepath.Join(dir, "data"), TokenFile: tf, NATSListen: routes[i], NATSRoutes: urls,
			NATSName: "relay-" + strconv.Itoa(i), IngestRate: -1, Heartbeat: time.Hour, NATSStartTimeout: time.Minute,
			Logger: testLogger(t, "relay-"+strconv.Itoa(i))}
		wg.Go(func() {
			r, err := New(cfg)
			if err != nil {
				errs[i] = err
				return
			}
			srv := httptest.NewServer(r.Handler())
			relays[i] = &clusterRelay{Relay: r, url: srv.URL, srv: srv, dir: dir, cfg: cfg}
		})
	}
	wg.Wait()
	for i, c := range relays {
		if c != nil {
			t.Cleanup(c.kill)
		}
		if errs[i] != nil {
			t.Fatalf("relay %d: %v", i, errs[i])
		}
	}
	return relays, tokens
}

// sseIncident is what a test client keeps of an incident event.
type sseIncident struct{ id, incident string }

// collect reads n incident events from st.
func collect(t *testing.T, st *stream, n int) []sseIncident {
	t.Helper()
	var out []sseIncident
	for len(out) < n {
		ev, in := st.nextIncident(20 * time.Second)
		out = append(out, sseIncident{ev.id, in.ID})
	}
	return out
}

// pushAll sends ids in batches of 50 through one ingest socket.
func pushAll(t *testing.T, base, tok string, ids []string) {
	t.Helper()
	s := dialSensor(t, base, tok)
	for i := 0; i < len(ids); i += 50 {
		var batch []json.RawMessage
		for _, id := range ids[i:min(i+50, len(ids))] {
			batch = append(batch, inc(id, nil))
		}
		if ack := s.send(batch...); ack.Accepted != len(batch) {
			t.Fatalf("ack %+v", ack)
		}
	}
}

func TestClusterRelaysServeOneFeedAndResumeAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster; some seconds")
	}
	rs, toks := startCluster(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	if a.nats.replicas != 3 || a.clusterSize() != 3 {
		t.Fatalf("replicas %d, cluster size %d; want 3 and 3", a.nats.replicas, a.clusterSize())
	}
	onB := openStream(t, b.url, streamOpts{})
	onC := openStream(t, c.url, streamOpts{})
	waitFor(t, "subscribers", func() bool { return b.hub.Len() == 1 && c.hub.Len() == 1 })

	var ids []string
	for i := range 300 {
		ids = append(ids, fmt.Sprintf("c%03d", i))
	}
	aIngest0, aStream0, bStream0 := a.preparedIngest.Load(), a.preparedStream.Load(), b.preparedStream.Load()
	pushAll(t, a.url, toks[0], ids[:200])
	gotB := collect(t, onB, 100)
	gotC := collect(t, onC, 200)
	onB.conn.Close()

	t.Run("the ingesting relay prepares each incident once, the others prepare what they read", func(t *testing.T) {
		if got := a.preparedIngest.Load() - aIngest0; got != 200 {
			t.Errorf("A prepared %d on ingest, want 200", got)
		}
		// Before the cache A prepared all 200 again when reading them
		// back; a consumer reset in the cluster's first seconds may
		// still make it re-read (and so prepare) a few.
		if got := a.preparedStream.Load() - aStream0; got >= 100 {
			t.Errorf("A prepared %d of its own 200 again from the stream", got)
		}
		// B's client stopped at 100; B reads on.
		waitFor(t, "B to prepare all 200 it reads", func() bool { return b.preparedStream.Load()-bStream0 >= 200 })
		t.Logf("A: %d prepared on ingest, %d from the stream; B: %d from the stream", a.preparedIngest.Load()-aIngest0, a.preparedStream.Load()-aStream0, b.preparedStream.Load()-bStream0)
		if b.preparedIngest.Load() != 0 || b.own.count() != 0 {
			t.Errorf("B ingested nothing but prepared %d on ingest, holds %d", b.preparedIngest.Load(), b.own.count())
		}
	})

	t.Run("every incident once, in the same order, with the same ids on every relay", func(t *testing.T) {
		for i, e := range gotC {
			if e.incident != ids[i] {
				t.Fatalf("C event %d is %s, want %s", i, e.incident, ids[i])
			}
			if i > 0 {
				prev, _ := strconv.ParseUint(gotC[i-1].id, 10, 64)
				if cur, _ := strconv.ParseUint(e.id, 10, 64); cur <= prev {
					t.Fatalf("C ids not increasing: %s after %s", e.id, gotC[i-1].id)
				}
			}
		}
		for i, e := range gotB {
			if e != gotC[i] {
				t.Fatalf("B event %d is %+v, C's is %+v", i, e, gotC[i])
			}
		}
	})

	t.Run("a token from one relay's file is valid on all, and its removal closes its sockets everywhere", func(t *testing.T) {
		// web-3's line is only in C's file.
		s := dialSensor(t, a.url, toks[2])
		if ack := s.send(inc("from-web-3", nil)); ack.Accepted != 1 {
			t.Fatalf("ack %+v", ack)
		}
		tok4, err := token.Add(c.cfg.TokenFile, "web-4", nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var c4 *websocket.Conn
		for c4 == nil {
			if time.Since(start) > time.Second {
				t.Fatal("a token added on C is not valid on A within a second")
			}
			if conn, err := dialIngest(a.url, tok4); err == nil {
				if _, err := (&sensor{t: t, c: conn}).sendRaw(websocket.MessageText, []byte(`{"type":"incidents","batch":1,"incidents":[]}`)); err == nil {
					c4 = conn
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		defer c4.CloseNow()
		if err := token.Remove(c.cfg.TokenFile, "web-3"); err != nil {
			t.Fatal(err)
		}
		code, reason, _, _ := readClose(t, s.c, 2*time.Second)
		if code != websocket.StatusPolicyViolation || reason != "token revoked" {
			t.Fatalf("web-3's socket on A: closed %d %q, want 1008 token revoked", code, reason)
		}
		if _, err := dialIngestExpectClose(a.url, toks[2]); err == nil {
			t.Fatal("a removed token still opens a socket")
		}
	})
	t.Run("a client of a killed relay resumes on another with nothing missed or repeated", func(t *testing.T) {
		b.kill()
		pushAll(t, a.url, toks[0], ids[200:])
		// The browser reconnects to C (DNS round robin) with the last id
		// it saw on B.
		last := gotB[len(gotB)-1].id
		re := openStream(t, c.url, streamOpts{header: http.Header{"Last-Event-Id": {last}}})
		want := append(append(append([]string{}, ids[100:200]...), "from-web-3"), ids[200:]...)
		rest := collect(t, re, len(want))
		re.expectQuiet(200 * time.Millisecond)
		// Nothing missed, nothing twice, ids increasing.
		count := map[string]int{}
		for i, e := range rest {
			count[e.incident]++
			if i > 0 {
				prev, _ := strconv.ParseUint(rest[i-1].id, 10, 64)
				if cur, _ := strconv.ParseUint(e.id, 10, 64); cur <= prev {
					t.Fatalf("after resuming at %s: id %s after %s", last, e.id, rest[i-1].id)
				}
			}
		}
		for _, id := range want {
			if count[id] != 1 {
				t.Fatalf("after resuming at %s: %s delivered %d times, want once", last, id, count[id])
			}
		}
		// In the stream's order, which every relay serves. It is the
		// push order except for a batch caught by B's death (B may have
		// led the stream): its messages are published again one by one
		// after the election, so a later one may be stored first.
		_, _, stored := historyIDs(t, c.url, "limit=50000", nil)
		if len(stored) < 100+len(want) {
			t.Fatalf("C's history holds %d incidents, want %d", len(stored), 100+len(want))
		}
		for i, e := range rest {
			if e.incident != stored[100+i] {
				t.Fatalf("after resuming at %s: event %d is %s, the stream's %s", last, i, e.incident, stored[100+i])
			}
		}
	})

}

func TestClusterNodeDeathLosesNoAcknowledgedIncident(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster; some seconds")
	}
	rs, toks := startCluster(t, 3)
	a := rs[0]
	// A sensor on A sends a burst; relay B (and its NATS node, maybe the
	// stream's leader) dies in the middle. Like the real sensor, the
	// pusher resends a batch until it is acknowledged.
	var acked []string
	var mu sync.Mutex
	done := make(chan struct{})
	var slowest time.Duration
	go func() {
		defer close(done)
		// Relay B (and its NATS node) dies after the tenth batch.
		slowest = pushUntilAcked(t, func() (*websocket.Conn, error) { return dialIngest(a.url, toks[0]) }, "d", 40, 25,
			func(i int) {
				if i == 10 {
					rs[1].kill()
				}
			},
			func(ids []string) {
				mu.Lock()
				acked = append(acked, ids...)
				mu.Unlock()
			})
	}()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("the burst did not finish within 90 s: ingest did not resume")
	}
	// A batch caught by the death waits for the new stream leader (a
	// Raft election: 4 to 9 s) and is sent again; nothing is lost, and
	// ingest goes on within seconds.
	if slowest > 20*time.Second {
		t.Errorf("a batch waited %v for its ack across the node's death, want seconds", slowest)
	}
	// Every acknowledged incident is in the stream, on the surviving
	// relays, exactly once.
	for _, r := range []*clusterRelay{rs[0], rs[2]} {
		_, _, got := historyIDs(t, r.url, "limit=50000", nil)
		count := map[string]int{}
		for _, id := range got {
			count[id]++
		}
		for _, id := range acked {
			if count[id] != 1 {
				t.Fatalf("%s: acknowledged incident %s stored %d times (history: %d incidents, first %q)", r.url, id, count[id], len(got), got[:min(3, len(got))])
			}
		}
		if len(acked) != 1000 {
			t.Fatalf("%d acknowledged, want 1000", len(acked))
		}
	}
	t.Logf("the slowest batch waited %v for its ack", slowest)
}

// TestLostStreamRefusesIngestKeepsServing: a relay on an external NATS
// server that goes away refuses ingest with a one-line reason (1013, try
// again later), says so in /healthz, keeps serving the feed, and takes
// ingest again by itself when the server is back.
func TestLostStreamRefusesIngestKeepsServing(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a NATS server; some seconds")
	}
	dir := t.TempDir()
	port := testkit.FreeAddrs(t, 1)[0]
	startNATS := func() *natsLog {
		tr := &Relay{cfg: Config{DataDir: dir, NATSClientListen: port}}
		l := &natsLog{}
		o, err := tr.serverOptions(l)
		if err != nil {
			t.Fatal(err)
		}
		o.DontListen = false
		ns, err := startServer(o, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.ns = ns
		return l
	}
	srv := startNATS()
	tr := startRelay(t, Config{NATSURLs: []string{"nats://" + port}})
	s := dialSensor(t, tr.url, tr.tok)
	s.send(inc("before", nil))
	srv.close()
	waitFor(t, "the relay to notice", func() bool { return !tr.nats.nc.IsConnected() })

	code, reason, errs, acked := func() (websocket.StatusCode, string, []incident.BatchError, bool) {
		msg, _ := json.Marshal(incident.Batch{Type: incident.TypeIncidents, Batch: 9, Incidents: []json.RawMessage{inc("during", nil)}})
		if err := s.c.Write(context.Background(), websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		return readClose(t, s.c, 20*time.Second)
	}()
	if acked || code != websocket.StatusTryAgainLater || len(errs) != 1 || !strings.Contains(errs[0].Error, "stream is unavailable") {
		t.Fatalf("closed %d %q, errors %+v, acked %v; want 1013 and one error saying the stream is unavailable", code, reason, errs, acked)
	}
	resp, err := http.Get(tr.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz %d while the stream is lost, want 503", resp.StatusCode)
	}
	var feed []incident.Incident
	getJSON(t, tr.url+"/api/live-feed", &feed)
	if len(feed) != 1 || feed[0].ID != "before" {
		t.Fatalf("feed while the stream is lost: %+v", feed)
	}
	srv = startNATS()
	defer srv.close()
	waitFor(t, "the relay to reconnect", func() bool { return tr.nats.nc.IsConnected() })
	if ack := dialSensor(t, tr.url, tr.tok).send(inc("during", nil)); ack.Accepted != 1 {
		t.Fatalf("after the server came back: %+v", ack)
	}
	getJSON(t, tr.url+"/api/live-feed", &feed)
	if len(feed) != 2 || feed[1].ID != "during" {
		t.Fatalf("feed after the server came back: %+v", feed)
	}
	_ = os.RemoveAll(dir)
}

// testLogger logs warnings and errors through t.Log, with a prefix.
func testLogger(t *testing.T, prefix string) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t, prefix}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct {
	t      *testing.T
	prefix string
}

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(w.prefix + ": " + strings.TrimSpace(string(b)))
	return len(b), nil
}

func TestNATSClientPortOffLoopbackNeedsAToken(t *testing.T) {
	for _, tc := range []struct {
		listen, token string
		ok            bool
	}{
		{"127.0.0.1:0", "", true},
		{"0.0.0.0:0", "", false},
		{"0.0.0.0:0", "s3cret-token", true},
	} {
		t.Run(tc.listen+" token "+strconv.FormatBool(tc.token != ""), func(t *testing.T) {
			r, err := New(Config{NATSClientListen: tc.listen, NATSClientToken: tc.token})
			if err == nil {
				r.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok %v", err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "--nats-client-token") {
				t.Errorf("error %q does not say what to set", err)
			}
		})
	}
}
