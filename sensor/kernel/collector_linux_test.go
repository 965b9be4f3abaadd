//go:build linux

package kernel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/attackmap/attackmap/bpf"
	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/sensor/event"
)

// helperEnv makes the test binary act as a separate process (so that its
// events are not the sensor's own, which the kernel filters out).
const helperEnv = "ATTACKMAP_KERNEL_HELPER"

func TestMain(m *testing.M) {
	if cmd := os.Getenv(helperEnv); cmd != "" {
		if err := helper(strings.Fields(cmd)); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper runs one action:
//
//	connect LOCALIP ADDR   dial ADDR from LOCALIP, print the local address
//	open [w:]PATH...       open (for writing with w:) and close each path
//	exec PATH ARG...       run PATH
//	as COMM CMD...         rename this thread to COMM, then run CMD on it
func helper(args []string) error {
	switch args[0] {
	case "as":
		runtime.LockOSThread() // comm is per thread
		name := append([]byte(args[1]), 0)
		if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0); err != nil {
			return err
		}
		return helper(args[2:])
	case "exec":
		return exec.Command(args[1], args[2:]...).Run()
	case "connect":
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(args[1])}, Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", args[2])
		if err != nil {
			return err
		}
		fmt.Println(conn.LocalAddr())
		return conn.Close()
	case "open":
		for _, p := range args[1:] {
			flags := os.O_RDONLY
			if rest, ok := strings.CutPrefix(p, "w:"); ok {
				p, flags = rest, os.O_WRONLY|os.O_CREATE
			}
			if f, err := os.OpenFile(p, flags, 0o600); err == nil {
				f.Close()
			}
		}
		return nil
	}
	return fmt.Errorf("unknown helper command %q", args[0])
}

// runHelper runs the test binary as a helper and returns its pid and output.
func runHelper(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strings.Join(args, " "))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %v: %v", args, err)
	}
	return cmd.Process.Pid, strings.TrimSpace(string(out))
}

// requireBPF skips unless the collectors can run here.
func requireBPF(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("needs root and a kernel with BTF, tracefs and BPF ring buffers (CI runs as root): %v", err)
	}
}

// sink gathers the events of both lanes and lets a test wait for one.
type sink struct {
	mu     sync.Mutex
	events []event.Event
	more   chan struct{} // closed and replaced on each new event
	wg     sync.WaitGroup
}

func newSink(c *Collector) *sink {
	s := &sink{more: make(chan struct{})}
	for _, ch := range []<-chan event.Event{c.Net(), c.Proc()} {
		s.wg.Go(func() {
			for ev := range ch {
				s.mu.Lock()
				s.events = append(s.events, ev)
				close(s.more)
				s.more = make(chan struct{})
				s.mu.Unlock()
			}
		})
	}
	return s
}

// wait returns the first event that satisfies pred, waiting up to 10 s
// (generous: the machine is shared; events normally arrive in microseconds).
func (s *sink) wait(t *testing.T, what string, pred func(event.Event) bool) event.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		for _, ev := range s.events {
			if pred(ev) {
				s.mu.Unlock()
				return ev
			}
		}
		more := s.more
		s.mu.Unlock()
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("no %s event within 10 s", what)
		}
	}
}

func (s *sink) all() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// closedPorts returns n loopback ports that nothing listens on.
func closedPorts(t *testing.T, network, host string, n int) []uint16 {
	var ports []uint16
	for range n {
		ln, err := net.Listen(network, net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, uint16(ln.Addr().(*net.TCPAddr).Port))
		ln.Close()
	}
	return ports
}

