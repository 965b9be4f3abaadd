package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/testkit"
)

// The relay's side of exactly once: a SIGKILL mid-burst or a torn record
// at the end of the stream's store loses no acknowledged incident, a
// redelivery older than the ring is dropped (by the stream's
// de-duplication window, also after a restart), a full disk refuses ingest
// instead of crashing, and no SSE sequence number is ever sent twice.

// sseClient follows the relay's stream like a browser: it reconnects after
// every drop (a relay restart) with the last id it saw, and records every
// event.
type sseClient struct {
	mu     sync.Mutex
	seqs   []uint64       // SSE ids, in the order received
	byID   map[string]int // incident id -> events received
	stop   chan struct{}
	done   chan struct{}
	up     chan struct{} // closed once the first stream is open
	lastID string
}

func followStream(t testing.TB, addr string) *sseClient {
	t.Helper()
	c := &sseClient{byID: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{}), up: make(chan struct{})}
	go c.run(addr)
	t.Cleanup(c.close)
	select {
	case <-c.up:
	case <-time.After(startTimeout):
		t.Fatalf("the stream did not open within %v", startTimeout)
	}
	return c
}

func (c *sseClient) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

func (c *sseClient) run(addr string) {
	defer close(c.done)
	// Streams are closed from the relay side (restarts) or by stop; the
	// transport's idle timeout is irrelevant to a stream in progress.
	client := &http.Client{}
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/live-feed/stream", nil)
		c.mu.Lock()
		if c.lastID != "" {
			req.Header.Set("Last-Event-ID", c.lastID)
		} else {
			req.URL.RawQuery = "lastEventId=0"
		}
		c.mu.Unlock()
		resp, err := client.Do(req)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case <-c.up:
		default:
			close(c.up)
		}
		go func() { <-c.stop; resp.Body.Close() }()
		c.read(resp.Body)
		resp.Body.Close()
	}
}

// read records the events of one connection until it ends.
func (c *sseClient) read(body io.Reader) {
	br := bufio.NewReader(body)
	var id, name, data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			name = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case line == "":
			if name == "incident" {
				var in struct {
					ID string `json:"id"`
				}
				_ = json.Unmarshal([]byte(data), &in)
				n, _ := strconv.ParseUint(id, 10, 64)
				c.mu.Lock()
				c.seqs = append(c.seqs, n)
				c.byID[in.ID]++
				c.lastID = id
				c.mu.Unlock()
			} else if id != "" {
				c.mu.Lock()
				c.lastID = id
				c.mu.Unlock()
			}
			id, name, data = "", "", ""
		}
	}
}

// check returns the SSE ids received that did not increase (a reuse), the
// extra copies of incidents received more than once, and how many ids of
// want never arrived; it waits (bounded) until every id of want arrived.
func (c *sseClient) check(t testing.TB, want []string) (notIncreasing []string, dups, missing int) {
	t.Helper()
	deadline := time.Now().Add(deliverTimeout)
	for {
		c.mu.Lock()
		missing = 0
		for _, id := range want {
			if c.byID[id] == 0 {
				missing++
			}
		}
		c.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(settle)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 1; i < len(c.seqs); i++ {
		if c.seqs[i] <= c.seqs[i-1] {
			notIncreasing = append(notIncreasing, fmt.Sprintf("%d after %d", c.seqs[i], c.seqs[i-1]))
		}
	}
	for _, n := range c.byID {
		if n > 1 {
			dups += n - 1
		}
	}
	return notIncreasing, dups, missing
}

// events returns how many incident events the client received.
func (c *sseClient) events() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seqs)
}

// replayTimeout bounds the wait for a replay to reach the relay: a sensor
// resends 300 incidents over loopback in well under a second; 15 s covers
// a loaded machine. A case goes on to count after it either way.
const replayTimeout = 15 * time.Second

