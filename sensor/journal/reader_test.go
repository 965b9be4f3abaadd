package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/internal/testkit"
)

func openTestReader(t testing.TB, dir string, opts ReaderOptions) *Reader {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = "incidents"
	}
	if opts.CursorPath == "" {
		opts.CursorPath = filepath.Join(dir, "cursor.json")
	}
	r, err := OpenReader(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// next reads one batch, failing the test after a generous deadline so that a
// missed wake-up shows as a failure, not a hang.
func next(t testing.TB, r *Reader, max int) Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := r.Next(ctx, max)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return b
}

func texts(b Batch) []string {
	var s []string
	for _, l := range b.Lines {
		s = append(s, string(l.Data))
	}
	return s
}

// nothingWithin asserts that Next has nothing to return for d.
func nothingWithin(t *testing.T, r *Reader, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	b, err := r.Next(ctx, 10)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %q, %v; want nothing", texts(b), err)
	}
}

func TestPartialLastLineWaitsForItsNewline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
	testkit.AppendFile(t, path, `{"n":1}`+"\n"+`{"n":`)
	r := openTestReader(t, dir, ReaderOptions{})
	b := next(t, r, 10)
	if got := texts(b); len(got) != 1 || got[0] != `{"n":1}` {
		t.Fatalf("first batch %q", got)
	}
	if b.End.Offset != 8 {
		t.Errorf("End.Offset = %d, want 8 (the partial line is not consumed)", b.End.Offset)
	}
	nothingWithin(t, r, 100*time.Millisecond)
	testkit.AppendFile(t, path, "2}\n")
	b = next(t, r, 10)
	if got := texts(b); len(got) != 1 || got[0] != `{"n":2}` {
		t.Fatalf("after completing the line: %q", got)
	}
	if b.Lines[0].Offset != 8 || b.End.Offset != 16 {
		t.Errorf("line offset %d end %d, want 8 and 16", b.Lines[0].Offset, b.End.Offset)
	}
}

func TestFinishesYesterdayWhileLinesStillArrive(t *testing.T) {
	dir := t.TempDir()
	yesterday := filepath.Join(dir, "incidents-2026-03-22.jsonl")
	today := filepath.Join(dir, "incidents-2026-03-23.jsonl")
	testkit.AppendFile(t, yesterday, "y1\n")
	testkit.AppendFile(t, today, "t1\n")
	r := openTestReader(t, dir, ReaderOptions{RolloverGrace: 300 * time.Millisecond})
	var got []string
	got = append(got, texts(next(t, r, 10))...)
	// The reader is now at the end of yesterday's file with today's file
	// present: it must wait out the grace, see the late line and read it
	// before anything of today.
	done := make(chan []string)
	go func() {
		var s []string
		for len(s) < 2 {
			s = append(s, texts(next(t, r, 10))...)
		}
		done <- s
	}()
	time.Sleep(50 * time.Millisecond) // inside the grace period
	testkit.AppendFile(t, yesterday, "y2\n")
	got = append(got, <-done...)
	if strings.Join(got, ",") != "y1,y2,t1" {
		t.Fatalf("order %v, want y1,y2,t1", got)
	}
}

func TestMovesToTheNextDayWhenTheCursorFileIsGone(t *testing.T) {
	dir := t.TempDir()
	testkit.AppendFile(t, filepath.Join(dir, "incidents-2026-03-23.jsonl"), "a\n")
	if err := SaveCursor(filepath.Join(dir, "cursor.json"), Position{File: "incidents-2026-03-20.jsonl", Offset: 999}); err != nil {
		t.Fatal(err)
	}
	r := openTestReader(t, dir, ReaderOptions{})
	if got := texts(next(t, r, 10)); strings.Join(got, ",") != "a" {
		t.Fatalf("got %v", got)
	}
}

func TestTruncatedFileStartsOver(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
	testkit.AppendFile(t, path, "first-long-line\nsecond-long-line\n")
	r := openTestReader(t, dir, ReaderOptions{})
	b := next(t, r, 10)
	if len(b.Lines) != 2 {
		t.Fatalf("got %q", texts(b))
	}
	if err := r.Commit(b.End); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	testkit.AppendFile(t, path, "new\n")
	b = next(t, r, 10)
	if got := texts(b); strings.Join(got, ",") != "new" || b.Lines[0].Offset != 0 {
		t.Fatalf("after truncation: %q at %d", got, b.Lines[0].Offset)
	}
}

