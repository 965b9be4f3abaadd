package push

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/attackmap/attackmap/sensor/journal"
)

// runUntil runs f until the returned stop is called; stop waits for Run.
func runUntil(t *testing.T, f *Forwarder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// journalEnd is the position after the last line of dir's only journal
// file.
func journalEnd(t *testing.T, dir string) journal.Position {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "incidents-*.jsonl"))
	if len(m) != 1 {
		t.Fatalf("journal files: %v", m)
	}
	st, err := os.Stat(m[0])
	if err != nil {
		t.Fatal(err)
	}
	return journal.Position{File: filepath.Base(m[0]), Offset: st.Size()}
}

func cursorAt(t *testing.T, dir string) journal.Position {
	t.Helper()
	p, err := journal.LoadCursor(filepath.Join(dir, "cursor-test.json"), "incidents")
	if err != nil {
		t.Fatal(err)
	}
	p.Inode = 0
	return p
}

func TestADestinationWhoseAcksAreDurableLaterIsResentFromTheTrailingCursor(t *testing.T) {
	const delay = 400 * time.Millisecond
	dir := t.TempDir()
	w := openWriter(t, dir)
	appendN := func(from, n int) {
		for i := from; i < from+n; i++ {
			if err := w.AppendJSON(testIncident(i)); err != nil {
				t.Fatal(err)
			}
		}
	}

	// First run: 50 incidents acknowledged. The cursor and the sent index
	// record them only once the delay passed.
	appendN(0, 50)
	sink := &countingSink{seen: map[string]int{}}
	f, got := forwarder(t, dir, w, sink, nil)
	f.AckDurableAfter = delay
	stop := runUntil(t, f)
	awaitDelivered(t, got, 50)
	ackedAt := time.Now()
	if p := cursorAt(t, dir); p.Offset != 0 {
		t.Errorf("cursor at %+v right after the ack, want it stored only %v later", p, delay)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "cursor-test.json.sent")); len(ents) > 0 {
		t.Errorf("the sent index records lines right after their ack: %v", ents)
	}
	end := journalEnd(t, dir)
	eventually(t, func() bool { return cursorAt(t, dir) == end })
	if waited := time.Since(ackedAt); waited < delay/2 {
		t.Errorf("cursor stored %v after the ack, want about %v", waited, delay)
	}

	// 50 more, acknowledged, then a crash before the delay passed (Run
	// stops and nothing calls Synced): the next start sends exactly those
	// again, from the trailing cursor.
	appendN(50, 50)
	awaitDelivered(t, got, 50)
	stop()
	if p := cursorAt(t, dir); p != end {
		t.Errorf("cursor %+v after a stop within the delay, want it still at %+v", p, end)
	}
	resent := &countingSink{seen: map[string]int{}}
	f2, got2 := forwarder(t, dir, w, resent, nil)
	f2.AckDurableAfter = delay
	stop2 := runUntil(t, f2)
	awaitDelivered(t, got2, 50)
	if ids, repeats := resent.counts(); ids != 50 || repeats != 0 {
		t.Errorf("after the crash: %d ids sent again (%d repeats), want the 50 not yet durable", ids, repeats)
	}
	for i := 50; i < 100; i++ {
		if resent.seen[testIncident(i).ID] != 1 {
			t.Fatalf("incident %d was not sent again once", i)
		}
	}

	// A clean stop with the destination synced: Synced stores the last
	// acknowledged position and the next start sends nothing again.
	stop2()
	if err := f2.Synced(); err != nil {
		t.Fatal(err)
	}
	if p, want := cursorAt(t, dir), journalEnd(t, dir); p != want {
		t.Errorf("cursor %+v after Synced, want %+v", p, want)
	}
	none := &countingSink{seen: map[string]int{}}
	f3, _ := forwarder(t, dir, w, none, nil)
	f3.AckDurableAfter = delay
	stop3 := runUntil(t, f3)
	time.Sleep(200 * time.Millisecond)
	stop3()
	if ids, _ := none.counts(); ids != 0 {
		t.Errorf("%d incidents sent again after a synced stop, want 0", ids)
	}
}

func TestAckDurableAfterZeroStoresTheCursorAtOnce(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, dir)
	for i := range 20 {
		if err := w.AppendJSON(testIncident(i)); err != nil {
			t.Fatal(err)
		}
	}
	f, got := forwarder(t, dir, w, &countingSink{seen: map[string]int{}}, nil)
	stop := runUntil(t, f)
	awaitDelivered(t, got, 20)
	stop()
	if p, want := cursorAt(t, dir), journalEnd(t, dir); p != want {
		t.Errorf("cursor %+v after a stop, want %+v", p, want)
	}
}