// waitUntil polls cond until it holds or d passes, and reports which.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// waitFor polls cond (bounded by deliverTimeout).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(deliverTimeout)
	for !cond() {
		if p := died(t); p != nil {
			t.Fatalf("%s exited on its own (%v) waiting for %s:\n%s", p.name, p.err, what, tail(p.log.String(), 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, deliverTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// held counts how many ids of want the relay's history holds.
func held(t testing.TB, r *relayProc, want []string) int {
	got := r.History(t)
	n := 0
	for _, id := range want {
		if got[id] > 0 {
			n++
		}
	}
	return n
}

// metric reads one series from the relay's metrics listener (0 when absent).
func metric(t testing.TB, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// TestRelayKilledMidBurstLosesNothingAcknowledged: the relay is SIGKILLed
// three times while a sensor pushes bursts of 400; every incident ends up
// in its history exactly once (what was written but not acknowledged is
// resent and dropped as a repeat).
func TestRelayKilledMidBurstLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	r := startRelay(t, dir)
	var want []string
	startSensor(t, data, r)
	for burst := range 3 {
		ids := writeIncidents(t, data, "kill", burst*400, 400)
		want = append(want, ids...)
		// Kill it once part of the burst is stored: mid-burst.
		waitFor(t, "the burst reaching the relay", func() bool { return held(t, r, ids) > 0 })
		r.kill()
		r.restart(t)
	}
	got := r.WaitHistory(t, want, settle)
	check(t, "relay SIGKILLed mid-burst", want, got)
	if got[""] != 0 {
		t.Errorf("%d history lines do not decode", got[""])
	}
}

// lastStreamBlock is the newest message block of the relay's stream in
// its embedded NATS server's file store.
func (r *relayProc) lastStreamBlock(t testing.TB) string {
	t.Helper()
	blocks, _ := filepath.Glob(filepath.Join(r.DataDir, "nats", "jetstream", "*", "streams", "ATTACKMAP", "msgs", "*.blk"))
	if len(blocks) == 0 {
		t.Fatal("no stream message block under the relay's data directory")
	}
	last, lastN := "", -1
	for _, b := range blocks {
		n, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(b), ".blk"))
		if err == nil && n > lastN {
			last, lastN = b, n
		}
	}
	return last
}

// TestTornRelayStreamTailLosesNothing: a crash left half a record at the
// end of the stream's last message block (the tail of a write the crash
// cut). The relay starts, and neither the acknowledged incidents before it
// nor the next ones after it are lost, doubled or glued to it; a replay of
// everything from the sensor is still dropped as repeats.
func TestTornRelayStreamTailLosesNothing(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	maddr := sparePort(t)
	r := startRelay(t, dir, "--ring", "50", "--metrics-listen", maddr)
	want := writeIncidents(t, data, "rtorn", 0, 100)
	s := startSensor(t, data, r)
	r.WaitHistory(t, want, 0)
	r.kill()
	blk := r.lastStreamBlock(t)
	b, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	// Half of the last record again: what a write cut by a crash leaves.
	tail := b[len(b)-min(len(b), 1200):]
	appendRaw(t, blk, tail[:len(tail)/2])
	r.restart(t)
	want = append(want, writeIncidents(t, data, "rtorn", 100, 50)...)
	r.WaitHistory(t, want, 0)
	// And once more from the sensor's side: a replay of everything
	// (cursor and sent index gone) is dropped, torn tail or not.
	s.stop()
	removeCursors(t, data)
	s.restart(t)
	if !waitUntil(replayTimeout, func() bool {
		return metric(t, maddr, "attackmap_relay_incidents_duplicate_total") >= float64(len(want))
	}) {
		t.Errorf("the relay did not drop the replay of %d as repeats within %v", len(want), replayTimeout)
	}
	time.Sleep(settle)
	got := r.History(t)
	check(t, "torn relay stream tail", want, got)
	if got[""] != 0 {
		t.Errorf("%d stored incidents do not decode (a fragment glued to a record)", got[""])
	}
}

// removeCursors deletes the sensor's cursors and sent-ids indexes: the
// sensor then replays its whole journal.
func removeCursors(t testing.TB, data string) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(data, "cursor-*"))
	if len(paths) == 0 {
		t.Fatal("no sensor cursor to remove")
	}
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRedeliveryBeyondTheRingIsDropped: with a ring of 50, a sensor that
// lost its cursor and sent index replays 300 incidents; the stream's
// de-duplication window drops every one, in the store and on the SSE
// stream, also after a relay restart (the server keeps the window).
func TestRedeliveryBeyondTheRingIsDropped(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	maddr := sparePort(t)
	r := startRelay(t, dir, "--ring", "50", "--metrics-listen", maddr)
	sub := followStream(t, r.Addr)
	want := writeIncidents(t, data, "replay", 0, 300)
	s := startSensor(t, data, r)
	r.WaitHistory(t, want, 0)
	time.Sleep(settle)
	before := sub.events()
	// All 300 are dropped as repeats, the 250 older than the ring by the
	// stream.
	replay := func(what string) {
		t.Helper()
		if !waitUntil(replayTimeout, func() bool { return metric(t, maddr, "attackmap_relay_incidents_duplicate_total") >= 300 }) {
			t.Errorf("%s: not within %v", what, replayTimeout)
		}
		if n := metric(t, maddr, "attackmap_relay_incidents_duplicate_indexed_total"); n != 250 {
			t.Errorf("%s: %v repeats dropped by the index, want 250", what, n)
		}
	}
	s.stop()
	removeCursors(t, data)
	s.restart(t)
	replay("300 repeats dropped")
	// The same after a restart of the relay: the window outlives it.
	s.stop()
	removeCursors(t, data)
	r.stop()
	r.restart(t)
	s.restart(t)
	replay("300 repeats dropped after a relay restart")
	got := r.WaitHistory(t, want, settle)
	check(t, "redelivery beyond the ring", want, got)
	// The stream: nothing of the replays. (With a ring of 50 the hub
	// keeps only 50 frames, so a subscriber more than 50 behind the
	// first burst is cut off and resumes with a reset: it need not hold
	// all 300.)
	bad, dups, _ := sub.check(t, nil)
	if n := sub.events(); len(bad) > 0 || dups > 0 || n != before {
		t.Errorf("stream: %d ids not increasing %v, %d duplicated, %d events during the replays",
			len(bad), bad, dups, n-before)
	}
}

// TestRelayOnAFullDiskRefusesIngestAndResumes: the relay's data directory
// is on a full tmpfs. It starts, serves the feed and the stream, refuses
// batches with an error (no ack: the sensor keeps them), says so once,
// exports disk_full, and takes them by itself when space returns.
func TestRelayOnAFullDiskRefusesIngestAndResumes(t *testing.T) {
	dir := testkit.Tmpfs(t, "2m")
	data := filepath.Join(t.TempDir(), "data")
	maddr := sparePort(t)
	r := startRelay(t, dir, "--metrics-listen", maddr)
	want := writeIncidents(t, data, "rfull", 0, 50)
	startSensor(t, data, r)
	r.WaitHistory(t, want, 0)
	r.stop()
	ballast := fillDisk(t, dir)
	r.restart(t) // returns once it serves /api/live-feed
	sub := followStream(t, r.Addr)
	want = append(want, writeIncidents(t, data, "rfull", 50, 50)...)
	waitFor(t, "the relay refusing a batch", func() bool {
		return metric(t, maddr, `attackmap_relay_batches_not_stored_total{reason="disk_full"}`) >= 1
	})
	if v := metric(t, maddr, "attackmap_relay_disk_full"); v != 1 {
		t.Errorf("attackmap_relay_disk_full = %v on a full disk", v)
	}
	if n := held(t, r, want); n != 50 {
		t.Errorf("the relay holds %d of 100 on a full disk, want the 50 from before", n)
	}
	time.Sleep(time.Second) // more refusals, still one log line
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	got := r.WaitHistory(t, want, settle)
	check(t, "relay on a full disk", want, got)
	log := r.log.String()
	if n := strings.Count(log, "the disk refuses writes; refusing ingest"); n != 1 ||
		!strings.Contains(log, "free_bytes=0") || !strings.Contains(log, "ingest resumed") {
		t.Errorf("want one full-disk line with the free space and one resume line, got %d:\n%s", n, tail(log, 20))
	}
	if v := metric(t, maddr, "attackmap_relay_disk_full"); v != 0 {
		t.Errorf("attackmap_relay_disk_full = %v after space returned", v)
	}
	bad, dups, missing := sub.check(t, want[50:])
	if len(bad) > 0 || dups > 0 || missing > 0 {
		t.Errorf("stream: %d ids not increasing %v, %d duplicated, %d missing", len(bad), bad, dups, missing)
	}
}

// TestSequenceNumbersNeverRepeatAcrossRestarts: a subscriber follows the
// stream (resuming with Last-Event-ID, like a browser) across a SIGKILL,
// a stop on a full disk, a start and a SIGKILL on it, and a start after
// space returned: the ids it receives strictly increase and every
// incident arrives once.
func TestSequenceNumbersNeverRepeatAcrossRestarts(t *testing.T) {
	dir := testkit.Tmpfs(t, "2m")
	data := filepath.Join(t.TempDir(), "data")
	r := startRelay(t, dir)
	sub := followStream(t, r.Addr)
	want := writeIncidents(t, data, "seq", 0, 30)
	startSensor(t, data, r)
	r.WaitHistory(t, want, 0)
	r.kill()
	r.restart(t)
	want = append(want, writeIncidents(t, data, "seq", 30, 30)...)
	r.WaitHistory(t, want, 0)
	ballast := fillDisk(t, dir)
	r.stop() // a stop on a full disk
	r.restart(t)
	want = append(want, writeIncidents(t, data, "seq", 60, 30)...)
	time.Sleep(500 * time.Millisecond) // refused meanwhile
	r.kill()
	r.restart(t)
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	got := r.WaitHistory(t, want, settle)
	check(t, "sequence numbers across restarts", want, got)
	bad, dups, missing := sub.check(t, want)
	if len(bad) > 0 || dups > 0 || missing > 0 {
		t.Errorf("stream: %d ids not increasing %v, %d duplicated, %d missing", len(bad), bad, dups, missing)
	}
}
