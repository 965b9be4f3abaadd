package push

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/internal/testkit"
	"github.com/attackmap/attackmap/relay"
	"github.com/attackmap/attackmap/relay/token"
	"github.com/attackmap/attackmap/sensor/journal"
)

// testRelay is the real relay served on a loopback listener that can be
// stopped and started again on the same address (same data directory).
type testRelay struct {
	t       testing.TB
	dir     string
	tokFile string
	tok     string
	addr    string

	mu     sync.Mutex
	r      *relay.Relay
	cancel context.CancelFunc
	done   chan error
}

func newTestRelay(t testing.TB) *testRelay {
	t.Helper()
	dir := t.TempDir()
	tr := &testRelay{t: t, dir: dir, tokFile: filepath.Join(dir, "tokens")}
	tok, err := token.Add(tr.tokFile, "web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.tok = tok
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr.addr = ln.Addr().String()
	ln.Close()
	t.Cleanup(tr.stop)
	return tr
}

func (tr *testRelay) url() string { return "ws://" + tr.addr + "/api/ingest" }

func (tr *testRelay) start() {
	tr.t.Helper()
	r, err := relay.New(relay.Config{DataDir: filepath.Join(tr.dir, "relay"), TokenFile: tr.tokFile,
		IngestRate: -1, RetentionDays: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tr.t.Fatal(err)
	}
	var ln net.Listener
	// The port was just released by the previous instance; a listener
	// may take a moment to become free again.
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", tr.addr)
		if err == nil {
			break
		}
		if i > 100 {
			tr.t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	tr.mu.Lock()
	tr.r, tr.cancel, tr.done = r, cancel, done
	tr.mu.Unlock()
}

func (tr *testRelay) stop() {
	tr.mu.Lock()
	r, cancel, done := tr.r, tr.cancel, tr.done
	tr.r = nil
	tr.mu.Unlock()
	if r == nil {
		return
	}
	cancel()
	<-done
	r.Close()
}

// history counts the incidents the relay serves on its live feed (the
// latest copy of each, up to 500): what it took in, seen through its
// public surface, whatever its store. That the sensor sent each only once
// is checked on the sensor's side (ackCounter).
func (tr *testRelay) history() map[string]int {
	tr.t.Helper()
	counts := map[string]int{}
	for _, id := range tr.feed() {
		counts[id]++
	}
	return counts
}

// ackCounter wraps a sink and counts, by id, the incidents of each
// acknowledged batch: an id acknowledged twice was sent again after its
// ack (a repeat the relay would have to drop).
type ackCounter struct {
	Sink
	mu    sync.Mutex
	acked map[string]int
}

func (a *ackCounter) Deliver(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
	ack, err := a.Sink.Deliver(ctx, batch)
	if err == nil {
		a.mu.Lock()
		for _, raw := range batch {
			if in, err := incident.Decode(raw); err == nil {
				a.acked[in.ID]++
			}
		}
		a.mu.Unlock()
	}
	return ack, err
}

// repeats lists the ids acknowledged more than once.
func (a *ackCounter) repeats() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for id, n := range a.acked {
		if n > 1 {
			out = append(out, id)
		}
	}
	return out
}

func testIncident(i int) *incident.Incident {
	in := &incident.Incident{
		ID: fmt.Sprintf("ssh_bruteforce:127.0.0.%d:%d", i%250+1, i), Source: "ssh_bruteforce",
		Severity: incident.High, IP: fmt.Sprintf("127.0.0.%d", i%250+1),
		TS: time.Date(2026, 3, 22, 14, 32, 1, 0, time.UTC), Count: 5,
	}
	return in
}

// forwarder wires a journal in dir to sink; deliveries are reported on the
// returned channel (buffered, never blocking the forwarder).
func forwarder(t testing.TB, dir string, w *jsonl.Writer, sink Sink, log *slog.Logger) (*Forwarder, <-chan int) {
	t.Helper()
	opts := journal.ReaderOptions{Prefix: "incidents", CursorPath: filepath.Join(dir, "cursor-test.json"), Check: CheckLine, Logger: log}
	if w != nil {
		ch, cancel := w.Subscribe()
		t.Cleanup(cancel)
		opts.Wake = ch
	}
	r, err := journal.OpenReader(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	got := make(chan int, 1<<16)
	f := &Forwarder{Name: "test", Reader: r, Sink: sink, Logger: log,
		Backoff:   Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		Delivered: func(n int) { got <- n }}
	return f, got
}

func run(t testing.TB, f *Forwarder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// awaitDelivered waits until n incidents were acknowledged.
func awaitDelivered(t testing.TB, got <-chan int, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	total := 0
	for total < n {
		select {
		case k := <-got:
			total += k
		case <-deadline:
			t.Fatalf("%d of %d delivered after 30 s", total, n)
		}
	}
}

func openWriter(t testing.TB, dir string) *jsonl.Writer {
	t.Helper()
	w, err := jsonl.Open(dir, jsonl.Options{Prefix: "incidents", SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestDeliversEverythingToTheRealRelayAndCommits(t *testing.T) {
	tr := newTestRelay(t)
	tr.start()
	dir := t.TempDir()
	w := openWriter(t, dir)
	const n = 250
	for i := range n {
		if err := w.AppendJSON(testIncident(i)); err != nil {
			t.Fatal(err)
		}
	}
	ws := NewWS([]string{tr.url()}, tr.tok, WSOptions{})
	defer ws.Close()
	acks := &ackCounter{Sink: ws, acked: map[string]int{}}
	f, got := forwarder(t, dir, w, acks, nil)
	run(t, f)
	awaitDelivered(t, got, n)
	if r := acks.repeats(); len(r) > 0 {
		t.Errorf("acknowledged more than once: %v", r)
	}
	h := tr.history()
	if len(h) != n {
		t.Fatalf("relay has %d ids, want %d", len(h), n)
	}
	for id, c := range h {
		if c != 1 {
			t.Errorf("%s stored %d times", id, c)
		}
	}
	if s := f.Stats(); s.Delivered != n || s.Rejected != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestRejectedIncidentsAreLoggedAndSkipped(t *testing.T) {
	tr := newTestRelay(t)
	tr.start()
	dir := t.TempDir()
	w := openWriter(t, dir)
	w.Append([]byte(`{"id":"x:1","source":"ssh_bruteforce","severity":"hgih","ip":"127.0.0.1","ts":"2026-03-22T14:32:01Z"}`))
	w.Append([]byte(`this is not JSON`))
	w.AppendJSON(testIncident(1))
	logs := &testkit.SyncBuffer{}
	ws := NewWS([]string{tr.url()}, tr.tok, WSOptions{})
	defer ws.Close()
	f, got := forwarder(t, dir, w, ws, slog.New(slog.NewTextHandler(logs, nil)))
	run(t, f)
	awaitDelivered(t, got, 1)
	out := logs.String()
	if !strings.Contains(out, "relay rejected an incident") || !strings.Contains(out, `severity: unknown value \"hgih\"`) || !strings.Contains(out, "id=x:1") {
		t.Errorf("rejection not logged with the relay's reason:\n%s", out)
	}
	if !strings.Contains(out, "skipping malformed line") {
		t.Errorf("malformed line not logged:\n%s", out)
	}
	if s := f.Stats(); s.Rejected != 1 || s.Delivered != 1 || s.Malformed != 1 || s.Failures != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestRelayDownAndBack(t *testing.T) {
	tr := newTestRelay(t)
	dir := t.TempDir()
	w := openWriter(t, dir)
	ws := NewWS([]string{tr.url()}, tr.tok, WSOptions{})
	defer ws.Close()
	acks := &ackCounter{Sink: ws, acked: map[string]int{}}
	logs := &testkit.SyncBuffer{}
	f, got := forwarder(t, dir, w, acks, slog.New(slog.NewTextHandler(logs, nil)))
	run(t, f)
	// Down from the start: incidents pile up in the journal.
	for i := range 150 {
		w.AppendJSON(testIncident(i))
	}
	eventually(t, func() bool { return f.Stats().Failures >= 3 }) // a few reconnects failed
	tr.start()
	awaitDelivered(t, got, 150)
	// Down again in the middle, and back.
	tr.stop()
	for i := 150; i < 300; i++ {
		w.AppendJSON(testIncident(i))
	}
	tr.start()
	awaitDelivered(t, got, 150)
	if r := acks.repeats(); len(r) > 0 {
		t.Errorf("acknowledged more than once: %v", r)
	}
	h := tr.history()
	if len(h) != 300 {
		t.Fatalf("relay has %d ids, want 300", len(h))
	}
	for id, c := range h {
		if c != 1 {
			t.Errorf("%s stored %d times", id, c)
		}
	}
	if !strings.Contains(logs.String(), "delivery failed, retrying") {
		t.Errorf("failures not logged:\n%s", logs.String())
	}
}

func TestABadTokenIsReportedWithTheRelaysReason(t *testing.T) {
	tr := newTestRelay(t)
	tr.start()
	dir := t.TempDir()
	w := openWriter(t, dir)
	w.AppendJSON(testIncident(1))
	logs := &testkit.SyncBuffer{}
	ws := NewWS([]string{tr.url()}, "not-the-token", WSOptions{})
	defer ws.Close()
	f, _ := forwarder(t, dir, w, ws, slog.New(slog.NewTextHandler(logs, nil)))
	run(t, f)
	eventually(t, func() bool { return f.Stats().Failures >= 2 })
	if out := logs.String(); !strings.Contains(out, "401") && !strings.Contains(out, "1008") {
		t.Errorf("no reason in the log:\n%s", out)
	}
	if f.Reader.Committed().Offset != 0 {
		t.Error("cursor advanced without an ack")
	}
}

func TestBigIncidentsAreSplitWithinTheMessageLimit(t *testing.T) {
	var sizes []int
	var mu sync.Mutex
	sink := SinkFunc(func(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
		msg := appendBatch(nil, 1, batch)
		mu.Lock()
		sizes = append(sizes, len(msg))
		mu.Unlock()
		if len(msg) > incident.MaxMessageBytes || len(batch) > incident.MaxBatchIncidents {
			return incident.Ack{}, fmt.Errorf("message of %d bytes, %d incidents", len(msg), len(batch))
		}
		return incident.Ack{Type: incident.TypeAck, Accepted: len(batch)}, nil
	})
	dir := t.TempDir()
	w := openWriter(t, dir)
	for i := range 100 {
		in := testIncident(i)
		in.Summary = strings.Repeat("s", incident.MaxSummary)
		in.Evidence = &incident.Evidence{}
		for range 10 {
			in.Evidence.Paths = append(in.Evidence.Paths, strings.Repeat("/p", 120))
		}
		if err := w.AppendJSON(in); err != nil {
			t.Fatal(err)
		}
	}
	f, got := forwarder(t, dir, w, sink, nil)
	run(t, f)
	awaitDelivered(t, got, 100)
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) < 2 {
		t.Fatalf("one message of %v bytes", sizes)
	}
	if s := f.Stats(); s.Failures != 0 {
		t.Fatalf("a message over the limit was sent: %+v", s)
	}
}

func TestAnAckThatDoesNotAddUpIsRetried(t *testing.T) {
	calls := 0
	sink := SinkFunc(func(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
		calls++
		if calls == 1 {
			return incident.Ack{Type: incident.TypeAck, Accepted: len(batch) + 5}, nil
		}
		return incident.Ack{Type: incident.TypeAck, Accepted: len(batch)}, nil
	})
	dir := t.TempDir()
	w := openWriter(t, dir)
	w.AppendJSON(testIncident(1))
	f, got := forwarder(t, dir, w, sink, nil)
	run(t, f)
	awaitDelivered(t, got, 1)
	if f.Stats().Failures != 1 {
		t.Fatalf("stats %+v", f.Stats())
	}
}

func TestBackoffIsCappedAndJittered(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	for n := 1; n < 40; n++ {
		d := b.wait(n)
		want := min(b.Min<<min(n-1, 30), b.Max)
		if d < want/2 || d > want {
			t.Fatalf("wait(%d) = %v, want in [%v, %v]", n, d, want/2, want)
		}
	}
}

// eventually waits for cond, which depends on the forwarder's retry timer
// (nothing to subscribe to), checking every 10 ms for at most 30 s.
func eventually(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A relay that accepts the connection and never answers: the forwarder
// gives up after the dial timeout, retries, and the cursor stays.
func TestARelayThatNeverAnswersIsRetriedWithoutCommit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			return
		}
		c, _, _ := hj.Hijack()
		defer c.Close()
		time.Sleep(2 * time.Second) // never answers the upgrade
	}))
	defer srv.Close()
	dir := t.TempDir()
	w := openWriter(t, dir)
	w.AppendJSON(testIncident(1))
	ws := NewWS([]string{"ws" + strings.TrimPrefix(srv.URL, "http") + "/api/ingest"}, "t", WSOptions{DialTimeout: 100 * time.Millisecond})
	defer ws.Close()
	f, _ := forwarder(t, dir, w, ws, nil)
	run(t, f)
	eventually(t, func() bool { return f.Stats().Failures >= 2 })
	if f.Reader.Committed().Offset != 0 {
		t.Fatal("cursor advanced without an ack")
	}
}

func TestCheckLineSkipsInvalidUTF8(t *testing.T) {
	good := []byte(`{"id":"a","source":"web_scan","severity":"low","ip":"203.0.113.9","ts":"2026-03-22T14:32:01Z"}`)
	if err := CheckLine(good); err != nil {
		t.Fatalf("good line: %v", err)
	}
	bad := []byte("{\"id\":\"a\xff\",\"source\":\"web_scan\",\"severity\":\"low\",\"ip\":\"203.0.113.9\",\"ts\":\"2026-03-22T14:32:01Z\"}")
	if err := CheckLine(bad); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("invalid UTF-8 line: %v, want an error so the reader skips it", err)
	}
}
