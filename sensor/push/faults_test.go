package push

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/testkit"
	"github.com/attackmap/attackmap/sensor/journal"
)

// countingSink acknowledges everything and counts each id it was sent.
type countingSink struct {
	mu   sync.Mutex
	seen map[string]int
}

func (s *countingSink) Deliver(_ context.Context, batch []json.RawMessage) (incident.Ack, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range batch {
		in, _ := incident.Decode(b)
		s.seen[in.ID]++
	}
	return incident.Ack{Accepted: len(batch)}, nil
}

func (s *countingSink) counts() (ids, repeats int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.seen {
		ids++
		repeats += n - 1
	}
	return ids, repeats
}

func TestACursorThatCannotBeStoredIsRetriedNotFatal(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, dir)
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	// The cursor lives in a directory that disappears, as a full or
	// failing disk would refuse it.
	cdir := filepath.Join(dir, "state")
	os.Mkdir(cdir, 0o750)
	r, err := journal.OpenReader(dir, journal.ReaderOptions{Prefix: "incidents",
		CursorPath: filepath.Join(cdir, "cursor.json"), Check: CheckLine, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	os.RemoveAll(cdir)
	os.WriteFile(cdir, nil, 0o640) // not a directory: every write there fails
	sink := &countingSink{seen: map[string]int{}}
	got := make(chan int, 1024)
	f := &Forwarder{Name: "test", Reader: r, Sink: sink, Logger: log, Delivered: func(n int) { got <- n }}
	run(t, f)
	for i := range 30 {
		w.AppendJSON(testIncident(i))
	}
	awaitDelivered(t, got, 30)
	time.Sleep(100 * time.Millisecond)
	if s := f.Stats(); !s.CursorStuck || s.CommitFailures == 0 {
		t.Fatalf("stats %+v", s)
	}
	if n := strings.Count(logs.String(), "cannot store the cursor"); n != 1 {
		t.Errorf("%d lines about the cursor, want 1:\n%s", n, logs.String())
	}
	os.Remove(cdir)
	os.Mkdir(cdir, 0o750) // space is back
	deadline := time.Now().Add(3 * commitRetry)
	for f.Stats().CursorStuck && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if f.Stats().CursorStuck {
		t.Fatalf("cursor still not stored after %v:\n%s", 3*commitRetry, logs.String())
	}
	p, err := journal.LoadCursor(filepath.Join(cdir, "cursor.json"), "incidents")
	if err != nil || p.File == "" || p.Offset == 0 {
		t.Fatalf("cursor %+v, %v", p, err)
	}
	if ids, repeats := sink.counts(); ids != 30 || repeats != 0 {
		t.Fatalf("%d ids, %d repeats", ids, repeats)
	}
}

func TestAStuckCursorStopsDeliveryAfterMaxUnpersisted(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, dir)
	cdir := filepath.Join(dir, "state")
	r, err := journal.OpenReader(dir, journal.ReaderOptions{Prefix: "incidents",
		CursorPath: filepath.Join(cdir, "cursor.json"), Check: CheckLine})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cdir, nil, 0o640) // not a directory: every write there fails
	defer r.Close()
	sink := &countingSink{seen: map[string]int{}}
	f := &Forwarder{Name: "test", Reader: r, Sink: sink}
	run(t, f)
	for i := range maxUnpersisted + 500 {
		w.AppendJSON(testIncident(i))
	}
	time.Sleep(time.Second)
	ids, _ := sink.counts()
	if ids < maxUnpersisted || ids >= maxUnpersisted+incident.MaxBatchIncidents {
		t.Fatalf("delivered %d with the cursor stuck, want %d to %d", ids, maxUnpersisted, maxUnpersisted+incident.MaxBatchIncidents-1)
	}
	os.Remove(cdir)
	os.Mkdir(cdir, 0o750)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ids, _ = sink.counts(); ids == maxUnpersisted+500 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ids, repeats := sink.counts(); ids != maxUnpersisted+500 || repeats != 0 {
		t.Fatalf("after the disk came back: %d ids, %d repeats", ids, repeats)
	}
}

func TestARestartWithAnUnreadableCursorResendsNothing(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, dir)
	for i := range 300 {
		w.AppendJSON(testIncident(i))
	}
	sink := &countingSink{seen: map[string]int{}}
	f, got := forwarder(t, dir, w, sink, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	awaitDelivered(t, got, 300)
	cancel()
	<-done
	f.Reader.Close()
	os.WriteFile(filepath.Join(dir, "cursor-test.json"), []byte("{\"file\":"), 0o640)
	for i := 300; i < 310; i++ {
		w.AppendJSON(testIncident(i))
	}
	f, got = forwarder(t, dir, w, sink, nil)
	run(t, f)
	awaitDelivered(t, got, 10)
	time.Sleep(100 * time.Millisecond)
	if ids, repeats := sink.counts(); ids != 310 || repeats != 0 {
		t.Fatalf("%d ids, %d repeats (a corrupt cursor replayed the journal)", ids, repeats)
	}
	if s := f.Stats(); s.Resent != 300 {
		t.Errorf("Resent = %d, want 300", s.Resent)
	}
}