func TestReplacedFileStartsOver(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
			testkit.AppendFile(t, path, "old-1\nold-2\n")
			r := openTestReader(t, dir, ReaderOptions{})
			b := next(t, r, 10)
			if err := r.Commit(b.End); err != nil {
				t.Fatal(err)
			}
			if restart {
				r.Close()
			}
			// A new file with the same name and more bytes than the
			// offset: only the inode tells it apart.
			tmp := filepath.Join(dir, "x.tmp")
			testkit.AppendFile(t, tmp, "new-1\nnew-2\nnew-3\n")
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
			if restart {
				r = openTestReader(t, dir, ReaderOptions{})
			}
			var got []string
			for len(got) < 3 {
				got = append(got, texts(next(t, r, 10))...)
			}
			if strings.Join(got, ",") != "new-1,new-2,new-3" {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func TestResumesFromTheCommittedCursor(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
	testkit.AppendFile(t, path, "1\n2\n3\n")
	r := openTestReader(t, dir, ReaderOptions{})
	b := next(t, r, 2)
	if strings.Join(texts(b), ",") != "1,2" {
		t.Fatalf("got %q", texts(b))
	}
	if err := r.Commit(b.End); err != nil {
		t.Fatal(err)
	}
	// Read 3 but do not commit: after a restart it comes again.
	if got := texts(next(t, r, 10)); strings.Join(got, ",") != "3" {
		t.Fatalf("got %q", got)
	}
	r.Close()
	r = openTestReader(t, dir, ReaderOptions{})
	if got := texts(next(t, r, 10)); strings.Join(got, ",") != "3" {
		t.Fatalf("after restart got %q", got)
	}
	if r.Committed().Offset != 4 {
		t.Errorf("committed %+v", r.Committed())
	}
}

func TestSkipsMalformedLinesAndLogsThemOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
	long := strings.Repeat("x", 200)
	testkit.AppendFile(t, path, `{"ok":1}`+"\nnot json\n\n"+long+"\n"+`{"ok":2}`+"\n")
	logs := &testkit.SyncBuffer{}
	r := openTestReader(t, dir, ReaderOptions{
		MaxLineBytes: 100,
		Logger:       slog.New(slog.NewTextHandler(logs, nil)),
		Check: func(b []byte) error {
			if !json.Valid(b) {
				return errors.New("not JSON")
			}
			return nil
		},
	})
	b := next(t, r, 10)
	if got := strings.Join(texts(b), ","); got != `{"ok":1},{"ok":2}` {
		t.Fatalf("got %s", got)
	}
	if r.Malformed() != 2 {
		t.Errorf("Malformed = %d, want 2", r.Malformed())
	}
	out := logs.String()
	if strings.Count(out, "skipping malformed line") != 2 ||
		!strings.Contains(out, "offset=9 ") || !strings.Contains(out, "incidents-2026-03-22.jsonl") {
		t.Errorf("log:\n%s", out)
	}
	if strings.Contains(out, long) {
		t.Error("the malformed line's content was logged")
	}
}

func TestOversizedPartialLineIsDroppedWithBoundedMemory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
	testkit.AppendFile(t, path, strings.Repeat("y", 300))
	r := openTestReader(t, dir, ReaderOptions{MaxLineBytes: 100})
	b := next(t, r, 10) // consumes the oversized bytes, no lines
	if len(b.Lines) != 0 || r.Malformed() != 1 {
		t.Fatalf("lines %q malformed %d", texts(b), r.Malformed())
	}
	testkit.AppendFile(t, path, strings.Repeat("y", 50)+"\nok\n")
	var got []string
	for len(got) < 1 {
		got = append(got, texts(next(t, r, 10))...)
	}
	if strings.Join(got, ",") != "ok" || r.Malformed() != 1 {
		t.Fatalf("got %v malformed %d", got, r.Malformed())
	}
}

