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
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/internal/testkit"
)

// jsonCheck accepts lines that are one JSON object, like push.CheckLine
// accepts incidents.
func jsonCheck(line []byte) error {
	var v map[string]any
	return json.Unmarshal(line, &v)
}

func TestAReaderSplitsATornLineGluedToTheNextOne(t *testing.T) {
	dir := t.TempDir()
	// What a crash mid-write followed by an append that did not heal
	// leaves: a fragment glued to a whole line.
	testkit.AppendFile(t, filepath.Join(dir, "incidents-2026-03-22.jsonl"),
		"{\"n\":1}\n{\"n\":2,\"evidence\":{\"us{\"n\":3}\n{\"n\":4}\n")
	logs := &testkit.SyncBuffer{}
	r := openTestReader(t, dir, ReaderOptions{Check: jsonCheck, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	b := next(t, r, 10)
	if got := strings.Join(texts(b), ","); got != `{"n":1},{"n":3},{"n":4}` {
		t.Fatalf("got %s", got)
	}
	if r.Torn() != 1 || r.Malformed() != 0 {
		t.Errorf("Torn=%d Malformed=%d, want 1 and 0", r.Torn(), r.Malformed())
	}
	if !strings.Contains(logs.String(), "fragment_bytes=") {
		t.Errorf("not logged:\n%s", logs.String())
	}
}

func TestATornLastLineOfAFinishedFileCountsAsTorn(t *testing.T) {
	dir := t.TempDir()
	testkit.AppendFile(t, filepath.Join(dir, "incidents-2026-03-22.jsonl"), "{\"n\":1}\n{\"n\":2,\"x")
	testkit.AppendFile(t, filepath.Join(dir, "incidents-2026-03-23.jsonl"), "{\"n\":3}\n")
	r := openTestReader(t, dir, ReaderOptions{Check: jsonCheck, RolloverGrace: 10 * time.Millisecond})
	var got []string
	for len(got) < 2 {
		got = append(got, texts(next(t, r, 10))...)
	}
	if strings.Join(got, ",") != `{"n":1},{"n":3}` || r.Torn() != 1 || r.Malformed() != 0 {
		t.Fatalf("got %v, Torn=%d Malformed=%d", got, r.Torn(), r.Malformed())
	}
}

func TestACutPartialLineIsTornAndTheDayIsNotReplayed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
	testkit.AppendFile(t, path, "{\"n\":1}\n{\"n\":2}\n")
	r := openTestReader(t, dir, ReaderOptions{Check: jsonCheck})
	b := next(t, r, 10)
	if err := r.Commit(b.End); err != nil {
		t.Fatal(err)
	}
	// A short write on a full disk: the reader sees the fragment, then the
	// writer cuts it and appends the next line in its place.
	testkit.AppendFile(t, path, `{"n":3,"long":"abcdefgh`)
	nothingWithin(t, r, 50*time.Millisecond)
	if err := os.Truncate(path, b.End.Offset); err != nil {
		t.Fatal(err)
	}
	nothingWithin(t, r, 50*time.Millisecond)
	testkit.AppendFile(t, path, "{\"n\":4}\n")
	b = next(t, r, 10)
	if got := strings.Join(texts(b), ","); got != `{"n":4}` {
		t.Fatalf("after the cut: %s (the day was replayed or the fragment glued)", got)
	}
	if r.Torn() != 1 || r.Malformed() != 0 {
		t.Errorf("Torn=%d Malformed=%d, want 1 and 0", r.Torn(), r.Malformed())
	}
}

func TestAFragmentReplacedBeforeTheReaderLooksAgainIsNeverGlued(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
	testkit.AppendFile(t, path, "{\"n\":1}\n")
	r := openTestReader(t, dir, ReaderOptions{Check: jsonCheck})
	b := next(t, r, 10)
	testkit.AppendFile(t, path, `{"n":2,"x`)
	nothingWithin(t, r, 50*time.Millisecond)
	// Cut and refilled past the fragment's length before the next read.
	os.Truncate(path, b.End.Offset)
	testkit.AppendFile(t, path, "{\"n\":3,\"pad\":\"0123456789\"}\n")
	b = next(t, r, 10)
	if got := strings.Join(texts(b), ","); got != `{"n":3,"pad":"0123456789"}` || r.Malformed() != 0 {
		t.Fatalf("got %s, Malformed=%d", got, r.Malformed())
	}
}

func readAll(t *testing.T, r *Reader, want int) (got []string) {
	t.Helper()
	for len(got) < want {
		b := next(t, r, 100)
		for _, l := range b.Lines {
			got = append(got, string(l.Data))
		}
		hashes := make([]uint64, len(b.Lines))
		for i, l := range b.Lines {
			hashes[i] = l.Hash
		}
		if len(b.Lines) > 0 {
			if err := r.MarkSent(b.Lines[0].File, hashes); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Commit(b.End); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func TestAnUnreadableCursorIsRebuiltFromTheSentIndex(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(path string)
	}{
		{"garbage", func(p string) { os.WriteFile(p, []byte("\x00\x00garbage"), 0o640) }},
		{"empty", func(p string) { os.WriteFile(p, nil, 0o640) }},
		{"removed", func(p string) { os.Remove(p) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for d, n := range map[string]int{"2026-03-20": 40, "2026-03-21": 40, "2026-03-22": 20} {
				var b strings.Builder
				for i := range n {
					fmt.Fprintf(&b, "{\"day\":%q,\"n\":%d}\n", d, i)
				}
				testkit.AppendFile(t, filepath.Join(dir, "incidents-"+d+".jsonl"), b.String())
			}
			r := openTestReader(t, dir, ReaderOptions{Check: jsonCheck, RolloverGrace: time.Millisecond})
			if got := readAll(t, r, 100); len(got) != 100 {
				t.Fatalf("first read: %d lines", len(got))
			}
			r.Close()
			tc.corrupt(filepath.Join(dir, "cursor.json"))
			testkit.AppendFile(t, filepath.Join(dir, "incidents-2026-03-22.jsonl"), "{\"new\":1}\n{\"new\":2}\n")
			logs := &testkit.SyncBuffer{}
			r = openTestReader(t, dir, ReaderOptions{Check: jsonCheck, RolloverGrace: time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(logs, nil))})
			got := readAll(t, r, 2)
			if strings.Join(got, ",") != `{"new":1},{"new":2}` {
				t.Fatalf("after the corrupt cursor: %d lines replayed: %v", len(got), got[:min(len(got), 3)])
			}
			nothingWithin(t, r, 50*time.Millisecond)
			if r.Resent() != 100 {
				t.Errorf("Resent = %d, want 100", r.Resent())
			}
			if !strings.Contains(logs.String(), "rebuilding it from the sent index") ||
				!strings.Contains(logs.String(), "acknowledged=100") {
				t.Errorf("not logged:\n%s", logs.String())
			}
		})
	}
}

func TestACrashBetweenMarkSentAndTheCursorResendsNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
	testkit.AppendFile(t, path, "{\"n\":1}\n{\"n\":2}\n")
	r := openTestReader(t, dir, ReaderOptions{Check: jsonCheck})
	b := next(t, r, 10)
	if err := r.Commit(b.End); err != nil {
		t.Fatal(err)
	}
	testkit.AppendFile(t, path, "{\"n\":3}\n{\"n\":4}\n")
	b = next(t, r, 10)
	r.MarkSent(b.Lines[0].File, []uint64{b.Lines[0].Hash, b.Lines[1].Hash})
	r.Close() // died before the cursor write
	testkit.AppendFile(t, path, "{\"n\":5}\n")
	r = openTestReader(t, dir, ReaderOptions{Check: jsonCheck})
	if got := strings.Join(texts(next(t, r, 10)), ","); got != `{"n":5}` {
		t.Fatalf("got %s", got)
	}
}

func TestAReplacedFileSkipsWhatWasSent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
	testkit.AppendFile(t, path, "{\"n\":1}\n{\"n\":2}\n")
	r := openTestReader(t, dir, ReaderOptions{Check: jsonCheck})
	readAll(t, r, 2)
	// Restored from a backup with one more line: another inode.
	tmp := filepath.Join(dir, "x.tmp")
	testkit.AppendFile(t, tmp, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n")
	os.Rename(tmp, path)
	if got := strings.Join(texts(next(t, r, 10)), ","); got != `{"n":3}` {
		t.Fatalf("got %s", got)
	}
}

func TestTheSentIndexFollowsRetention(t *testing.T) {
	dir := t.TempDir()
	testkit.AppendFile(t, filepath.Join(dir, "incidents-2026-03-21.jsonl"), "{\"n\":1}\n")
	r := openTestReader(t, dir, ReaderOptions{Check: jsonCheck})
	readAll(t, r, 1)
	idx := filepath.Join(dir, "cursor.json.sent", "incidents-2026-03-21.jsonl.ids")
	if fi, err := os.Stat(idx); err != nil || fi.Size() != 8 {
		t.Fatalf("index: %v %v", fi, err)
	}
	r.Close()
	os.Remove(filepath.Join(dir, "incidents-2026-03-21.jsonl")) // retention
	openTestReader(t, dir, ReaderOptions{Check: jsonCheck})
	if _, err := os.Stat(idx); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("index of a removed file kept: %v", err)
	}
}

