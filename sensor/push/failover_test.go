package push

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/testkit"
	"github.com/coder/websocket"
)

// feed returns the ids the relay serves on /api/live-feed (the latest copy
// of each incident, oldest first, at most 500): what the relay took in,
// in its order, through its public surface rather than its files.
func (tr *testRelay) feed() []string {
	tr.t.Helper()
	resp, err := http.Get("http://" + tr.addr + "/api/live-feed?limit=500")
	if err != nil {
		tr.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tr.t.Fatalf("live feed: HTTP %d", resp.StatusCode)
	}
	var ins []struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ins); err != nil {
		tr.t.Fatal(err)
	}
	ids := make([]string, len(ins))
	for i, in := range ins {
		ids[i] = in.ID
	}
	return ids
}

// withToken makes tr accept the token of other (a cluster shares its token
// store).
func (tr *testRelay) withToken(other *testRelay) {
	tr.t.Helper()
	tr.tokFile, tr.tok = other.tokFile, other.tok
}

// seqOf is the journal position of a testIncident id.
func seqOf(t *testing.T, id string) int {
	t.Helper()
	n, err := strconv.Atoi(id[strings.LastIndexByte(id, ':')+1:])
	if err != nil {
		t.Fatalf("id %q", id)
	}
	return n
}

// closedURL is an ingest URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "ws://" + ln.Addr().String() + "/api/ingest"
	ln.Close()
	return u
}

// TestClosingTheFirstRelayMidStreamContinuesOnTheSecond: two real relays
// behind one destination; the first is shut down while batches are in
// flight. The forwarder moves to the second and loses nothing: every
// incident is on one relay or both (an incident the first stored without
// its ack reaching the sensor is sent again), each relay has them in
// journal order, and the cursor reaches the end.
func TestClosingTheFirstRelayMidStreamContinuesOnTheSecond(t *testing.T) {
	a, b := newTestRelay(t), newTestRelay(t)
	b.withToken(a)
	a.start()
	b.start()
	dir := t.TempDir()
	w := openWriter(t, dir)
	const n = 450 // the live feed shows up to 500 per relay
	logs := &testkit.SyncBuffer{}
	ws := NewWS([]string{a.url(), b.url()}, a.tok, WSOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	defer ws.Close()
	f, got := forwarder(t, dir, w, nil, slog.New(slog.NewTextHandler(logs, nil)))
	f.Sink = ws
	var acked atomic.Int64
	stopped := make(chan struct{})
	report := f.Delivered
	f.Delivered = func(k int) {
		// Stop the first relay from another goroutine once a third is
		// acknowledged, so that the shutdown meets batches in flight.
		if acked.Add(int64(k)) >= n/3 && acked.Load()-int64(k) < n/3 {
			go func() { a.stop(); close(stopped) }()
		}
		report(k)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	for i := range n {
		if err := w.AppendJSON(testIncident(i)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // a stream, not one burst
		}
	}
	awaitDelivered(t, got, n)
	<-stopped
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := f.Stats()
	if s.URLIndex != 1 || s.URL != b.url() || s.Failovers == 0 {
		t.Errorf("stats %+v: want delivering to the second URL after a failover", s)
	}
	if !strings.Contains(logs.String(), "failing over to the next relay URL") {
		t.Errorf("the failover is not logged:\n%s", logs.String())
	}
	a.start() // the first relay's store, read back through its feed
	union := map[string]bool{}
	for name, tr := range map[string]*testRelay{"first": a, "second": b} {
		ids := tr.feed()
		t.Logf("%s relay: %d incidents", name, len(ids))
		if len(ids) == 0 {
			t.Errorf("the %s relay received nothing", name)
		}
		last := -1
		for _, id := range ids {
			if k := seqOf(t, id); k <= last {
				t.Errorf("%s relay: %s after incident %d (out of journal order)", name, id, last)
			} else {
				last = k
			}
			union[id] = true
		}
	}
	for i := range n {
		if id := testIncident(i).ID; !union[id] {
			t.Errorf("incident %s is on neither relay", id)
		}
	}
	p := f.Reader.Committed()
	if fi, err := os.Stat(filepath.Join(dir, filepath.Base(p.File))); err != nil || p.Offset != fi.Size() {
		t.Errorf("cursor %+v short of the journal's end (%v)", p, err)
	}
}

// TestADeadFirstURLFailsOverAtStart: the first URL refuses connections;
// the start probe moves to the second at once (its own backoff is not
// spent), and everything is delivered there.
func TestADeadFirstURLFailsOverAtStart(t *testing.T) {
	b := newTestRelay(t)
	b.start()
	dir := t.TempDir()
	w := openWriter(t, dir)
	ws := NewWS([]string{closedURL(t), b.url()}, b.tok, WSOptions{})
	defer ws.Close()
	f, got := forwarder(t, dir, w, ws, nil)
	f.Backoff = Backoff{Min: time.Minute, Max: time.Minute} // a wait would fail the test
	run(t, f)
	for i := range 20 {
		w.AppendJSON(testIncident(i))
	}
	awaitDelivered(t, got, 20)
	if got := len(b.feed()); got != 20 {
		t.Errorf("second relay has %d incidents, want 20", got)
	}
	if s := f.Stats(); s.URLIndex != 1 || s.URLCount != 2 || s.Failovers != 1 || s.Failures != 1 {
		t.Errorf("stats %+v: want one failure, one failover, on URL 1 of 2", s)
	}
}

// TestARejectedTokenDoesNotFailOver: a 1008 is the same answer on every
// relay of a cluster, so the forwarder stays on its URL, says why, and
// keeps the cursor.
func TestARejectedTokenDoesNotFailOver(t *testing.T) {
	a, b := newTestRelay(t), newTestRelay(t)
	b.withToken(a)
	a.start()
	b.start()
	dir := t.TempDir()
	w := openWriter(t, dir)
	w.AppendJSON(testIncident(1))
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ws := NewWS([]string{a.url(), b.url()}, "not-the-token", WSOptions{Logger: log})
	defer ws.Close()
	f, _ := forwarder(t, dir, w, ws, log)
	run(t, f)
	eventually(t, func() bool { return f.Stats().Failures >= 3 })
	if s := f.Stats(); s.Failovers != 0 || s.URLIndex != 0 || !s.TokenRejected {
		t.Errorf("stats %+v: want the token rejected on URL 0, no failover", s)
	}
	if !strings.Contains(logs.String(), "not failing over: the token was rejected") {
		t.Errorf("the log does not say why it stays:\n%s", logs.String())
	}
	if f.Reader.Committed().Offset != 0 {
		t.Error("cursor advanced without an ack")
	}
}

// TestAStalledRelayIsLeftForTheNext: the first URL takes the socket and
// the batch but never acknowledges (a relay whose stream stopped
// answering); after the ack timeout the batch goes to the second relay.
func TestAStalledRelayIsLeftForTheNext(t *testing.T) {
	var batches atomic.Int64
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
			batches.Add(1) // read, never acknowledged
		}
	}))
	defer stall.Close()
	b := newTestRelay(t)
	b.start()
	dir := t.TempDir()
	w := openWriter(t, dir)
	ws := NewWS([]string{"ws" + strings.TrimPrefix(stall.URL, "http") + "/api/ingest", b.url()}, b.tok,
		WSOptions{AckTimeout: 200 * time.Millisecond})
	defer ws.Close()
	f, got := forwarder(t, dir, w, ws, nil)
	run(t, f)
	for i := range 10 {
		w.AppendJSON(testIncident(i))
	}
	awaitDelivered(t, got, 10)
	if batches.Load() == 0 {
		t.Error("the stalled relay never got a message")
	}
	if got := len(b.feed()); got != 10 {
		t.Errorf("second relay has %d incidents, want 10", got)
	}
	if s := f.Stats(); s.URLIndex != 1 || s.Failovers == 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestEachURLKeepsItsOwnBackoff: after a failure the next URL is tried at