func TestWokenByTheWriterInProcessAndByInotify(t *testing.T) {
	for _, inproc := range []bool{true, false} {
		t.Run(fmt.Sprintf("inprocess=%v", inproc), func(t *testing.T) {
			dir := t.TempDir()
			w, err := jsonl.Open(dir, jsonl.Options{Prefix: "incidents", SyncInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			opts := ReaderOptions{SafetyPoll: time.Hour} // a poll must not be what wakes it
			if inproc {
				ch, cancel := w.Subscribe()
				defer cancel()
				opts.Wake = ch
			}
			r := openTestReader(t, dir, opts)
			got := make(chan Batch)
			go func() { got <- next(t, r, 10) }()
			time.Sleep(20 * time.Millisecond) // let it block
			start := time.Now()
			if err := w.Append([]byte(`{"n":1}`)); err != nil {
				t.Fatal(err)
			}
			b := <-got
			if len(b.Lines) != 1 {
				t.Fatalf("got %q", texts(b))
			}
			t.Logf("woken after %v", time.Since(start))
		})
	}
}

func TestCursorFilesAreRefusedWhenForeign(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"ok", `{"file":"incidents-2026-03-22.jsonl","offset":5,"inode":7}`, ""},
		{"other prefix", `{"file":"events-2026-03-22.jsonl","offset":5}`, "not a incidents journal file name"},
		{"path", `{"file":"../incidents-2026-03-22.jsonl","offset":5}`, "not a incidents"},
		{"negative", `{"file":"incidents-2026-03-22.jsonl","offset":-1}`, "negative offset"},
		{"garbage", `{"file":`, "cursor"},
		{"unknown field", `{"file":"incidents-2026-03-22.jsonl","offset":1,"x":1}`, "unknown field"},
		{"trailing", `{"file":"incidents-2026-03-22.jsonl","offset":1}{}`, "trailing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseCursor([]byte(c.in), "incidents")
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestSaveCursorReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.json")
	for i := range 3 {
		p := Position{File: "incidents-2026-03-22.jsonl", Offset: int64(i), Inode: 9}
		if err := SaveCursor(path, p); err != nil {
			t.Fatal(err)
		}
		got, err := LoadCursor(path, "incidents")
		if err != nil || got != p {
			t.Fatalf("LoadCursor = %+v, %v", got, err)
		}
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

// FuzzReader writes arbitrary content and checks that the reader returns
// exactly its newline-terminated, non-blank lines that fit the limit, in
// order, and never the trailing partial line.
func FuzzReader(f *testing.F) {
	for _, s := range []string{"a\nb\n", "a\nb", "\n\n\n", "x\r\ny\n", strings.Repeat("z", 70) + "\nq\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		testkit.AppendFile(t, filepath.Join(dir, "incidents-2026-03-22.jsonl"), string(data))
		r := openTestReader(t, dir, ReaderOptions{MaxLineBytes: 64})
		var want []string
		parts := bytes.Split(data, []byte("\n"))
		for _, p := range parts[:len(parts)-1] {
			if len(bytes.TrimSpace(p)) > 0 && len(p)+1 <= 64 {
				want = append(want, string(p))
			}
		}
		// Read until everything up to the last newline is consumed; what
		// follows it is a partial line that must not come out.
		last := int64(bytes.LastIndexByte(data, '\n') + 1)
		var got []string
		var end int64
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for end < last {
			b, err := r.Next(ctx, 3)
			if err != nil {
				t.Fatalf("stuck at %d of %d: %v", end, last, err)
			}
			got = append(got, texts(b)...)
			end = b.End.Offset
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("got %q want %q", got, want)
		}
		if int64(len(data))-last < 64 && end != last {
			t.Fatalf("end %d, want %d", end, last)
		}
	})
}

// FuzzParseCursor checks that any cursor content gives a clean error or a
// position that round-trips.
func FuzzParseCursor(f *testing.F) {
	f.Add([]byte(`{"file":"incidents-2026-03-22.jsonl","offset":5,"inode":7}`))
	f.Add([]byte(`{"file":"incidents-2026-13-22.jsonl","offset":5}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseCursor(data, "incidents")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		b, _ := json.Marshal(p)
		q, err := ParseCursor(b, "incidents")
		if err != nil || q != p {
			t.Fatalf("round trip %+v -> %+v, %v", p, q, err)
		}
	})
}

func TestACorruptCursorStartsOverInsteadOfFailing(t *testing.T) {
	dir := t.TempDir()
	testkit.AppendFile(t, filepath.Join(dir, "incidents-2026-03-22.jsonl"), "a\nb\n")
	os.WriteFile(filepath.Join(dir, "cursor.json"), []byte("\x00\x00garbage"), 0o640)
	logs := &testkit.SyncBuffer{}
	r := openTestReader(t, dir, ReaderOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if got := strings.Join(texts(next(t, r, 10)), ","); got != "a,b" {
		t.Fatalf("got %q", got)
	}
	if !strings.Contains(logs.String(), "unreadable cursor") {
		t.Errorf("not logged:\n%s", logs.String())
	}
}

// fakeClock is a settable clock for the writer the tests read from.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
