package relay

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/attackmap/attackmap/internal/testkit"
)

// clusterProc is one attackmap-relay process of a cluster.
type clusterProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	logs *testkit.SyncBuffer
	done chan struct{}
}

func (p *clusterProc) url() string { return "http://" + p.addr }

// sigkill kills the relay (and with it its NATS node) with no chance to
// step down or flush.
func (p *clusterProc) sigkill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// startClusterProcs runs n attackmap-relay processes whose embedded NATS
// servers form one cluster, all at once, sharing one token file.
func startClusterProcs(t *testing.T, bin string, n int) ([]*clusterProc, string) {
	t.Helper()
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tokens")
	out, err := exec.Command(bin, "token", "add", "--token-file", tokFile, "web-1").Output()
	if err != nil {
		t.Fatalf("token add: %v", err)
	}
	tok := strings.TrimSpace(string(out))
	routes := testkit.FreeAddrs(t, n)
	var urls []string
	for _, a := range routes {
		urls = append(urls, "nats://"+a)
	}
	ps := make([]*clusterProc, n)
	addrs := make([]chan string, n)
	for i := range n {
		cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "",
			"--data", filepath.Join(dir, "data-"+strconv.Itoa(i)), "--token-file", tokFile, "--ingest-rate", "-1",
			"--nats-listen", routes[i], "--nats-routes", strings.Join(urls, ","), "--nats-name", "proc-"+strconv.Itoa(i))
		l := startLogged(t, cmd)
		ps[i] = &clusterProc{t: t, cmd: cmd, logs: l.logs, done: l.done}
		addrs[i] = l.addr
	}
	for i, p := range ps {
		select {
		case p.addr = <-addrs[i]:
		case <-time.After(90 * time.Second):
			t.Fatalf("relay %d did not start:\n%s", i, p.logs.String())
		}
	}
	return ps, tok
}

// sseFollower follows a relay's stream like a browser: on a drop it
// reconnects, to the next URL of its list, with the last id it saw.
type sseFollower struct {
	mu   sync.Mutex
	ids  []uint64
	seen map[string]int
	urls []string
	stop chan struct{}
	done chan struct{}
}

func follow(urls ...string) *sseFollower {
	f := &sseFollower{seen: map[string]int{}, urls: urls, stop: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

func (f *sseFollower) run() {
	defer close(f.done)
	last := ""
	for i := 0; ; i++ {
		select {
		case <-f.stop:
			return
		default:
		}
		base := f.urls[min(i, len(f.urls)-1)]
		o := streamOpts{}
		if last != "" {
			o.header = http.Header{"Last-Event-Id": {last}}
		}
		st, err := tryStream(base, o)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go func() {
			<-f.stop
			st.conn.Close()
		}()
		for {
			ev, err := st.read(time.Hour)
			if err != nil {
				break
			}
			if ev.name != "incident" {
				continue
			}
			var in struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal([]byte(ev.data), &in)
			n, _ := strconv.ParseUint(ev.id, 10, 64)
			f.mu.Lock()
			f.ids = append(f.ids, n)
			f.seen[in.ID]++
			f.mu.Unlock()
			last = ev.id
		}
		st.conn.Close()
	}
}

func (f *sseFollower) close() {
	close(f.stop)
	<-f.done
}

func (f *sseFollower) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ids)
}