// once; back on a URL that failed, what is left of its backoff is waited;
// a lone URL backs off as the forwarder always did; an ack clears it.
func TestEachURLKeepsItsOwnBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 8 * time.Second}
	err := fmt.Errorf("push: connecting: refused")
	t.Run("the next URL is tried at once", func(t *testing.T) {
		ws := NewWS([]string{"ws://a", "ws://b"}, "t", WSOptions{})
		ws.failed(0, err)
		if d := ws.retryIn(b); d != 0 {
			t.Errorf("retryIn = %v after moving to a fresh URL, want 0", d)
		}
		ws.failed(1, err)
		if d := ws.retryIn(b); d <= 0 || d > b.Min {
			t.Errorf("retryIn = %v back on the first URL, want its first backoff (at most %v)", d, b.Min)
		}
		if u, i, n := ws.URL(); u != "ws://a" || i != 0 || n != 2 || ws.Failovers() != 2 {
			t.Errorf("URL() = %s %d %d, failovers %d", u, i, n, ws.Failovers())
		}
	})
	t.Run("one URL backs off as before", func(t *testing.T) {
		ws := NewWS([]string{"ws://a"}, "t", WSOptions{})
		for n := 1; n <= 4; n++ {
			ws.failed(0, err)
			want := min(b.Min<<(n-1), b.Max)
			if d := ws.retryIn(b); d < want/2-10*time.Millisecond || d > want {
				t.Errorf("failure %d: retryIn = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
		if ws.Failovers() != 0 {
			t.Errorf("%d failovers with one URL", ws.Failovers())
		}
	})
	t.Run("a rejected token stays", func(t *testing.T) {
		ws := NewWS([]string{"ws://a", "ws://b"}, "t", WSOptions{})
		ws.failed(0, fmt.Errorf("push: closed: 1008 bad token: %w", ErrTokenRejected))
		if _, i, _ := ws.URL(); i != 0 || ws.Failovers() != 0 || ws.retryIn(b) <= 0 {
			t.Errorf("index %d, failovers %d, retryIn %v: want to stay and back off", i, ws.Failovers(), ws.retryIn(b))
		}
	})
}
