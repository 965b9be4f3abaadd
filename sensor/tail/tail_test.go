package tail

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/sensor/event"
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

func TestDropsTheCROfCRLFLines(t *testing.T) {
	// sshd writes "\r\n" to stderr and to its -E log file.
	dir := t.TempDir()
	path := filepath.Join(dir, "sshd.log")
	ch, _ := follow(t, Config{Path: path})
	appendTo(t, path, "Invalid user a from 192.0.2.1 port 1\r\nFailed password for invalid user a from 192.0.2.1 port 1 ssh2\r")
	expect(t, ch, "Invalid user a from 192.0.2.1 port 1")
	appendTo(t, path, "\ninner\rCR stays\r\n\r\n")
	expect(t, ch, "Failed password for invalid user a from 192.0.2.1 port 1 ssh2", "inner\rCR stays", "")
}

// numbered returns lines "prefix 0" ... as one string, and the lines.
func numbered(prefix string, from, n int) (string, []string) {
	var sb strings.Builder
	var lines []string
	for i := from; i < from+n; i++ {
		l := fmt.Sprintf("%s line %03d of a log long enough to tell apart", prefix, i)
		sb.WriteString(l + "\n")
		lines = append(lines, l)
	}
	return sb.String(), lines
}

func TestCopytruncateRefilledPastTheOldSizeLosesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	old, oldLines := numbered("old", 0, 20)
	appendTo(t, path, old)
	ch, _ := follow(t, Config{Path: path, FromStart: true})
	expect(t, ch, oldLines...)
	// copytruncate, and at once a burst larger than the old file, written
	// in the same syscall as the truncation as far as the tailer can tell.
	refill, newLines := numbered("new", 0, 100)
	if err := os.WriteFile(path+".1", []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(refill); err != nil {
		t.Fatal(err)
	}
	f.Close()
	expect(t, ch, newLines...)
	expectNothing(t, ch)
}

func TestCopytruncateRefilledWhileStoppedLosesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	stateFile := filepath.Join(dir, "state.json")
	old, oldLines := numbered("old", 0, 20)
	appendTo(t, path, old)
	ch, stop := follow(t, Config{Path: path, StateFile: stateFile, FromStart: true})
	expect(t, ch, oldLines...)
	stop()
	refill, newLines := numbered("new", 0, 100)
	if err := os.WriteFile(path, []byte(refill), 0o644); err != nil { // same inode, truncated
		t.Fatal(err)
	}
	ch, _ = follow(t, Config{Path: path, StateFile: stateFile})
	expect(t, ch, newLines...)
}

func TestReadsARotationCompressedWhileStopped(t *testing.T) {
	for _, name := range []string{"auth.log.1.gz", "auth.log-20261201.gz", "auth.log.2.gz"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "auth.log")
			stateFile := filepath.Join(dir, "state.json")
			first, firstLines := numbered("a", 0, 170)
			appendTo(t, path, first)
			ch, stop := follow(t, Config{Path: path, StateFile: stateFile, FromStart: true})
			expect(t, ch, firstLines...)
			stop()
			// While stopped: 30 more lines, then rotation with compress.
			rest, restLines := numbered("a", 170, 30)
			appendTo(t, path, rest)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			gzipTo(t, filepath.Join(dir, name), b)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			var want []string
			want = append(want, restLines...)
			if name == "auth.log.2.gz" {
				// Rotated twice: the file in between is read whole.
				mid, midLines := numbered("b", 0, 10)
				appendTo(t, path+".1", mid)
				want = append(want, midLines...)
			}
			now, nowLines := numbered("c", 0, 5)
			appendTo(t, path, now)
			want = append(want, nowLines...)
			ch, _ = follow(t, Config{Path: path, StateFile: stateFile})
			expect(t, ch, want...)
			expectNothing(t, ch)
		})
	}
}

func gzipTo(t *testing.T, name string, b []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRestartWithinTheGraceDrainsTheRenamedFileFirst(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	stateFile := filepath.Join(dir, "state.json")
	first, firstLines := numbered("a", 0, 100)
	appendTo(t, path, first)
	ch, stop := follow(t, Config{Path: path, StateFile: stateFile, FromStart: true, RotateGrace: time.Hour})
	expect(t, ch, firstLines...)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	nw, nwLines := numbered("b", 0, 65)
	appendTo(t, path, nw)
	expect(t, ch, nwLines...)
	stop() // within the grace: the renamed file may still grow
	late, lateLines := numbered("a", 100, 35)
	appendTo(t, path+".1", late) // the writer had not reopened yet
	ch, _ = follow(t, Config{Path: path, StateFile: stateFile, RotateGrace: time.Hour})
	expect(t, ch, lateLines...)
	expectNothing(t, ch)
}

func TestResumeStartsAtTheGivenPosition(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	all, lines := numbered("a", 0, 10)
	appendTo(t, path, all)
	var pos []event.FilePos
	tl := New(Config{Path: path, FromStart: true, Poll: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	n := 0
	err := tl.Run(ctx, func([]byte) error {
		pos = append(pos, tl.Pos())
		if n++; n == len(lines) {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Resume after the 4th line: lines 5.. come again, and no state file
	// is needed.
	ch, _ := follow(t, Config{Path: path, Resume: &pos[3]})
	expect(t, ch, lines[4:]...)
	if p := pos[9].Cur; p.Off != int64(len(all)) || p.SumLen != fingerprintLen || p.Ino == 0 {
		t.Errorf("position after the last line: %+v", p)
	}
}
