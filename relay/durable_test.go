package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// streamMsgs returns how many messages the relay's stream holds.
func streamMsgs(t *testing.T, r *Relay) uint64 {
	t.Helper()
	info, err := r.nats.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// writeOldHistory writes history files as a relay before the stream left
// them: one {"seq","at","incident"} line per incident in
// history-<day>.jsonl, and the sequence state file when state is not "".
func writeOldHistory(t *testing.T, dir string, lines map[string][]string, state string) {
	t.Helper()
	for day, ls := range lines {
		if err := os.WriteFile(filepath.Join(dir, historyPrefix+"-"+day+".jsonl"), []byte(strings.Join(ls, "")), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if state != "" {
		if err := os.WriteFile(filepath.Join(dir, seqFile), []byte(state), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// oldLine is one old history line, newline included.
func oldLine(t *testing.T, seq uint64, id string, extra map[string]any) string {
	t.Helper()
	var in map[string]any
	if err := json.Unmarshal(inc(id, extra), &in); err != nil {
		t.Fatal(err)
	}
	in["host"] = "web-1"
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	l, err := json.Marshal(historyRecord{Seq: seq, At: incTime, Incident: b})
	if err != nil {
		t.Fatal(err)
	}
	return string(l) + "\n"
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

func TestOldHistoryImportedOnceTornLinesCountedNeverGlued(t *testing.T) {
	for _, tc := range []struct {
		name string
		// plant returns the old history of 5 incidents, changed.
		plant    func(lines []string) []string
		wantTorn float64
		wantFeed int
	}{
		{"whole files are imported", func(l []string) []string { return l }, 0, 5},
		{"a torn tail is counted and cut", func(l []string) []string {
			return append(l, l[4][:len(l[4])/2])
		}, 1, 5},
		{"a fragment glued to a whole line yields the line", func(l []string) []string {
			// What an older writer that did not heal left: a fragment,
			// then a whole line appended to it.
			return append(l[:4:4], l[3][:20]+l[4])
		}, 1, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			day := incTime.Format(time.DateOnly)
			var lines []string
			for i := range 5 {
				lines = append(lines, oldLine(t, uint64(i+1), fmt.Sprintf("t%d", i), nil))
			}
			writeOldHistory(t, dir, map[string][]string{day: tc.plant(lines)}, "1005\n")

			tr := newTestRelay(t, Config{DataDir: dir})
			if got := len(tr.store.recent(100, false)); got != tc.wantFeed {
				t.Errorf("feed holds %d, want %d", got, tc.wantFeed)
			}
			if v := metricValue(t, tr, `attackmap_relay_history_lines_skipped_total{reason="torn"}`); v != tc.wantTorn {
				t.Errorf("torn lines counted %v, want %v", v, tc.wantTorn)
			}
			if v := metricValue(t, tr, `attackmap_relay_history_lines_skipped_total{reason="malformed"}`); v != 0 {
				t.Errorf("malformed lines counted %v, want 0", v)
			}
			// Imported after the old reservation: no old number reused.
			if es := tr.store.recent(100, false); len(es) == 0 || es[0].seq != 1006 {
				t.Errorf("first imported incident has seq %v, want 1006 (after the old state's 1005)", es)
			}
			for _, name := range []string{historyPrefix + "-" + day + ".jsonl", seqFile} {
				if _, err := os.Stat(filepath.Join(dir, name+importedSuffix)); err != nil {
					t.Errorf("%s not marked imported: %v", name, err)
				}
			}
			publishN(t, tr.Relay, "after", 1, nil)
			tr.Close()
			tr2 := newTestRelay(t, Config{DataDir: dir, TokenFile: filepath.Join(dir, "tokens")})
			defer tr2.Close()
			if got := len(tr2.store.recent(100, false)); got != tc.wantFeed+1 {
				t.Errorf("after a restart the feed holds %d, want %d (imported twice, or lost?)", got, tc.wantFeed+1)
			}
			if n := streamMsgs(t, tr2.Relay); n != uint64(tc.wantFeed+1) {
				t.Errorf("the stream holds %d messages, want %d", n, tc.wantFeed+1)
			}
		})
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
		t.Errorf("%v repeats dropped by the stream, want 15", v)
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
	// The stream's de-duplication window outlives a restart.
	tr2 := newTestRelay(t, Config{DataDir: dir, RingSize: 5, TokenFile: filepath.Join(dir, "tokens")})
	defer tr2.Close()
	seqBefore = tr2.store.seq
	publishN(t, tr2.Relay, "r", 20, nil)
	publishN(t, tr2.Relay, "r", 1, map[string]any{"count": 99})
	if tr2.store.seq != seqBefore {
		t.Errorf("after a restart the replay took %d sequence numbers", tr2.store.seq-seqBefore)
	}
	if n := streamMsgs(t, tr2.Relay); n != 22 {
		t.Errorf("the stream holds %d messages, want 22 (20 and 2 updates)", n)
	}
	// Another host's copy of the same id is its own incident.
	if _, err := tr2.PublishDurable(Host{Name: "web-2"}, []json.RawMessage{inc("r0", nil)}); err != nil || tr2.store.seq != seqBefore+1 {
		t.Errorf("another host's r0: %v, seq %d", err, tr2.store.seq)
	}
}

func TestSequenceNumbersNeverReused(t *testing.T) {
	for _, c := range []struct {
		name string
		// beforeStop runs after three incidents are stored.
		beforeStop func(t *testing.T, tr *testRelay)
	}{
		{"a stop continues at the next number", nil},
		{"expired incidents keep their numbers", func(t *testing.T, tr *testRelay) {
			if err := tr.nats.stream.Purge(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			tr := newTestRelay(t, Config{DataDir: dir})
			publishN(t, tr.Relay, "a", 3, nil)
			if c.beforeStop != nil {
				c.beforeStop(t, tr)
			}
			tr.Close()
			tr2 := newTestRelay(t, Config{DataDir: dir, TokenFile: filepath.Join(dir, "tokens")})
			defer tr2.Close()
			publishN(t, tr2.Relay, "b", 1, nil)
			if tr2.store.seq != 4 {
				t.Fatalf("next number %d after a restart, want 4", tr2.store.seq)
			}
		})
	}
	t.Run("an unreadable old state jumps far past the old history", func(t *testing.T) {
		dir := t.TempDir()
		writeOldHistory(t, dir, map[string][]string{incTime.Format(time.DateOnly): {oldLine(t, 7, "a", nil)}}, "x\n")
		tr := newTestRelay(t, Config{DataDir: dir})
		defer tr.Close()
		if es := tr.store.recent(10, false); len(es) != 1 || es[0].seq != 1_000_001 {
			t.Fatalf("imported %d incidents, seq %v; want one at 1000001", len(es), es)
		}
	})
}

func TestVersionIDsAndSubjects(t *testing.T) {
	base := incident.Incident{ID: "ssh:1.2.3.4", Host: "web-1", LastSeen: incTime, Count: 5, Severity: "high"}
	for _, tc := range []struct {
		name   string
		change func(*incident.Incident)
		same   bool
	}{
		{"the same version has the same id", func(*incident.Incident) {}, true},
		{"another host", func(in *incident.Incident) { in.Host = "web-2" }, false},
		{"a later last_seen", func(in *incident.Incident) { in.LastSeen = in.LastSeen.Add(time.Second) }, false},
		{"a higher count", func(in *incident.Incident) { in.Count++ }, false},
		{"a block applied", func(in *incident.Incident) { in.Action = "blocked" }, false},
		{"a host and id that concatenate alike", func(in *incident.Incident) { in.Host, in.ID = "web-1ssh:", "1.2.3.4" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.change(&in)
			if got := versionID(&in) == versionID(&base); got != tc.same {
				t.Errorf("same id %v, want %v", got, tc.same)
			}
		})
	}
	for host, want := range map[string]string{
		"web-1":   "attackmap.incidents.web-1",
		"a.b":     "attackmap.incidents.~612e62",
		"x y":     "attackmap.incidents.~782079",
		">":       "attackmap.incidents.~3e",
		"~61":     "attackmap.incidents.~7e3631",
		"":        "attackmap.incidents.~",
		"Büro_01": "attackmap.incidents.~42c3bc726f5f3031",
	} {
		if got := hostSubject(host); got != want {
			t.Errorf("hostSubject(%q) = %q, want %q", host, got, want)
		}
	}
}