// TestClusterProcessesSurviveSIGKILL runs the real binary: three relays in
// one cluster; a browser follows relay B; a sensor pushes to relay A.
// Relay B is SIGKILLed in the middle: its browser reconnects to C with its
// last id and misses nothing, duplicates nothing. Then relay C (a NATS node
// with a replica, maybe the stream's leader) is SIGKILLed during a burst:
// every acknowledged incident is kept and ingest resumes within seconds.
func TestClusterProcessesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the relay binary and runs a three-node cluster; some seconds")
	}
	bin := buildRelayBinary(t)
	ps, tok := startClusterProcs(t, bin, 3)
	a, b, c := ps[0], ps[1], ps[2]
	browser := follow(b.url(), c.url())
	defer browser.close()

	// A sensor that resends a batch until it is acknowledged.
	var acked []string
	var slowest time.Duration
	push := func(prefix string, batches int, during func(i int)) {
		d := pushUntilAcked(t, func() (*websocket.Conn, error) { return dialIngest(a.url(), tok) }, prefix, batches, 20,
			during, func(ids []string) { acked = append(acked, ids...) })
		slowest = max(slowest, d)
	}
	push("k", 10, nil)
	waitFor(t, "the browser on B to see the first 200", func() bool { return browser.count() >= 200 })
	b.sigkill()
	killedAt := time.Now()
	push("m", 10, nil)
	// C's consumer may have been on B's node, or B led the stream: C
	// reads on once a new leader is elected (4 to 9 s) and its consumer
	// is recreated; the browser reconnects meanwhile. What matters is
	// below: nothing missed, nothing twice.
	waitLong(t, time.Minute, "the browser, reconnected to C, to see all 400", func() bool { return browser.count() >= 400 })
	t.Logf("the browser had all 400 %v after B was killed", time.Since(killedAt).Round(time.Millisecond))
	browser.mu.Lock()
	for i := 1; i < len(browser.ids); i++ {
		if browser.ids[i] <= browser.ids[i-1] {
			t.Errorf("browser ids not increasing: %d after %d", browser.ids[i], browser.ids[i-1])
		}
	}
	for _, id := range acked {
		if browser.seen[id] != 1 {
			t.Errorf("the browser saw %s %d times across the kill, want once", id, browser.seen[id])
		}
	}
	browser.mu.Unlock()

	// C dies during a burst to A; A alone is not a quorum of three, so
	// bring B back first: two of three must keep ingest going.
	b2 := startAgain(t, b)
	killed := false
	push("n", 30, func(i int) {
		if i == 10 && !killed {
			killed = true
			c.sigkill()
		}
	})
	// A batch caught by the death waits for the new stream leader (a
	// Raft election: 4 to 9 s) and is sent again; nothing is lost, and
	// ingest goes on within seconds.
	if slowest > 20*time.Second {
		t.Errorf("a batch waited %v for its ack across the node's death, want seconds", slowest)
	}
	for _, r := range []*clusterProc{a, b2} {
		// A relay that just came back serves the history once its
		// node caught up with the stream.
		var count map[string]int
		complete := func() bool {
			code, got := historyIDsOnce(r.url(), "limit=50000")
			if code != http.StatusOK {
				return false
			}
			count = map[string]int{}
			for _, id := range got {
				count[id]++
			}
			return len(got) >= len(acked)
		}
		waitLong(t, time.Minute, "the history of "+r.url(), complete)
		for _, id := range acked {
			if count[id] != 1 {
				t.Fatalf("%s: acknowledged incident %s stored %d times\n%s", r.url(), id, count[id], r.logs.String())
			}
		}
	}
	t.Logf("%d incidents acknowledged; the slowest batch waited %v for its ack", len(acked), slowest)
}

// startAgain restarts a killed relay process with the same command line
// (the same data directory and cluster flags, a new HTTP port).
func startAgain(t *testing.T, p *clusterProc) *clusterProc {
	t.Helper()
	args := p.cmd.Args
	cmd := exec.Command(args[0], args[1:]...)
	l := startLogged(t, cmd)
	np := &clusterProc{t: t, cmd: cmd, logs: l.logs, done: l.done}
	select {
	case np.addr = <-l.addr:
	case <-time.After(90 * time.Second):
		// A goroutine dump says where it waits.
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(2 * time.Second)
		t.Fatalf("relay did not start again:\n%s", np.logs.String())
	}
	return np
}

// historyIDsOnce is historyIDs without failing the test: the status and
// the incident ids of one /api/history answer (none on an error).
func historyIDsOnce(base, query string) (int, []string) {
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get(base + "/api/history?" + query)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var ins []struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ins) != nil {
		return resp.StatusCode, nil
	}
	ids := make([]string, 0, len(ins))
	for _, in := range ins {
		ids = append(ids, in.ID)
	}
	return http.StatusOK, ids
}
