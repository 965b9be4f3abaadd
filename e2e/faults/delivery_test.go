package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/internal/testkit"
)

// settle is how long a case keeps watching the relay after every id
// arrived, so that repeats still in flight are counted: a redelivery
// follows its original within milliseconds over loopback.
const settle = time.Second

// check records a case and fails it unless every written id was delivered
// exactly once.
func check(t *testing.T, name string, want []string, got map[string]int) {
	t.Helper()
	d, l, x := tally(want, got)
	record(t, name, len(want), d, l, x)
	if l != 0 || x != 0 {
		t.Errorf("%d written: %d delivered, %d lost, %d duplicated", len(want), d, l, x)
	}
}

// TestTornJournalTailDoesNotSwallowTheNextIncident: a power cut left half
// a line at the end of the incidents journal; the sensor starts, and the
// next append must not be glued to the fragment.
func TestTornJournalTailDoesNotSwallowTheNextIncident(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	want := writeIncidents(t, data, "torn", 0, 100)
	frag, _ := mkIncident("torn", 999, time.Now())
	appendRaw(t, todayFile(data), frag[:len(frag)/2])
	r := startRelay(t, dir)
	s := startSensor(t, data, r)
	r.WaitHistory(t, want, 0)
	// The next lines, appended by a writer that does not heal (the
	// sensor's own writer healed the file when it opened it).
	want = append(want, writeIncidents(t, data, "torn", 100, 10)...)
	got := r.WaitHistory(t, want, settle)
	check(t, "torn journal tail", want, got)
	if !strings.Contains(s.log.String(), "cut a torn last line") {
		t.Errorf("the sensor did not say it cut the torn line:\n%s", tail(s.log.String(), 20))
	}
}

// TestCorruptCursorDoesNotReplayBeyondTheRing: the cursor is corrupt at a
// restart; the sensor must not resend what the relay acknowledged, even
// though the relay's de-duplication ring (50 here) no longer holds it.
func TestCorruptCursorDoesNotReplayBeyondTheRing(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	want := writeIncidents(t, data, "cursor", 0, 300)
	r := startRelay(t, dir, "--ring", "50")
	s := startSensor(t, data, r)
	r.WaitHistory(t, want, 0)
	s.stop()
	cursors, _ := filepath.Glob(filepath.Join(data, "cursor-*.json"))
	if len(cursors) != 1 {
		t.Fatalf("cursor files: %v", cursors)
	}
	if err := os.WriteFile(cursors[0], []byte("{\"file\":\"incidents-\x00"), 0o640); err != nil {
		t.Fatal(err)
	}
	want = append(want, writeIncidents(t, data, "cursor", 300, 10)...)
	s.restart(t)
	got := r.WaitHistory(t, want, settle)
	check(t, "corrupt cursor", want, got)
}

// TestAShortWriteOnAFullDiskDoesNotReplayTheDay: the sensor's reader saw
// the fragment of a short write, which the writer then cut; the day must
// not be read again from its start.
func TestAShortWriteOnAFullDiskDoesNotReplayTheDay(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	want := writeIncidents(t, data, "short", 0, 300)
	r := startRelay(t, dir, "--ring", "50")
	startSensor(t, data, r)
	r.WaitHistory(t, want, 0)
	// Exactly what jsonl.Writer does on ENOSPC: a partial write, then
	// a truncate back to the end of the last whole line.
	path := todayFile(data)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	frag, _ := mkIncident("short", 998, time.Now())
	appendRaw(t, path, frag[:len(frag)/3])
	time.Sleep(300 * time.Millisecond) // the reader is woken by inotify and reads it
	if err := os.Truncate(path, st.Size()); err != nil {
		t.Fatal(err)
	}
	want = append(want, writeIncidents(t, data, "short", 300, 10)...)
	got := r.WaitHistory(t, want, settle)
	check(t, "short write on a full disk", want, got)
}

// TestAFullDiskIsAStateNotACrash runs the sensor with its data directory
// on a full 2 MiB tmpfs: it must keep delivering, say so once, and
// resume by itself when space returns, without exiting.
func TestAFullDiskIsAStateNotACrash(t *testing.T) {
	dir := t.TempDir()
	data := testkit.Tmpfs(t, "2m")
	want := writeIncidents(t, data, "full", 0, 100)
	ballast := fillDisk(t, data)
	r := startRelay(t, dir)
	s := startSensor(t, data, r)
	r.WaitHistory(t, want, 0)
	time.Sleep(500 * time.Millisecond) // the cursor write fails meanwhile
	if ok, err := s.exited(); ok {
		t.Fatalf("the sensor exited on a full disk: %v\n%s", err, tail(s.log.String(), 20))
	}
	log := s.log.String()
	if n := strings.Count(log, "cannot store the cursor"); n != 1 || !strings.Contains(log, "free_bytes=0") ||
		!strings.Contains(log, `err="no space left on device"`) {
		t.Errorf("want one line with the free space and the bare cause, got %d:\n%s", n, tail(log, 20))
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	want = append(want, writeIncidents(t, data, "full", 100, 50)...)
	r.WaitHistory(t, want, 0)
	// The cursor is stored again within a retry: a restart resends
	// nothing.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.log.String(), "cursor stored again") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	if ok, err := s.exited(); !ok || err != nil {
		t.Errorf("sensor exit: %v", err)
	}
	s.restart(t)
	got := r.WaitHistory(t, want, settle)
	check(t, "full disk", want, got)
	if n := strings.Count(s.log.String(), "level=WARN"); n > 3 {
		t.Errorf("%d warnings after the restart:\n%s", n, tail(s.log.String(), 20))
	}
}

// TestAClockSteppedBackAcrossMidnightStrandsNothing: 300 incidents
// written by a journal writer whose clock steps back across midnight in
// the middle (and which restarts while behind), delivered by the real
// sensor to the real relay. The writer runs in the test with a fake clock;
// the sensor reads the files as it reads its own.
func TestAClockSteppedBackAcrossMidnightStrandsNothing(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	today := time.Now().UTC().Truncate(24 * time.Hour)
	clock := today.Add(-time.Minute) // 23:59 yesterday
	now := func() time.Time { return clock }
	open := func() *jsonl.Writer {
		w, err := jsonl.Open(data, jsonl.Options{Prefix: "incidents", SyncInterval: -1, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	var want []string
	w := open()
	write := func(n int) {
		for range n {
			line, id := mkIncident("clock", len(want), time.Now())
			if err := w.Append(line); err != nil {
				t.Fatal(err)
			}
			want = append(want, id)
		}
	}
	write(100)
	clock = today.Add(30 * time.Second) // midnight passed
	write(100)
	r := startRelay(t, dir)
	startSensor(t, data, r)
	r.WaitHistory(t, want, 0)            // the sensor finished yesterday and moved on
	clock = today.Add(-20 * time.Second) // stepped back across midnight
	write(50)
	w.Close()
	w = open() // restarted while the clock is still behind
	write(50)
	w.Close()
	got := r.WaitHistory(t, want, settle)
	check(t, "clock stepped back across midnight", want, got)
	if len(want) != 300 {
		t.Fatalf("wrote %d", len(want))
	}
}
