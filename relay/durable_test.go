package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/jsonl"
)

// historyText returns today's history file of dir.
func historyText(t *testing.T, dir string) string {
	t.Helper()
	names, err := jsonl.List(dir, historyPrefix)
	if err != nil || len(names) == 0 {
		t.Fatalf("history files: %v %v", names, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, names[len(names)-1]))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// publishN publishes incidents named prefix0..prefixN-1 in process.
func publishN(t *testing.T, r *Relay, prefix string, n int, extra map[string]any) {
	t.Helper()
	for i := range n {
		if _, err := r.PublishDurable(Host{Name: "web-1"}, []json.RawMessage{inc(fmt.Sprintf("%s%d", prefix, i), extra)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTornHistoryLinesCountedAsTornNeverGlued(t *testing.T) {
	for _, tc := range []struct {
		name string
		// plant changes the history file of 5 stored incidents.
		plant     func(t *testing.T, path, last string)
		wantTorn  float64
		wantFeed  int
		wantLines int // history lines after a restart and one more incident
	}{
		{"a torn tail is counted and cut", func(t *testing.T, path, last string) {
			appendFile(t, path, last[:len(last)/2])
		}, 1, 5, 6},
		{"a fragment glued to a whole line yields the line", func(t *testing.T, path, last string) {
			// What an older writer that did not heal left: a fragment,
			// then a whole line appended to it.
			b, _ := os.ReadFile(path)
			lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
			glued := strings.Join(lines[:len(lines)-1], "") + lines[len(lines)-2][:20] + last + "\n"
			if err := os.WriteFile(path, []byte(glued), 0o640); err != nil {
				t.Fatal(err)
			}
		}, 1, 5, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tr := newTestRelay(t, Config{DataDir: dir})
			publishN(t, tr.Relay, "t", 5, nil)
			tr.Close()
			names, _ := jsonl.List(dir, historyPrefix)
			path := filepath.Join(dir, names[0])
			text := historyText(t, dir)
			last := text[strings.LastIndexByte(strings.TrimSuffix(text, "\n"), '\n')+1 : len(text)-1]
			tc.plant(t, path, last)

			tr2 := newTestRelay(t, Config{DataDir: dir, TokenFile: filepath.Join(dir, "tokens")})
			if got := len(tr2.store.recent(100, false)); got != tc.wantFeed {
				t.Errorf("feed holds %d, want %d", got, tc.wantFeed)
			}
			if v := metricValue(t, tr2, `attackmap_relay_history_lines_skipped_total{reason="torn"}`); v != tc.wantTorn {
				t.Errorf("torn lines counted %v, want %v", v, tc.wantTorn)
			}
			if v := metricValue(t, tr2, `attackmap_relay_history_lines_skipped_total{reason="malformed"}`); v != 0 {
				t.Errorf("malformed lines counted %v, want 0", v)
			}
			publishN(t, tr2.Relay, "after", 1, nil)
			tr2.Close()
			tr3 := newTestRelay(t, Config{DataDir: dir, TokenFile: filepath.Join(dir, "tokens")})
			defer tr3.Close()
			if got := len(tr3.store.recent(100, false)); got != tc.wantFeed+1 {
				t.Errorf("after a restart the feed holds %d, want %d (the next line was glued to the fragment?)", got, tc.wantFeed+1)
			}
		})
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// metricValue reads one series from the relay's registry (0 if absent).
func metricValue(t *testing.T, tr *testRelay, series string) float64 {
	t.Helper()
	mfs, err := tr.gath.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
				}
				name += "{" + strings.Join(ls, ",") + "}"
			}
			if name != series {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

func TestRedeliveriesBeyondTheRingDroppedUpdatesStored(t *testing.T) {
	dir := t.TempDir()
	tr := newTestRelay(t, Config{DataDir: dir, RingSize: 5})
	publishN(t, tr.Relay, "r", 20, nil)
	seqBefore := tr.store.seq
	publishN(t, tr.Relay, "r", 20, nil) // a replay of all 20, 15 past the ring
	if tr.store.seq != seqBefore {
		t.Fatalf("the replay took sequence numbers %d..%d", seqBefore+1, tr.store.seq)
	}
	if v := metricValue(t, tr, "attackmap_relay_incidents_duplicate_indexed_total"); v != 15 {
		t.Errorf("%v repeats dropped by the index, want 15", v)
	}
	// Updates of incidents past the ring are stored: a higher count, then
	// the same with a changed action; a replay of the older version is not.
	publishN(t, tr.Relay, "r", 1, map[string]any{"count": 99})
	publishN(t, tr.Relay, "r", 1, map[string]any{"count": 99, "action": "blocked"})
	publishN(t, tr.Relay, "r", 1, map[string]any{"count": 99})
	if got := tr.store.seq - seqBefore; got != 2 {
		t.Errorf("%d updates stored, want 2", got)
	}
	tr.Close()
	// The index is rebuilt from the history at start.
	tr2 := newTestRelay(t, Config{DataDir: dir, RingSize: 5, TokenFile: filepath.Join(dir, "tokens")})
	defer tr2.Close()
	seqBefore = tr2.store.seq
	publishN(t, tr2.Relay, "r", 20, nil)
	publishN(t, tr2.Relay, "r", 1, map[string]any{"count": 99})
	if tr2.store.seq != seqBefore {
		t.Errorf("after a restart the replay took %d sequence numbers", tr2.store.seq-seqBefore)
	}
	if n := strings.Count(historyText(t, dir), "\n"); n != 22 {
		t.Errorf("history holds %d lines, want 22 (20 and 2 updates)", n)
	}
	// Another host's copy of the same id is its own incident.
	if _, err := tr2.PublishDurable(Host{Name: "web-2"}, []json.RawMessage{inc("r0", nil)}); err != nil || tr2.store.seq != seqBefore+1 {
		t.Errorf("another host's r0: %v, seq %d", err, tr2.store.seq)
	}
}

func TestSequenceNumbersNeverReused(t *testing.T) {
	seqState := func(t *testing.T, dir string) uint64 {
		b, err := os.ReadFile(filepath.Join(dir, seqFile))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
	t.Run("a crash skips the rest of the reserved block", func(t *testing.T) {
		dir := t.TempDir()
		tr := newTestRelay(t, Config{DataDir: dir})
		publishN(t, tr.Relay, "a", 3, nil)
		reserved := seqState(t, dir)
		if reserved <= 3 {
			t.Fatalf("state %d: nothing reserved beyond what was used", reserved)
		}
		// A crash (no Close), and the history lost its last line (a
		// power cut before the fsync of a broadcast line).
		names, _ := jsonl.List(dir, historyPrefix)
		path := filepath.Join(dir, names[0])
		text := historyText(t, dir)
		if err := os.WriteFile(path, []byte(text[:strings.LastIndexByte(strings.TrimSuffix(text, "\n"), '\n')+1]), 0o640); err != nil {
			t.Fatal(err)
		}
		tr2 := newTestRelay(t, Config{DataDir: dir, TokenFile: filepath.Join(dir, "tokens")})
		defer tr2.Close()
		publishN(t, tr2.Relay, "b", 1, nil)
		if tr2.store.seq != reserved+1 {
			t.Fatalf("after a crash the next number is %d, want %d (after the reservation)", tr2.store.seq, reserved+1)
		}
	})
	t.Run("a clean stop continues at the next number", func(t *testing.T) {
		dir := t.TempDir()
		tr := newTestRelay(t, Config{DataDir: dir})
		publishN(t, tr.Relay, "a", 3, nil)
		tr.Close()
		tr2 := newTestRelay(t, Config{DataDir: dir, TokenFile: filepath.Join(dir, "tokens")})
		defer tr2.Close()
		publishN(t, tr2.Relay, "b", 1, nil)
		if tr2.store.seq != 4 {
			t.Fatalf("next number %d, want 4", tr2.store.seq)
		}
	})
	t.Run("an unwritable reservation refuses ingest and publishes nothing", func(t *testing.T) {
		dir := t.TempDir()
		tr := newTestRelay(t, Config{DataDir: dir})
		defer tr.Close()
		// A directory in the way: the rename over it fails.
		if err := os.MkdirAll(filepath.Join(dir, seqFile, "x"), 0o750); err != nil {
			t.Fatal(err)
		}
		_, err := tr.PublishDurable(Host{Name: "web-1"}, []json.RawMessage{inc("a", nil)})
		if !errors.Is(err, ErrNotStored) || tr.store.seq != 0 || tr.hub.LastSeq() != 0 {
			t.Fatalf("got %v, seq %d, hub %d; want ErrNotStored and nothing published", err, tr.store.seq, tr.hub.LastSeq())
		}
		if v := metricValue(t, tr, `attackmap_relay_batches_not_stored_total{reason="seq_state"}`); v != 1 {
			t.Errorf("seq_state refusals %v, want 1", v)
		}
		os.RemoveAll(filepath.Join(dir, seqFile))
		publishN(t, tr.Relay, "a", 1, nil)
		if tr.store.seq != 1 {
			t.Errorf("after the fix: seq %d", tr.store.seq)
		}
	})
	t.Run("an unreadable state jumps far past the history", func(t *testing.T) {
		dir := t.TempDir()
		tr := newTestRelay(t, Config{DataDir: dir})
		publishN(t, tr.Relay, "a", 3, nil)
		tr.Close()
		if err := os.WriteFile(filepath.Join(dir, seqFile), []byte("x\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		tr2 := newTestRelay(t, Config{DataDir: dir, TokenFile: filepath.Join(dir, "tokens")})
		defer tr2.Close()
		if tr2.store.seq != 3+seqCorruptJump {
			t.Fatalf("seq %d, want %d", tr2.store.seq, 3+seqCorruptJump)
		}
	})
}

func TestSeenIndexKeepsDaysWithinRetention(t *testing.T) {
	x := newSeen()
	x.add("2026-03-01", 1)
	x.add("2026-03-02", 2)
	x.add("2026-03-03", 3) // compacts the two days before
	if x.days["2026-03-01"].sorted == nil || x.days["2026-03-03"].set == nil {
		t.Fatal("older days not compacted into sorted slices")
	}
	for _, v := range []uint64{1, 2, 3} {
		if !x.has(v) {
			t.Errorf("lost %d", v)
		}
	}
	x.add("2026-03-01", 4) // an older day written again
	if !x.has(1) || !x.has(4) || x.len() != 4 {
		t.Errorf("re-opened day: has(1) %v has(4) %v len %d", x.has(1), x.has(4), x.len())
	}
	x.expire(mustDay(t, "2026-03-02"))
	if x.has(1) || x.has(4) || !x.has(2) || x.len() != 2 {
		t.Errorf("after expiry: has(1) %v has(2) %v len %d", x.has(1), x.has(2), x.len())
	}
}

func mustDay(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