// listen starts a listener that accepts and closes connections until the
// test ends.
func listen(t *testing.T, network, addr string) (net.Listener, uint16) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, 0
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln, uint16(ln.Addr().(*net.TCPAddr).Port)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestCollectorReportsEachKindButNotItself(t *testing.T) {
	requireBPF(t)
	// A short directory: a sensitive-path prefix has at most 63 bytes.
	dir, err := os.MkdirTemp("/tmp", "amk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	goroutinesBefore := runtime.NumGoroutine()
	c, err := Start(Config{
		SensitivePaths: append(DefaultSensitivePaths(), dir+"/plain", dir+"/*/.ssh/"),
		Logger:         testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := c.Register(reg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()
	s := newSink(c)
	self := uint32(os.Getpid())
	loop4 := netip.MustParseAddr("127.0.0.1")

	ln4, port4 := listen(t, "tcp4", "127.0.0.1:0")
	_ = ln4
	ln6, port6 := listen(t, "tcp6", "[::1]:0")

	// What the sensor itself does must not show up (checked at the end,
	// after the same actions by other processes did show up).
	if f, err := os.Open("/etc/shadow"); err == nil {
		f.Close()
	}
	if f, err := os.Create(dir + "/plain"); err == nil {
		f.Close()
	}
	if conn, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port4)); err == nil {
		conn.Close()
	}

	t.Run("exec", func(t *testing.T) {
		marker := fmt.Sprintf("attackmap-marker-%d", time.Now().UnixNano())
		if err := exec.Command("/bin/true", marker, "second\targ").Run(); err != nil {
			t.Fatal(err)
		}
		ev := s.wait(t, "exec", func(ev event.Event) bool {
			return ev.Kind == event.KindExec && slices.Contains(ev.Argv, marker)
		})
		if ev.Path != "/bin/true" || ev.Comm != "true" || ev.PPID != self || ev.PID == self || ev.PID == 0 {
			t.Errorf("exec event %+v: want path /bin/true, comm true, ppid %d", ev, self)
		}
		if want := []string{"/bin/true", marker, `second\x09arg`}; !slices.Equal(ev.Argv, want) {
			t.Errorf("argv = %q, want %q (control characters escaped)", ev.Argv, want)
		}
		if ev.UID == nil || *ev.UID != uint32(os.Getuid()) || ev.Source != event.SourceEBPF {
			t.Errorf("exec event uid/source: %+v", ev)
		}
		if d := time.Since(ev.TS); d < 0 || d > time.Minute {
			t.Errorf("exec event time %v is %v away from now", ev.TS, d)
		}
	})

	t.Run("connect and accept, IPv4", func(t *testing.T) {
		pid, local := runHelper(t, "connect", "127.0.0.7", fmt.Sprintf("127.0.0.1:%d", port4))
		lap := netip.MustParseAddrPort(local)
		con := s.wait(t, "connect", func(ev event.Event) bool {
			return ev.Kind == event.KindConnect && ev.PID == uint32(pid)
		})
		if con.SrcIP != lap.Addr() || con.DstIP != loop4 || con.DstPort != port4 || con.Proto != "tcp" {
			t.Errorf("connect event %+v: want %v -> 127.0.0.1:%d", con, lap.Addr(), port4)
		}
		if con.Comm == "" || con.UID == nil {
			t.Errorf("connect event without comm or uid: %+v", con)
		}
		acc := s.wait(t, "accept", func(ev event.Event) bool {
			return ev.Kind == event.KindAccept && ev.SrcPort == lap.Port() && ev.SrcIP == lap.Addr()
		})
		if acc.DstIP != loop4 || acc.DstPort != port4 || acc.PID != 0 {
			t.Errorf("accept event %+v: want %v -> 127.0.0.1:%d, no pid", acc, lap, port4)
		}
	})

	t.Run("connect and accept, IPv6", func(t *testing.T) {
		if ln6 == nil {
			t.Skip("no IPv6 loopback on this machine")
		}
		pid, local := runHelper(t, "connect", "::1", fmt.Sprintf("[::1]:%d", port6))
		lap := netip.MustParseAddrPort(local)
		s.wait(t, "IPv6 connect", func(ev event.Event) bool {
			return ev.Kind == event.KindConnect && ev.PID == uint32(pid) && ev.DstIP == netip.IPv6Loopback() && ev.DstPort == port6
		})
		s.wait(t, "IPv6 accept", func(ev event.Event) bool {
			return ev.Kind == event.KindAccept && ev.SrcIP == netip.IPv6Loopback() && ev.SrcPort == lap.Port() && ev.DstPort == port6
		})
	})

	t.Run("open of sensitive paths only", func(t *testing.T) {
		pid, _ := runHelper(t, "open",
			dir+"/other", dir+"/u1/x/.ssh/k", dir+"//.ssh/k", "/etc/hostname", // not sensitive
			"/etc/shadow", "w:"+dir+"/plain", dir+"/u1/.ssh/authorized_keys")
		last := s.wait(t, "open", func(ev event.Event) bool {
			return ev.Kind == event.KindOpen && ev.PID == uint32(pid) && ev.Path == dir+"/u1/.ssh/authorized_keys"
		})
		var got []string
		for _, ev := range s.all() {
			if ev.Kind == event.KindOpen && ev.PID == uint32(pid) {
				got = append(got, ev.Detail+" "+ev.Path)
			}
		}
		want := []string{"read /etc/shadow", "write " + dir + "/plain", "read " + dir + "/u1/.ssh/authorized_keys"}
		if !slices.Equal(got, want) {
			t.Errorf("open events of the helper:\n got %q\nwant %q", got, want)
		}
		if last.Comm == "" || last.UID == nil || *last.UID != uint32(os.Getuid()) {
			t.Errorf("open event without comm or uid: %+v", last)
		}
	})

	t.Run("ignored comms", func(t *testing.T) {
		marker := fmt.Sprintf("attackmap-ignored-%d", time.Now().UnixNano())
		quiet, _ := runHelper(t, "as", "dpkg", "open", "/etc/shadow")
		quietConn, _ := runHelper(t, "as", "apt-get", "connect", "127.0.0.8", fmt.Sprintf("127.0.0.1:%d", port4))
		runHelper(t, "as", "dpkg", "exec", "/bin/true", marker) // a child of dpkg
		// The same actions under another name, afterwards: once they
		// are seen, the ignored ones would have been seen too.
		loud, _ := runHelper(t, "as", "notdpkg", "open", "/etc/shadow")
		s.wait(t, "open by notdpkg", func(ev event.Event) bool { return ev.Kind == event.KindOpen && ev.PID == uint32(loud) })
		loudConn, _ := runHelper(t, "as", "notapt", "connect", "127.0.0.9", fmt.Sprintf("127.0.0.1:%d", port4))
		ev := s.wait(t, "connect by notapt", func(ev event.Event) bool { return ev.Kind == event.KindConnect && ev.PID == uint32(loudConn) })
		if ev.Comm != "notapt" {
			t.Errorf("connect comm %q, want notapt", ev.Comm)
		}
		if err := exec.Command("/bin/true", marker+"-loud").Run(); err != nil {
			t.Fatal(err)
		}
		s.wait(t, "exec", func(ev event.Event) bool {
			return ev.Kind == event.KindExec && slices.Contains(ev.Argv, marker+"-loud")
		})
		for _, ev := range s.all() {
			// (The helpers' own exec events come before they rename themselves.)
			if ev.Kind != event.KindExec && (ev.PID == uint32(quiet) || ev.PID == uint32(quietConn)) || slices.Contains(ev.Argv, marker) {
				t.Errorf("event from an ignored comm: %+v", ev)
			}
		}
	})

	// knocker is the probes' source, an address no other test uses.
	knocker := netip.MustParseAddr("127.3.4.5")
	t.Run("knocks on 20 closed ports", func(t *testing.T) {
		ports := closedPorts(t, "tcp4", "127.0.0.1", 20)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: knocker.AsSlice()}, Timeout: 5 * time.Second}
		for _, p := range ports {
			conn, err := d.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", p))
			if err == nil {
				conn.Close()
				t.Fatalf("port %d is open", p)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("knock on %d: %v", p, err)
			}
		}
		for _, p := range ports {
			ev := s.wait(t, fmt.Sprintf("probe on port %d", p), func(ev event.Event) bool {
				return ev.Kind == event.KindProbe && ev.DstPort == p && ev.SrcIP == knocker
			})
			if ev.DstIP != loop4 || ev.SrcPort == 0 || ev.PID != 0 || ev.Proto != "tcp" {
				t.Errorf("probe event %+v: want 127.3.4.5:* -> 127.0.0.1:%d", ev, p)
			}
		}
		if ln6 == nil {
			return
		}
		p6 := closedPorts(t, "tcp6", "::1", 1)[0]
		if conn, err := net.Dial("tcp6", fmt.Sprintf("[::1]:%d", p6)); err == nil {
			conn.Close()
			t.Fatalf("port %d is open", p6)
		}
		s.wait(t, "IPv6 probe", func(ev event.Event) bool {
			return ev.Kind == event.KindProbe && ev.DstPort == p6 && ev.SrcIP == netip.IPv6Loopback() && ev.DstIP == netip.IPv6Loopback()
		})
	})

	for _, ev := range s.all() {
		if ev.PID == self {
			t.Errorf("event from the sensor's own process: %+v", ev)
		}
	}

	t.Run("journal", func(t *testing.T) {
		// The daemon's path: decoded events -> events-YYYY-MM-DD.jsonl.
		jdir := t.TempDir()
		w, err := jsonl.Open(jdir, jsonl.Options{Prefix: "events", RetentionDays: 7, MaxDailyBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		evs := s.all()
		for _, ev := range evs {
			if err := w.AppendJSON(ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		names, err := jsonl.List(jdir, "events")
		if err != nil || len(names) != 1 {
			t.Fatalf("journal files %v, %v", names, err)
		}
		f, err := os.Open(filepath.Join(jdir, names[0]))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		n, probe := 0, ""
		for sc.Scan() {
			var back event.Event
			if err := json.Unmarshal(sc.Bytes(), &back); err != nil {
				t.Fatalf("line %d: %v", n+1, err)
			}
			if back.Kind != evs[n].Kind || back.SrcIP != evs[n].SrcIP || back.Path != evs[n].Path || !back.TS.Equal(evs[n].TS) {
				t.Errorf("line %d reads back as %+v, wrote %+v", n+1, back, evs[n])
			}
			// The collectors see the whole machine: other tests' probes
			// (from 127.0.0.1) may come first, so look for the knocker's.
			if back.Kind == event.KindProbe && back.SrcIP == knocker && probe == "" {
				probe = sc.Text()
			}
			n++
		}
		if n != len(evs) {
			t.Errorf("%d lines for %d events", n, len(evs))
		}
		for _, want := range []string{`"kind":"probe"`, `"source":"ebpf"`, `"src_ip":"127.3.4.5"`, `"dst_ip":"127.0.0.1"`} {
			if !strings.Contains(probe, want) {
				t.Errorf("probe line %s lacks %s", probe, want)
			}
		}
		t.Logf("a probe event in the journal: %s", probe)
	})

	out, err := metricText(reg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `attackmap_ebpf_events_total{kind="probe"}`) {
		t.Errorf("metrics lack the probe counter:\n%s", out)
	}

	// Clean shutdown: Run returns nil, both lanes close, nothing leaks.
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of cancel")
	}
	s.wg.Wait() // both lanes closed
	if k, u := c.Drops(); k != 0 || u != 0 {
		t.Errorf("drops: kernel %d, user %d; want none at this load", k, u)
	}
	buf := make([]byte, 1<<20)
	stack := string(buf[:runtime.Stack(buf, true)])
	for _, leak := range []string{"sensor/kernel.(*Collector)", "cilium/ebpf/ringbuf"} {
		if strings.Contains(stack, leak) {
			t.Errorf("goroutine left after Run returned (%s):\n%s", leak, stack)
		}
	}
	ln4.Close()
	if ln6 != nil {
		ln6.Close()
	}
	t.Logf("goroutines before %d, after %d", goroutinesBefore, runtime.NumGoroutine())
}

func metricText(g prometheus.Gatherer) (string, error) {
	mfs, err := g.Gather()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			fmt.Fprintf(&b, "%s{%s} %v\n", mf.GetName(), strings.Join(labels, ","), m.GetCounter().GetValue())
		}
	}
	return b.String(), nil
}

func TestStartRejectsBadConfig(t *testing.T) {
	requireBPF(t)
	for _, cfg := range []Config{
		{SensitivePaths: []string{"etc/shadow"}},
		{IgnoreComms: []string{"a-name-longer-than-15"}},
	} {
		if c, err := Start(cfg); err == nil {
			// Run on an ended context releases what Start loaded.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = c.Run(ctx)
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}

func TestDispatchWithoutWaitDropsAtOnce(t *testing.T) {
	c := &Collector{net: make(chan event.Event, 2), proc: make(chan event.Event, 2)} // wait 0: off
	// A flood of process events fills its lane...
	for range 10 {
		c.dispatch(event.Event{Kind: event.KindExec}, laneProc)
	}
	// ...and network events still get through.
	c.dispatch(event.Event{Kind: event.KindProbe}, laneNet)
	c.dispatch(event.Event{Kind: event.KindProbe}, laneNet)
	c.dispatch(event.Event{Kind: event.KindProbe}, laneNet)
	if len(c.net) != 2 || len(c.proc) != 2 {
		t.Fatalf("lanes hold %d net, %d proc events", len(c.net), len(c.proc))
	}
	if n, p := c.st.userDrops[laneNet].Load(), c.st.userDrops[laneProc].Load(); n != 1 || p != 8 {
		t.Errorf("user drops: net %d, proc %d; want 1, 8", n, p)
	}
	if r := c.st.read[kindIndex(event.KindExec)].Load(); r != 10 {
		t.Errorf("exec events read = %d, want 10", r)
	}
}

func TestLaneWaitIsTheDefault(t *testing.T) {
	for _, tc := range []struct {
		cfg  time.Duration
		want time.Duration
	}{{0, DefaultLaneWait}, {-1, 0}, {50 * time.Millisecond, 50 * time.Millisecond}} {
		if got := laneWait(tc.cfg); got != tc.want {
			t.Errorf("laneWait(%v) = %v, want %v", tc.cfg, got, tc.want)
		}
	}
}

func TestFullLaneWaitsBoundedThenDrops(t *testing.T) {
	for _, ln := range []lane{laneNet, laneProc} {
		t.Run([]string{"net", "proc"}[ln], func(t *testing.T) {
			c := &Collector{net: make(chan event.Event, 1), proc: make(chan event.Event, 1)}
			c.wait[ln] = 20 * time.Millisecond
			ch := c.net
			if ln == laneProc {
				ch = c.proc
			}
			c.dispatch(event.Event{Kind: event.KindProbe}, ln)
			// Full and nobody reading: the reader waits, then drops.
			start := time.Now()
			c.dispatch(event.Event{Kind: event.KindProbe}, ln)
			if d := time.Since(start); d < 20*time.Millisecond {
				t.Errorf("gave up after %v, want a wait of 20 ms", d)
			}
			if n := c.st.userDrops[ln].Load(); n != 1 {
				t.Errorf("drops = %d, want 1", n)
			}
			// A consumer that makes room in time: nothing lost.
			got := make(chan event.Event)
			go func() { <-ch; got <- <-ch }()
			c.dispatch(event.Event{Kind: event.KindAccept}, ln)
			if ev := <-got; ev.Kind != event.KindAccept || c.st.userDrops[ln].Load() != 1 {
				t.Errorf("got %v, drops %d", ev.Kind, c.st.userDrops[ln].Load())
			}
		})
	}
}

// TestBurstSpillsIntoTheRingNotOntoTheFloor knocks on a closed port several
// times LaneCapacity while the consumer is stalled, with the default
// configuration: the lane fills, the reader waits, the records queue in the
// kernel ring, and once the consumer resumes every knock arrives, with no
// drop anywhere.
func TestBurstSpillsIntoTheRingNotOntoTheFloor(t *testing.T) {
	requireBPF(t)
	c, err := Start(Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	port := closedPorts(t, "tcp4", "127.0.0.1", 1)[0]
	src := netip.MustParseAddr("127.77.0.9")
	const knocks = 3 * LaneCapacity
	// Stalled consumer: nobody reads the lanes while the burst runs (the
	// wait per event stays far below DefaultLaneWait, the burst is fast).
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: time.Second}
	sent := 0
	for range knocks {
		conn, err := d.Dial("tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String())
		if err == nil {
			conn.Close()
			t.Fatal("closed port accepted a connection")
		}
		sent++
	}
	got := 0
	deadline := time.After(10 * time.Second)
	for got < sent {
		select {
		case ev := <-c.Net():
			if ev.Kind == event.KindProbe && ev.SrcIP == src && ev.DstPort == port {
				got++
			}
		case <-c.Proc():
		case <-deadline:
			t.Fatalf("received %d of %d knocks within 10 s", got, sent)
		}
	}
	k, u := c.Drops()
	if got != sent || k != 0 || u != 0 {
		t.Errorf("knocks: sent %d, received %d; drops: kernel %d, user %d; want all, 0, 0", sent, got, k, u)
	}
	cancel()
	go func() {
		for range c.Proc() {
		}
	}()
	for range c.Net() {
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestProgramsLoadWithoutTheICMPSendTracepoint loads the objects against
// this kernel's BTF minus the icmp:icmp_send tracepoint's context type, as
// a kernel before 6.10 would offer it: the program's CO-RE reads cannot be
// relocated there, and the object must load all the same (Start then skips
// attaching it).
func TestProgramsLoadWithoutTheICMPSendTracepoint(t *testing.T) {
	requireBPF(t)
	vmlinux, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	b, err := btf.NewBuilder(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Other types refer to the struct, so it is renamed rather than left
	// out (LoadKernelSpec returns a copy: the cached spec stays intact).
	renamed := 0
	for typ, err := range vmlinux.All() {
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := typ.(*btf.Struct); ok && s.Name == "trace_event_raw_icmp_send" {
			s.Name = "attackmap_test_hidden"
			renamed++
		}
		if _, err := b.Add(typ); err != nil {
			t.Fatal(err)
		}
	}
	if renamed != 1 {
		t.Fatalf("this kernel's BTF has %d trace_event_raw_icmp_send structs, want 1", renamed)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	older, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := older.AnyTypeByName("trace_event_raw_icmp_send"); !errors.Is(err, btf.ErrNotFound) {
		t.Fatalf("the trimmed BTF still has trace_event_raw_icmp_send: %v", err)
	}
	spec, err := bpf.LoadCollector()
	if err != nil {
		t.Fatal(err)
	}
	var objs bpf.CollectorObjects
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: older}}); err != nil {
		t.Fatalf("loading without trace_event_raw_icmp_send: %v", err)
	}
	defer objs.Close()
	if objs.HandleIcmpSend == nil || objs.HandleSendReset == nil {
		t.Error("programs missing after load")
	}
}