// TestAClockSteppedBackAcrossMidnightStrandsNothing writes 300 lines with
// the clock stepped back across midnight in the middle (and a restart of
// the writer while it is behind), and reads them all once.
func TestAClockSteppedBackAcrossMidnightStrandsNothing(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: time.Date(2026, 3, 22, 23, 59, 0, 0, time.UTC)}
	open := func() *jsonl.Writer {
		w, err := jsonl.Open(dir, jsonl.Options{Prefix: "incidents", Now: clk.Now, SyncInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := open()
	r := openTestReader(t, dir, ReaderOptions{Check: jsonCheck, RolloverGrace: 5 * time.Millisecond})
	seen := map[string]int{}
	read := func(until int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for len(seen) < until {
			b, err := r.Next(ctx, 100)
			if err != nil {
				return
			}
			for _, l := range b.Lines {
				seen[string(l.Data)]++
			}
			r.Commit(b.End)
		}
	}
	n := 0
	write := func(k int) {
		for range k {
			w.Append(fmt.Appendf(nil, `{"n":%d}`, n))
			n++
		}
	}
	write(100)                                             // 23:59 on the 22nd
	clk.Set(time.Date(2026, 3, 23, 0, 0, 30, 0, time.UTC)) // midnight passes
	write(100)
	read(200)                                                // the reader finished the 22nd and moved on
	clk.Set(time.Date(2026, 3, 22, 23, 59, 40, 0, time.UTC)) // stepped back
	write(50)
	w.Close()
	w = open() // restarted while the clock is behind
	write(50)
	w.Close()
	read(300)
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	if len(seen) != 300 || dups != 0 {
		t.Fatalf("%d of 300 delivered, %d duplicates", len(seen), dups)
	}
}

// FuzzHealAndUnglue checks the torn-line handling on any file content: the
// writer's healing leaves a prefix of the file that ends at a newline (or
// nothing), and every line a reader returns passes Check and is a suffix
// of one whole line of the file.
func FuzzHealAndUnglue(f *testing.F) {
	for _, s := range []string{
		"{\"n\":1}\n{\"n\":2", "{\"n\":1}\n{\"n\":2{\"n\":3}\n", "{{{{\n", "\n", "",
		"{\"a\":{\"b\":1}}\n{\"x\n", strings.Repeat("{", 40) + "{\"n\":1}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "incidents-2026-03-22.jsonl")
		testkit.AppendFile(t, path, string(data))
		r := openTestReader(t, dir, ReaderOptions{Check: jsonCheck, MaxLineBytes: 1 << 10})
		whole := bytes.Split(data[:bytes.LastIndexByte(data, '\n')+1], []byte("\n"))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		for {
			b, err := r.Next(ctx, 100)
			if err != nil {
				break
			}
			for _, l := range b.Lines {
				if jsonCheck(l.Data) != nil {
					t.Fatalf("returned a line Check refuses: %q", l.Data)
				}
				ok := false
				for _, w := range whole {
					ok = ok || bytes.HasSuffix(w, l.Data)
				}
				if !ok {
					t.Fatalf("returned %q, not a suffix of a whole line", l.Data)
				}
			}
		}
		clk := &fakeClock{t: time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)}
		w, err := jsonl.Open(dir, jsonl.Options{Prefix: "incidents", Now: clk.Now, SyncInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		healed, _ := os.ReadFile(path)
		if !bytes.HasPrefix(data, healed) || len(healed) > 0 && healed[len(healed)-1] != '\n' ||
			bytes.IndexByte(data[len(healed):], '\n') >= 0 {
			t.Fatalf("healed %q into %q", data, healed)
		}
	})
}
