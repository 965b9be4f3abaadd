package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/internal/testkit"
	"github.com/attackmap/attackmap/relay/token"
)

// startTimeout bounds the wait for a binary to come up: each starts in well
// under a second; 30 s covers a loaded 2-core machine building other
// packages at the same time.
const startTimeout = 30 * time.Second

// stopTimeout is how long a binary gets after SIGTERM before SIGKILL: both
// exit at once on SIGTERM, so it only matters when something is wrong.
const stopTimeout = 15 * time.Second

// deliverTimeout bounds the wait for the relay to hold what a case wrote.
// A few hundred incidents take well under a second over loopback; a minute
// covers the push backoff (at most 30 s between attempts) once.
const deliverTimeout = 60 * time.Second

// built holds the binaries, built once per run of the suite.
var built struct {
	once          sync.Once
	dir           string
	sensor, relay string
	err           error
}

// binaries builds cmd/attackmap-sensor and cmd/attackmap-relay into a
// temporary directory (once for the whole suite) and returns their paths.
func binaries(t testing.TB) (sensor, relay string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binaries; skipped in -short")
	}
	built.once.Do(func() {
		// ATTACKMAP_FAULTS_BIN runs the suite against binaries built
		// elsewhere (attackmap-sensor and attackmap-relay in that
		// directory): how one checks that a case fails on an older build.
		if d := os.Getenv("ATTACKMAP_FAULTS_BIN"); d != "" {
			built.sensor, built.relay = filepath.Join(d, "attackmap-sensor"), filepath.Join(d, "attackmap-relay")
			return
		}
		built.dir, built.err = os.MkdirTemp("", "attackmap-faults-bin-*")
		if built.err != nil {
			return
		}
		// The go command that runs this test is the one to build with.
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = "/usr/local/go/bin/go"
		}
		for _, b := range []struct {
			out *string
			pkg string
		}{
			{&built.sensor, "cmd/attackmap-sensor"}, {&built.relay, "cmd/attackmap-relay"},
		} {
			*b.out = filepath.Join(built.dir, filepath.Base(b.pkg))
			cmd := exec.Command(goTool, "build", "-o", *b.out, "github.com/attackmap/attackmap/"+b.pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("building %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.sensor, built.relay
}

func cleanupBinaries() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// proc is a running binary with its combined log.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	log  *testkit.SyncBuffer
	done chan struct{}
	err  error // exit status, set before done closes

	stopping atomic.Bool // the test stopped or killed it
}

// procs are the processes each test started, so that a wait can fail at
// once when one of them died on its own.
var procs struct {
	sync.Mutex
	by map[testing.TB][]*proc
}

// died returns the first process of t that exited without being told to.
func died(t testing.TB) *proc {
	procs.Lock()
	defer procs.Unlock()
	for _, p := range procs.by[t] {
		if ok, _ := p.exited(); ok && !p.stopping.Load() {
			return p
		}
	}
	return nil
}

// start runs bin with args; the test's cleanup stops it (SIGTERM, then
// SIGKILL after stopTimeout) if it is still running.
func start(t testing.TB, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(bin, args...), log: &testkit.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	procs.Lock()
	if procs.by == nil {
		procs.by = map[testing.TB][]*proc{}
	}
	procs.by[t] = append(procs.by[t], p)
	procs.Unlock()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, tail(p.log.String(), 60))
		}
	})
	return p
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// exited reports whether the process ended (and how).
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM and waits, then SIGKILL after stopTimeout.
func (p *proc) stop() {
	if ok, _ := p.exited(); ok {
		return
	}
	p.stopping.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.t.Errorf("%s did not stop %v after SIGTERM; killing it", p.name, stopTimeout)
		p.kill()
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if ok, _ := p.exited(); ok {
		return
	}
	p.stopping.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// sparePort returns a loopback TCP address that was free a moment ago.
func sparePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// relayProc is a running attackmap-relay.
type relayProc struct {
	*proc
	Addr    string // host:port
	DataDir string
	Token   string // the token of sensor host "web-1"
	args    []string
}

// startRelay runs the real relay on a spare loopback port with its data in
// dir, a token for host "web-1", no ingest rate limit and no metrics
// listener; extra flags (e.g. "--ring", "50") are appended. It returns once
// the relay answers /api/live-feed.
func startRelay(t testing.TB, dir string, extra ...string) *relayProc {
	t.Helper()
	tokFile := filepath.Join(dir, "relay-tokens")
	tok, err := token.Add(tokFile, "web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &relayProc{Addr: sparePort(t), DataDir: filepath.Join(dir, "relay"), Token: tok}
	r.args = append([]string{"serve", "--listen", r.Addr, "--data", r.DataDir, "--token-file", tokFile,
		"--metrics-listen", "", "--ingest-rate", "-1"}, extra...)
	r.restart(t)
	return r
}

// restart starts the relay again with the same flags and data (after stop
// or kill).
func (r *relayProc) restart(t testing.TB) {
	t.Helper()
	_, bin := binaries(t)
	r.proc = start(t, "relay", bin, r.args...)
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := http.Get("http://" + r.Addr + "/api/live-feed?limit=1")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if ok, err := r.exited(); ok {
			t.Fatalf("relay exited at start: %v\n%s", err, tail(r.log.String(), 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay not answering after %v\n%s", startTimeout, tail(r.log.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// IngestURL is the URL a sensor pushes to.
func (r *relayProc) IngestURL() string { return "ws://" + r.Addr + "/api/ingest" }

// Incidents reads every incident version the relay's stream holds, oldest
// first, through GET /api/history as NDJSON (the relay must be running).
func (r *relayProc) Incidents(t testing.TB) [][]byte {
	t.Helper()
	u := "http://" + r.Addr + "/api/history?format=ndjson&limit=50000&from=2000-01-01T00:00:00Z&to=" +
		url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("reading the relay's history: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("reading the relay's history: %d %s", resp.StatusCode, b)
	}
	var out [][]byte
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// History counts the incidents in the relay's stream per incident id:
// every incident the relay accepted, repeats included (the relay stores
// each accepted copy before it acknowledges, so these are exactly what it
// delivered). Incidents that do not decode are counted under "".
func (r *relayProc) History(t testing.TB) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, line := range r.Incidents(t) {
		var in struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(line, &in) != nil {
			in.ID = ""
		}
		got[in.ID]++
	}
	return got
}

// WaitHistory waits until the relay's history holds every id in want (or
// deliverTimeout passes), then a settle period more so that repeats still
// in flight show up, and returns the counts.
func (r *relayProc) WaitHistory(t testing.TB, want []string, settle time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(deliverTimeout)
	for {
		got := r.History(t)
		missing := 0
		for _, id := range want {
			if got[id] == 0 {
				missing++
			}
		}
		if p := died(t); p != nil {
			t.Fatalf("%s exited on its own (%v) with %d of %d ids missing:\n%s",
				p.name, p.err, missing, len(want), tail(p.log.String(), 30))
		}
		if missing == 0 || time.Now().After(deadline) {
			if missing > 0 {
				t.Logf("%d of %d ids still missing after %v", missing, len(want), deliverTimeout)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(settle)
	return r.History(t)
}

// tally compares what a case wrote with what the relay holds: delivered
// counts ids held at least once, lost ids not held, duplicated the extra
// copies of written ids (an id held three times adds 2).
func tally(want []string, got map[string]int) (delivered, lost, duplicated int) {
	for _, id := range want {
		switch n := got[id]; {
		case n == 0:
			lost++
		default:
			delivered++
			duplicated += n - 1
		}
	}
	return delivered, lost, duplicated
}

// sensorProc is a running attackmap-sensor.
type sensorProc struct {
	*proc
	DataDir string
	args    []string
}

// sensorConfig is the configuration every case starts from: no GeoIP
// databases, no eBPF (the suite must not depend on the kernel), and no
// system logs followed (logs default to paths that exist on the host).
// Cases that follow log files pass --auth-log/--access-log.
const sensorConfig = `{"host":"web-1","geoip":{"paths":[]},"ebpf":{"enabled":false},
 "logs":{"auth":[],"access":[],"error":[],"firewall":[]}}`

// startSensor runs the real sensor with its data in dataDir, pushing to r
// as host "web-1"; extra flags are appended. It does not wait for
// anything: the sensor reads its journal when it is ready.
func startSensor(t testing.TB, dataDir string, r *relayProc, extra ...string) *sensorProc {
	t.Helper()
	cfg := filepath.Join(filepath.Dir(dataDir), filepath.Base(dataDir)+"-config.json")
	if err := os.WriteFile(cfg, []byte(sensorConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &sensorProc{DataDir: dataDir}
	s.args = append([]string{"run", "--config", cfg, "--data", dataDir,
		"--relay", r.IngestURL(), "--token", r.Token}, extra...)
	s.restart(t)
	return s
}

// restart starts the sensor again with the same flags and data.
func (s *sensorProc) restart(t testing.TB) {
	t.Helper()
	bin, _ := binaries(t)
	s.proc = start(t, "sensor", bin, s.args...)
}

// mkIncident returns incident i of a case as a journal line and its id:
// a valid ssh_bruteforce incident whose id is "ssh_bruteforce:<ip>:<tag>:<i>"
// (tag keeps cases apart), first and last seen at at.
func mkIncident(tag string, i int, at time.Time) (line []byte, id string) {
	ip := fmt.Sprintf("81.2.%d.%d", 69+i/250, 1+i%250)
	id = fmt.Sprintf("ssh_bruteforce:%s:%s:%d", ip, tag, i)
	at = at.UTC()
	b, err := incident.Marshal(&incident.Incident{
		ID: id, Source: "ssh_bruteforce", Severity: incident.High, IP: ip, TS: at,
		FirstSeen: at, LastSeen: at, Count: 6, Host: "web-1", Summary: "6 failed SSH logins",
	})
	if err != nil {
		panic(err)
	}
	return b, id
}

// fillDisk writes a file taking every free byte of dir's file system and
// returns its path; removing it frees the space.
func fillDisk(t testing.TB, dir string) string {
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

// appendRaw appends bytes to a file as another process would, with no
// healing: what a crash, or an older writer, leaves.
func appendRaw(t testing.TB, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

// writeIncidents appends n incidents tagged tag, numbered from first, to
// dir's incidents journal for today (the real clock), newline-terminated,
// and returns their ids.
func writeIncidents(t testing.TB, dir, tag string, first, n int) []string {
	t.Helper()
	var b bytes.Buffer
	ids := make([]string, 0, n)
	now := time.Now()
	for i := first; i < first+n; i++ {
		line, id := mkIncident(tag, i, now)
		b.Write(line)
		b.WriteByte('\n')
		ids = append(ids, id)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	appendRaw(t, todayFile(dir), b.Bytes())
	return ids
}

// todayFile is today's incidents journal in dir.
func todayFile(dir string) string {
	return filepath.Join(dir, jsonl.FileName("incidents", time.Now()))
}
