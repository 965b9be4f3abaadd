package jsonl

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/testkit"
)

func TestOpenCutsATornLastLineAndSaysSo(t *testing.T) {
	for _, tc := range []struct{ name, before, after string }{
		{"fragment after whole lines", "{\"n\":1}\n{\"n\":2}\n{\"n\":3,\"x", "{\"n\":1}\n{\"n\":2}\n"},
		{"only a fragment", "{\"n\":1", ""},
		{"whole lines only", "{\"n\":1}\n", "{\"n\":1}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := &fakeClock{t: time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)}
			path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
			testkit.AppendFile(t, path, tc.before)
			logs := &testkit.SyncBuffer{}
			w, err := Open(dir, Options{Prefix: "incidents", Now: clk.Now, SyncInterval: -1,
				Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := w.Append([]byte(`{"n":9}`)); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if want := tc.after + "{\"n\":9}\n"; string(b) != want {
				t.Fatalf("file = %q, want %q", b, want)
			}
			cut := len(tc.before) - len(tc.after)
			st := w.Stats()
			if cut == 0 {
				if st.Torn != 0 || strings.Contains(logs.String(), "torn") {
					t.Errorf("cut nothing but Torn=%d, log:\n%s", st.Torn, logs.String())
				}
				return
			}
			if st.Torn != 1 || st.TornBytes != uint64(cut) {
				t.Errorf("Torn=%d TornBytes=%d, want 1 and %d", st.Torn, st.TornBytes, cut)
			}
			if got := strings.Count(logs.String(), "cut a torn last line"); got != 1 ||
				!strings.Contains(logs.String(), "path="+path) || !strings.Contains(logs.String(), fmt.Sprintf("bytes=%d", cut)) {
				t.Errorf("want one line with the path and bytes=%d, log:\n%s", cut, logs.String())
			}
		})
	}
}

func TestOpenLeavesAFileAnotherLiveWriterHoldsAlone(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)}
	first, err := Open(dir, Options{Prefix: "incidents", Now: clk.Now, SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// Bytes another live writer is in the middle of writing.
	path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
	testkit.AppendFile(t, path, `{"in":"progress`)
	second, err := Open(dir, Options{Prefix: "incidents", Now: clk.Now, SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if b, _ := os.ReadFile(path); string(b) != `{"in":"progress` {
		t.Fatalf("a live writer's bytes were cut: %q", b)
	}
}

// fill writes a file that takes every free byte of dir's file system and
// returns it.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "ballast")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return p
		}
	}
}

func TestAFullDiskHoldsLinesAndResumesByItself(t *testing.T) {
	dir := testkit.Tmpfs(t, "256k")
	clk := &fakeClock{t: time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)}
	logs := &testkit.SyncBuffer{}
	w, err := Open(dir, Options{Prefix: "incidents", Now: clk.Now, SyncInterval: -1, Backlog: 50,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	line := func(i int) []byte { return fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", 200)) }
	w.Append(line(0))
	ballast := fill(t, dir)
	lost := 0
	for i := 1; i <= 80; i++ {
		if err := w.Append(line(i)); errors.Is(err, ErrNotWritten) {
			lost++
		} else if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	st := w.Stats()
	// The page already allocated may take a few lines before the disk
	// refuses; of the rest, 50 are held and the others lost.
	if !st.Failing || st.Held != 50 || int(st.Lost) != lost || lost == 0 {
		t.Fatalf("stats %+v, %d lost", st, lost)
	}
	if n := strings.Count(logs.String(), "the disk refuses writes"); n != 1 {
		t.Errorf("%d full-disk lines for one episode, want 1:\n%s", n, logs.String())
	}
	for _, want := range []string{"path=" + filepath.Join(dir, "incidents-2026-03-22.jsonl"), "free_bytes=0",
		`err="no space left on device"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	os.Remove(ballast)
	// Space is back: the next append writes the held lines first.
	if err := w.Append(line(81)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "incidents-2026-03-22.jsonl"))
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 82-lost {
		t.Fatalf("%d lines on disk, want %d", len(lines), 82-lost)
	}
	prev := -1
	for _, l := range lines {
		var v struct{ N int }
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.N <= prev {
			t.Fatalf("line %q out of order or torn after %d", l, prev)
		}
		prev = v.N
	}
	if st := w.Stats(); st.Failing || st.Held != 0 || !strings.Contains(logs.String(), "jsonl: writing again") {
		t.Errorf("not recovered: %+v\n%s", st, logs.String())
	}
}

func TestAFullDiskAtOpenIsAStateNotAnError(t *testing.T) {
	dir := testkit.Tmpfs(t, "64k")
	ballast := fill(t, dir)
	clk := &fakeClock{t: time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)}
	w, err := Open(dir, Options{Prefix: "incidents", Now: clk.Now, SyncInterval: -1, Backlog: 10})
	if err != nil {
		// tmpfs refuses new inodes only when nr_inodes runs out, so the
		// file may open; either way Open must not fail.
		t.Fatalf("Open on a full disk: %v", err)
	}
	defer w.Close()
	if err := w.Append([]byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); !st.Failing || st.Held != 1 {
		t.Fatalf("stats %+v", st)
	}
	os.Remove(ballast)
	deadline := time.Now().Add(2 * retryEvery)
	for w.Stats().Held > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "incidents-2026-03-22.jsonl")); string(b) != "{\"n\":1}\n" {
		t.Fatalf("held line not written by the retry: %q", b)
	}
}
