package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/powercut"
)

// powercutRig is a sensor with --serve whose data directory is on a
// powercut file system: what it did not sync, a Cut takes away.
type powercutRig struct {
	t       *testing.T
	backing string // the powercut file system's backing directory
	mnt     string // its mount point; the sensor's data is mnt/data
	fs      *powercut.FS
	sensor  *sensorProc
	relay   *relayProc // the embedded relay, read through its HTTP API
}

func newPowercutRig(t *testing.T) *powercutRig {
	t.Helper()
	binaries(t) // skips in -short before anything is mounted
	if why := powercut.Skip(); why != "" {
		t.Skip(why)
	}
	r := &powercutRig{t: t, backing: t.TempDir(), mnt: t.TempDir()}
	r.mount()
	t.Cleanup(func() {
		if r.sensor != nil {
			r.sensor.kill()
		}
		if err := r.fs.Unmount(); err != nil {
			t.Error(err)
		}
	})
	cfg := filepath.Join(t.TempDir(), "sensor-config.json")
	if err := os.WriteFile(cfg, []byte(sensorConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	r.relay = &relayProc{Addr: sparePort(t)}
	r.sensor = &sensorProc{DataDir: r.dataDir(), args: []string{"run", "--config", cfg, "--data", r.dataDir(),
		"--serve", r.relay.Addr, "--metrics-listen", ""}}
	return r
}

func (r *powercutRig) mount() {
	r.t.Helper()
	p, err := powercut.Mount(r.backing, r.mnt)
	if err != nil {
		r.t.Fatal(err)
	}
	r.fs = p
}

func (r *powercutRig) dataDir() string { return filepath.Join(r.mnt, "data") }

// start starts the sensor and waits for the embedded relay to answer.
func (r *powercutRig) start() {
	r.t.Helper()
	r.sensor.restart(r.t)
	r.relay.proc = r.sensor.proc
	deadline := time.Now().Add(startTimeout)
	for !strings.Contains(r.sensor.log.String(), "map at http://") {
		if ok, err := r.sensor.exited(); ok {
			r.t.Fatalf("sensor exited at start: %v\n%s", err, tail(r.sensor.log.String(), 30))
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("sensor not serving after %v\n%s", startTimeout, tail(r.sensor.log.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cut ends the sensor as a power cut would: SIGKILL (or SIGTERM for a
// clean stop), unmount, roll back what was not synced, mount again.
func (r *powercutRig) cut(clean bool) {
	r.t.Helper()
	if clean {
		r.sensor.stop()
		r.checkCleanStop()
	} else {
		r.sensor.kill()
	}
	if err := r.fs.Unmount(); err != nil {
		r.t.Fatal(err)
	}
	if err := r.fs.Cut(); err != nil {
		r.t.Fatal(err)
	}
	r.mount()
}

// checkCleanStop checks what a clean stop leaves: the relay's store synced
// whole (nothing a cut could take), and the cursor at the journal's end
// (nothing sent again at the next start).
func (r *powercutRig) checkCleanStop() {
	r.t.Helper()
	for _, f := range r.fs.Unsynced() {
		if strings.HasPrefix(f, "data/relay/") {
			r.t.Errorf("after a clean stop the relay's %s has data a power cut would lose", f)
		}
	}
	b, err := os.ReadFile(filepath.Join(r.dataDir(), "cursor-local.json"))
	if err != nil {
		r.t.Fatal(err)
	}
	var c struct {
		Offset int64 `json:"offset"`
	}
	st, err := os.Stat(todayFile(r.dataDir()))
	if err != nil || json.Unmarshal(b, &c) != nil {
		r.t.Fatalf("cursor %s, journal %v", b, err)
	}
	if c.Offset != st.Size() {
		r.t.Errorf("after a clean stop the cursor is at %d of %d journal bytes: the last incidents would be sent again", c.Offset, st.Size())
	}
}

// write appends n incidents tagged tag to the journal and fsyncs them, as
// the journal writer's group commit does, unless unsynced.
func (r *powercutRig) write(tag string, first, n int, synced bool) []string {
	r.t.Helper()
	ids := writeIncidents(r.t, r.dataDir(), tag, first, n)
	if synced {
		f, err := os.OpenFile(todayFile(r.dataDir()), os.O_WRONLY, 0)
		if err != nil {
			r.t.Fatal(err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			r.t.Fatal(err)
		}
	}
	return ids
}

// journalIDs are the ids of the whole incident lines the journal holds
// (read from the backing directory: what survived the cuts).
func (r *powercutRig) journalIDs() []string {
	r.t.Helper()
	files, _ := filepath.Glob(filepath.Join(r.backing, "data", "incidents-*.jsonl"))
	var ids []string
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			r.t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var in struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &in) == nil && in.ID != "" {
				ids = append(ids, in.ID)
			}
		}
	}
	return ids
}

// TestPowerCutsUnderServeLoseAndRepeatNothing cuts the power under a
// --serve sensor at different moments: after each cut the embedded relay
// must hold every incident the surviving journal holds, each exactly once.
// The relay's store syncs only every second, so its acks are not durable
// when they are given: the sensor's cursor for it must trail them, and the
// restart must send the lost ones again without doubling the kept ones.
func TestPowerCutsUnderServeLoseAndRepeatNothing(t *testing.T) {
	rig := newPowercutRig(t)
	rig.start()
	next := 0
	seen := map[string]bool{} // ids of the rounds before
	burst := func(n int, synced bool) []string {
		ids := rig.write("cut", next, n, synced)
		next += n
		return ids
	}
	for _, round := range []struct {
		name string
		// before writes and waits; then the power goes.
		before func()
		clean  bool
	}{
		{"right after the acks", func() {
			rig.relay.WaitHistory(t, burst(300, true), 0)
		}, false},
		{"mid-burst", func() {
			burst(2000, true)
			time.Sleep(40 * time.Millisecond)
		}, false},
		{"with the last lines not yet synced in the journal", func() {
			rig.relay.WaitHistory(t, burst(200, true), 0)
			rig.relay.WaitHistory(t, burst(100, false), 0)
		}, false},
		{"after the store synced, before the cursor caught up", func() {
			// The store kept these (it syncs every second), the cursor
			// does not cover them yet: they are sent again, and the
			// stream must drop them as repeats.
			rig.relay.WaitHistory(t, burst(300, true), 0)
			time.Sleep(1800 * time.Millisecond)
		}, false},
		{"mid-burst, later", func() {
			burst(3000, true)
			time.Sleep(700 * time.Millisecond)
		}, false},
		{"after the cursor caught up", func() {
			rig.relay.WaitHistory(t, burst(200, true), 0)
			time.Sleep(4 * time.Second)
		}, false},
		{"after a clean stop", func() {
			rig.relay.WaitHistory(t, burst(200, true), 0)
		}, true},
	} {
		t.Run(round.name, func(t *testing.T) {
			round.before()
			rig.cut(round.clean)
			rig.start()
			want := rig.journalIDs()
			got := rig.relay.WaitHistory(t, want, time.Second)
			_, lost, dup := tally(want, got)
			extra := 0
			for id, n := range got {
				if n > 1 && !contains(want, id) {
					extra += n - 1
				}
			}
			// The record counts this round's incidents; the check
			// covers every round's.
			var fresh []string
			for _, id := range want {
				if !seen[id] {
					seen[id] = true
					fresh = append(fresh, id)
				}
			}
			fd, fl, fdup := tally(fresh, got)
			record(t, "power cut under --serve "+round.name, len(fresh), fd, fl, fdup)
			if lost > 0 || dup > 0 || extra > 0 {
				t.Errorf("after the cut: %d of %d journaled incidents lost, %d duplicated (%d more copies of incidents the journal lost)",
					lost, len(want), dup, extra)
			}
		})
	}
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestServeSyncsTheRelayStoreInTheBackground counts the fsyncs the
// embedded relay's store makes for N incidents: with a store that synced
// every message (sync always) it was at least N; synced every second it is
// a few per second.
func TestServeSyncsTheRelayStoreInTheBackground(t *testing.T) {
	const n = 2000
	rig := newPowercutRig(t)
	rig.start()
	ids := rig.write("syncs", 0, n, true)
	got := rig.relay.WaitHistory(t, ids, 0)
	delivered, lost, dup := tally(ids, got)
	// Long enough for the background syncs (every second) and the
	// trailing cursor (about 3 s) to be paid for too.
	time.Sleep(4 * time.Second)
	store := rig.fs.Syncs("data/relay")
	all := rig.fs.Syncs("")
	t.Logf("%d incidents through --serve: %d syncs of the relay's store (%+v), %d in all (%+v)",
		n, store.Total(), store, all.Total(), all)
	if lost > 0 || dup > 0 {
		t.Fatalf("%d delivered, %d lost, %d duplicated", delivered, lost, dup)
	}
	if store.Total() == 0 {
		t.Errorf("the relay's store never synced: the count does not see it")
	}
	if store.Total() >= n/10 {
		t.Errorf("the relay's store synced %d times for %d incidents, want fewer than %d (it syncs in the background)",
			store.Total(), n, n/10)
	}
	fmt.Fprintf(os.Stderr, "serve syncs: %d incidents, %d relay store syncs, %d total\n", n, store.Total(), all.Total())
}
