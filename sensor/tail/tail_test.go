package tail

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// follow runs a tailer on path until the test ends and returns its lines.
func follow(t *testing.T, cfg Config) (<-chan string, func()) {
	t.Helper()
	if cfg.Poll == 0 {
		cfg.Poll = 200 * time.Millisecond // a safety net only; inotify wakes the tests
	}
	if cfg.RotateGrace == 0 {
		cfg.RotateGrace = 300 * time.Millisecond
	}
	ch := make(chan string, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	tl := New(cfg)
	tl.onStart = func() { close(ready) }
	go func() {
		done <- tl.Run(ctx, func(l []byte) error { ch <- string(l); return nil })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return ch, stop
}

func expect(t *testing.T, ch <-chan string, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-ch:
			if got != w {
				t.Fatalf("got line %q, want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %q", w)
		}
	}
}

func expectNothing(t *testing.T, ch <-chan string) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("unexpected line %q", got)
	default:
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestFollowsAppendedLinesAndWaitsForTheNewline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	ch, _ := follow(t, Config{Path: path})
	appendTo(t, path, "one\ntwo\nthr")
	expect(t, ch, "one", "two")
	expectNothing(t, ch)
	appendTo(t, path, "ee\n")
	expect(t, ch, "three")
}

func TestStartsAtTheEndOfAnExistingFileUnlessFromStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	appendTo(t, path, "old1\nold2\npart")
	ch, stop := follow(t, Config{Path: path})
	appendTo(t, path, "ial\nnew\n")
	expect(t, ch, "new") // the tail of a line we did not see begin is skipped
	stop()
	ch, _ = follow(t, Config{Path: path, FromStart: true})
	expect(t, ch, "old1", "old2", "partial", "new")
}

func TestResumesFromTheSavedOffset(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	stateFile := filepath.Join(dir, "state", "auth.json")
	appendTo(t, path, "a\n")
	ch, stop := follow(t, Config{Path: path, StateFile: stateFile, FromStart: true})
	expect(t, ch, "a")
	appendTo(t, path, "b\nhalf")
	expect(t, ch, "b")
	stop()
	appendTo(t, path, "-line\nc\n")
	ch, _ = follow(t, Config{Path: path, StateFile: stateFile})
	expect(t, ch, "half-line", "c")
}

func TestSurvivesRotationByRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	appendTo(t, path, "")
	ch, _ := follow(t, Config{Path: path, FromStart: true})
	appendTo(t, path, "a\nb\n")
	expect(t, ch, "a", "b")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path+".1", "c (written to the renamed file before the writer reopened)\n")
	appendTo(t, path, "d\n")
	got := map[string]bool{}
	for range 2 {
		select {
		case l := <-ch:
			got[l] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out, got %v", got)
		}
	}
	if !got["c (written to the renamed file before the writer reopened)"] || !got["d"] {
		t.Fatalf("got %v", got)
	}
	appendTo(t, path, "e\n")
	expect(t, ch, "e")
}

func TestSurvivesCopytruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	appendTo(t, path, "")
	ch, _ := follow(t, Config{Path: path, FromStart: true})
	appendTo(t, path, "first line that is long enough\nsecond line that is long enough\n")
	expect(t, ch, "first line that is long enough", "second line that is long enough")
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path+".1", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "x\n")
	expect(t, ch, "x")
}

func TestFinishesAFileRotatedWhileStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	stateFile := filepath.Join(dir, "auth.state")
	appendTo(t, path, "a\n")
	ch, stop := follow(t, Config{Path: path, StateFile: stateFile, FromStart: true})
	expect(t, ch, "a")
	stop()
	appendTo(t, path, "b\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "c\n")
	ch, _ = follow(t, Config{Path: path, StateFile: stateFile})
	expect(t, ch, "b", "c")
}

func TestWaitsForAFileThatDoesNotExistYet(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "later.log")
	ch, _ := follow(t, Config{Path: path})
	appendTo(t, path, "hello\n")
	expect(t, ch, "hello")
}

func TestCapsOverlongLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	appendTo(t, path, "")
	ch, _ := follow(t, Config{Path: path, FromStart: true, MaxLine: 10})
	appendTo(t, path, strings.Repeat("y", 100000)+"\nok\n")
	expect(t, ch, "yyyyyyyyyy", "ok")
}

func TestManyLinesInOrder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	appendTo(t, path, "")
	ch, _ := follow(t, Config{Path: path, FromStart: true})
	var sb strings.Builder
	var want []string
	for i := range 500 {
		fmt.Fprintf(&sb, "line %d\n", i)
		want = append(want, fmt.Sprintf("line %d", i))
	}
	appendTo(t, path, sb.String())
	expect(t, ch, want...)
}
