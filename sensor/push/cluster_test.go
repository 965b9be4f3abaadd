package push

import (
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/testkit"
	"github.com/attackmap/attackmap/relay"
	"github.com/attackmap/attackmap/relay/token"
)

// clusterNode is one relay of a real in-process relay cluster: its own
// data directory and embedded NATS node, the nodes routed to each other,
// one JetStream stream replicated on all three.
type clusterNode struct {
	r    *relay.Relay
	srv  *httptest.Server
	once sync.Once
}

func (c *clusterNode) url() string {
	return "ws" + strings.TrimPrefix(c.srv.URL, "http") + "/api/ingest"
}

// kill cuts every connection and stops the relay and its NATS node.
func (c *clusterNode) kill() {
	c.once.Do(func() {
		c.srv.CloseClientConnections()
		c.srv.Close()
		c.r.Close()
	})
}

// startRelayCluster starts n relays forming one NATS cluster on loopback
// (all at once: each waits for a quorum) and returns them with the token
// of host web-1, valid on all (one token file seeds the shared store).
func startRelayCluster(t *testing.T, n int) ([]*clusterNode, string) {
	t.Helper()
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tokens")
	tok, err := token.Add(tokFile, "web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	routes := testkit.FreeAddrs(t, n)
	var urls []string
	for _, a := range routes {
		urls = append(urls, "nats://"+a)
	}
	nodes := make([]*clusterNode, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cfg := relay.Config{DataDir: filepath.Join(dir, "relay"+strconv.Itoa(i)), TokenFile: tokFile,
			NATSListen: routes[i], NATSRoutes: urls, NATSName: "relay-" + strconv.Itoa(i),
			IngestRate: -1, RetentionDays: -1, NATSStartTimeout: time.Minute, Logger: slog.New(slog.DiscardHandler)}
		wg.Go(func() {
			r, err := relay.New(cfg)
			if err != nil {
				errs[i] = err
				return
			}
			nodes[i] = &clusterNode{r: r, srv: httptest.NewServer(r.Handler())}
		})
	}
	wg.Wait()
	for i, c := range nodes {
		if c != nil {
			t.Cleanup(c.kill)
		}
		if errs[i] != nil {
			t.Fatalf("relay %d: %v", i, errs[i])
		}
	}
	return nodes, tok
}

// TestARelayClusterLosesNothingWhenTheSensorsRelayDies: a sensor lists
// the three relays of a real cluster; the one it pushes to is killed
// while batches are in flight. It fails over to the next, and the
// cluster's feed (read on a surviving relay) holds every incident once, in
// journal order: what the dead relay acknowledged is replicated, and what
// was sent again is dropped as a repeat.
func TestARelayClusterLosesNothingWhenTheSensorsRelayDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster; some seconds")
	}
	nodes, tok := startRelayCluster(t, 3)
	dir := t.TempDir()
	w := openWriter(t, dir)
	const n = 300 // under the live feed's 500
	ws := NewWS([]string{nodes[0].url(), nodes[1].url(), nodes[2].url()}, tok, WSOptions{})
	defer ws.Close()
	f, got := forwarder(t, dir, w, ws, nil)
	var acked atomic.Int64
	report := f.Delivered
	f.Delivered = func(k int) {
		if acked.Add(int64(k)) >= n/3 && acked.Load()-int64(k) < n/3 {
			go nodes[0].kill()
		}
		report(k)
	}
	run(t, f)
	for i := range n {
		if err := w.AppendJSON(testIncident(i)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	awaitDelivered(t, got, n)
	if s := f.Stats(); s.URLIndex == 0 || s.Failovers == 0 {
		t.Errorf("stats %+v: want a failover away from the killed relay", s)
	}
	surviving := &testRelay{t: t, addr: strings.TrimPrefix(nodes[2].srv.URL, "http://")}
	var ids []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The surviving relay's ordered consumer may trail the acks.
		if ids = surviving.feed(); len(ids) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var want []string
	for i := range n {
		want = append(want, testIncident(i).ID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("the cluster's feed has %d incidents, want %d in journal order; first difference at %d",
			len(ids), n, firstDiff(ids, want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
