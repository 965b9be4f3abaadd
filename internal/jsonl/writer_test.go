package jsonl

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestRollsOverAtUTCMidnight(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: time.Date(2026, 3, 22, 23, 59, 59, 0, time.UTC)}
	w, err := Open(dir, Options{Prefix: "incidents", Now: clk.Now, SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Append([]byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC))
	if err := w.Append([]byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"incidents-2026-03-22.jsonl": "{\"n\":1}\n",
		"incidents-2026-03-23.jsonl": "{\"n\":2}\n",
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
	names, err := List(dir, "incidents")
	if err != nil || strings.Join(names, ",") != "incidents-2026-03-22.jsonl,incidents-2026-03-23.jsonl" {
		t.Errorf("List = %v, %v", names, err)
	}
}

func TestRemovesFilesPastRetention(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"2026-03-01", "2026-03-19", "2026-03-20"} {
		os.WriteFile(filepath.Join(dir, "events-"+d+".jsonl"), []byte("{}\n"), 0o600)
	}
	os.WriteFile(filepath.Join(dir, "incidents-2026-03-01.jsonl"), []byte("{}\n"), 0o600)
	clk := &fakeClock{t: time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)}
	w, err := Open(dir, Options{Prefix: "events", RetentionDays: 2, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	names, _ := List(dir, "events")
	if got := strings.Join(names, ","); got != "events-2026-03-20.jsonl,events-2026-03-22.jsonl" {
		t.Errorf("after retention: %s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "incidents-2026-03-01.jsonl")); err != nil {
		t.Errorf("another prefix's file was touched: %v", err)
	}
}

func TestDropsAndCountsPastTheDailyCap(t *testing.T) {
	w, err := Open(t.TempDir(), Options{Prefix: "events", MaxDailyBytes: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Append([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if err := w.Append([]byte("0123456789")); !errors.Is(err, ErrDayFull) {
		t.Fatalf("second append: %v, want ErrDayFull", err)
	}
	if w.Dropped() != 1 {
		t.Fatalf("dropped = %d", w.Dropped())
	}
}

func TestRefusesNewlinesAndLongLines(t *testing.T) {
	w, err := Open(t.TempDir(), Options{Prefix: "events", MaxLineBytes: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Append([]byte("a\nb")); err == nil {
		t.Error("accepted a newline")
	}
	if err := w.Append([]byte("123456789")); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("long line: %v", err)
	}
}

func TestConcurrentAppendsStayWholeLines(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{Prefix: "events", SyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				w.AppendJSON(map[string]string{"line": fmt.Sprintf("%d-%d-%s", g, i, strings.Repeat("x", 200))})
			}
		}()
	}
	wg.Wait()
	w.Close()
	names, _ := List(dir, "events")
	b, _ := os.ReadFile(filepath.Join(dir, names[0]))
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) != 4000 {
		t.Fatalf("%d lines, want 4000", len(lines))
	}
	for _, l := range lines {
		if !bytes.HasPrefix(l, []byte(`{"line":"`)) || !bytes.HasSuffix(l, []byte(`"}`)) {
			t.Fatalf("torn line %q", l)
		}
	}
}

func TestSubscribersAreWokenWithoutBlocking(t *testing.T) {
	w, err := Open(t.TempDir(), Options{Prefix: "incidents"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ch, cancel := w.Subscribe()
	defer cancel()
	for range 3 { // nobody reads: must not block
		w.Append([]byte("{}"))
	}
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("no wake-up")
	}
}
