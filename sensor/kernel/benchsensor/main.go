//go:build linux

// Command benchsensor measures the eBPF collectors (make bench-sensor; needs
// root):
//
//  1. the cost an open() storm on a non-sensitive path pays: N open+close
//     pairs timed (thread CPU time) without the collectors, with a program
//     that does nothing on the same tracepoint (the floor), and with the
//     collectors, in rotated order, repeated; it prints the medians and
//     their ratios (target <= 1.10);
//  2. capacity: a loopback connect/accept storm and a closed-port knock
//     storm from a separate load process, as fast as the machine goes,
//     bounded in count and time; it prints the network events captured per
//     second and the kernel and user-space drop counters (target: none at
//     >= 50,000 events/s).
//
// All traffic stays on loopback (127.8.0.0/16 and 127.9.0.0/16 sources).
// The machine may be shared: compare figures from one run only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/kernel"
)

// loadEnv makes the binary act as the load generator (a separate process,
// so that its connects are not the sensor's own and are reported).
const loadEnv = "ATTACKMAP_BENCH_LOAD"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchsensor:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if spec := os.Getenv(loadEnv); spec != "" {
		return load(spec, stdout)
	}
	fs := flag.NewFlagSet("benchsensor", flag.ContinueOnError)
	opens := fs.Int("opens", 2_000_000, "open()/close() pairs per timed storm")
	reps := fs.Int("reps", 7, "repetitions of the with/without pair (the median is reported)")
	stormTime := fs.Duration("storm-time", 5*time.Second, "length of each network storm (upper bound)")
	stormMax := fs.Int("storm-max", 1_000_000, "connection attempts per network storm (upper bound)")
	workers := fs.Int("workers", 4, "load generator threads per network storm")
	paced := fs.Int("paced", 60_000, "also run each storm paced at this many network events/s (0: only flat out)")
	netWait := fs.Duration("lane-wait", -1, "also run the flat-out storms with this Config.NetLaneWait and ProcLaneWait (negative: waiting off, the drop-at-once behaviour, for comparison; 0: skip; the default configuration waits kernel.DefaultLaneWait)")
	skipOpen := fs.Bool("skip-open", false, "skip the open() storm")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := kernel.Available(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bench-sensor on %d CPUs, %s (a shared machine: compare figures within this run only)\n\n",
		runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	if !*skipOpen {
		if err := openStorm(stdout, *opens, *reps); err != nil {
			return err
		}
	}
	return netStorms(stdout, *stormTime, *stormMax, *workers, *paced, *netWait)
}

// running is a started collector whose lanes are drained and counted.
type running struct {
	c      *kernel.Collector
	cancel context.CancelFunc
	done   chan error
	wg     sync.WaitGroup
	count  func(event.Event)
}

func startCollector(cfg kernel.Config, count func(event.Event)) (*running, error) {
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	c, err := kernel.Start(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1), count: count}
	go func() { r.done <- c.Run(ctx) }()
	for _, ch := range []<-chan event.Event{c.Net(), c.Proc()} {
		r.wg.Go(func() {
			for ev := range ch {
				if r.count != nil {
					r.count(ev)
				}
			}
		})
	}
	return r, nil
}

func (r *running) stop() error {
	r.cancel()
	err := <-r.done
	r.wg.Wait()
	return err
}

// openStorm times n open+close pairs of a non-sensitive file without and
// with the collectors, alternating the order each repetition.
func openStorm(w io.Writer, n, reps int) error {
	dir, err := os.MkdirTemp("", "attackmap-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := dir + "/not-sensitive.txt"
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		return err
	}
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	atFDCWD := unix.AT_FDCWD // a variable: the negative constant does not convert to uintptr
	// storm returns the thread's CPU time (user + system, which includes
	// the eBPF program) for n pairs: unlike wall time it does not count
	// the time the thread waited for a CPU on this shared machine.
	storm := func() (time.Duration, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var t0, t1 unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &t0); err != nil {
			return 0, err
		}
		for range n {
			// Raw system calls: what a C program pays, no Go wrapper cost.
			fd, _, errno := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(p)),
				unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
			if errno != 0 {
				return 0, fmt.Errorf("open %s: %w", path, errno)
			}
			unix.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
		}
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &t1); err != nil {
			return 0, err
		}
		return time.Duration(t1.Nano() - t0.Nano()), nil
	}
	var opened atomic.Uint64
	withSensor := func() (time.Duration, error) {
		r, err := startCollector(kernel.Config{}, func(ev event.Event) {
			if ev.Kind == event.KindOpen && ev.Path == path {
				opened.Add(1)
			}
		})
		if err != nil {
			return 0, err
		}
		d, err := storm()
		if serr := r.stop(); err == nil {
			err = serr
		}
		return d, err
	}
	// The floor: a program that does nothing, on the same tracepoint. Its
	// cost is the kernel's (syscall slow path, tracepoint dispatch).
	bare, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.TracePoint,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		return fmt.Errorf("loading the bare program: %w", err)
	}
	defer bare.Close()
	withBare := func() (time.Duration, error) {
		l, err := link.Tracepoint("syscalls", "sys_enter_openat", bare, nil)
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return storm()
	}

	fmt.Fprintf(w, "1. open()/close() storm: %d pairs on %s, %d repetitions, order rotated; thread CPU time per pair\n", n, path, reps)
	setups := []struct {
		name string
		run  func() (time.Duration, error)
	}{{"without", storm}, {"bare tracepoint", withBare}, {"sensor", withSensor}}
	ns := make([][]float64, len(setups))
	var bareRatios, sensorRatios []float64
	for i := range reps {
		var cur [3]float64
		for j := range setups {
			k := (i + j) % len(setups)
			d, err := setups[k].run()
			if err != nil {
				return err
			}
			cur[k] = float64(d.Nanoseconds()) / float64(n)
			ns[k] = append(ns[k], cur[k])
		}
		bareRatios, sensorRatios = append(bareRatios, cur[1]/cur[0]), append(sensorRatios, cur[2]/cur[0])
		fmt.Fprintf(w, "   rep %d: without %5.0f ns/pair, bare tracepoint %5.0f (%.3f), sensor %5.0f (%.3f)\n",
			i+1, cur[0], cur[1], cur[1]/cur[0], cur[2], cur[2]/cur[0])
	}
	m0, m1, m2 := median(ns[0]), median(ns[1]), median(ns[2])
	fmt.Fprintf(w, "   medians: without %.0f ns/pair, bare tracepoint %.0f, sensor %.0f\n", m0, m1, m2)
	fmt.Fprintf(w, "   sensor/without: ratio of medians %.3f, median of ratios %.3f (target <= 1.10)\n", m2/m0, median(sensorRatios))
	fmt.Fprintf(w, "   bare/without:   ratio of medians %.3f, median of ratios %.3f (the floor any syscall tracepoint pays)\n", m1/m0, median(bareRatios))
	fmt.Fprintf(w, "   open events reported for the non-sensitive path: %d (want 0)\n\n", opened.Load())
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// netStorms runs the connect/accept storm and the knock storm, flat out
// and paced, with the default configuration, then flat out again with
// Config.NetLaneWait = ProcLaneWait = netWait (when not 0). Each storm has a
// fresh collector.
func netStorms(w io.Writer, d time.Duration, maxAttempts, workers, paced int, netWait time.Duration) error {
	var got [3]atomic.Uint64 // connect, accept, probe from the bench's sources
	connectNet := netip.MustParsePrefix("127.8.0.0/16")
	knockNet := netip.MustParsePrefix("127.9.0.0/16")
	count := func(ev event.Event) {
		switch {
		case ev.Kind == event.KindConnect && (connectNet.Contains(ev.SrcIP) || knockNet.Contains(ev.SrcIP)):
			got[0].Add(1)
		case ev.Kind == event.KindAccept && connectNet.Contains(ev.SrcIP):
			got[1].Add(1)
		case ev.Kind == event.KindProbe && knockNet.Contains(ev.SrcIP):
			got[2].Add(1)
		}
	}

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var acceptors sync.WaitGroup
	defer acceptors.Wait()
	defer ln.Close()
	for range 2 {
		acceptors.Go(func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		})
	}
	open := ln.Addr().(*net.TCPAddr).Port
	closedLn, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	closed := closedLn.Addr().(*net.TCPAddr).Port
	closedLn.Close()

	fmt.Fprintf(w, "2. network storms from a separate load process, %d threads, at most %v and %d attempts each\n", workers, d, maxAttempts)
	type storm struct {
		name      string
		mode      string
		port      int
		rate      int           // attempts/s, 0 = as fast as possible
		wait      time.Duration // Config.NetLaneWait and ProcLaneWait (0: default)
		kindsSeen func() uint64
	}
	var storms []storm
	add := func(rate int, wait time.Duration) {
		pace := "flat out"
		if rate > 0 {
			pace = fmt.Sprintf("paced at %d attempts/s", rate)
		}
		cfg := "default config"
		switch {
		case wait < 0:
			cfg = "lane waits off"
		case wait > 0:
			cfg = fmt.Sprintf("lane waits %v", wait)
		}
		storms = append(storms,
			storm{"connect/accept storm, " + pace + ", " + cfg + " (connect + accept per connection)", "connect", open, rate, wait,
				func() uint64 { return got[0].Load() + got[1].Load() }},
			storm{"closed-port knock storm, " + pace + ", " + cfg + " (connect + probe per knock)", "knock", closed, rate, wait,
				func() uint64 { return got[0].Load() + got[2].Load() }})
	}
	add(0, 0)
	if paced > 0 {
		add(paced/2, 0) // two network events per attempt
	}
	if netWait != 0 {
		add(0, netWait)
	}
	for _, s := range storms {
		for i := range got {
			got[i].Store(0)
		}
		r, err := startCollector(kernel.Config{NetLaneWait: s.wait, ProcLaneWait: s.wait}, count)
		if err != nil {
			return err
		}
		start := time.Now()
		attempts, err := runLoad(s.mode, s.port, d, maxAttempts, workers, s.rate)
		elapsed := time.Since(start)
		if err != nil {
			r.stop()
			return err
		}
		// Let the reader finish the ring: wait until every expected event
		// arrived or was counted as dropped, at most 5 s.
		want := uint64(attempts * 2)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			k, u := r.c.Drops()
			if s.kindsSeen()+k+u >= want {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := r.stop(); err != nil {
			return err
		}
		k, u := r.c.Drops()
		captured := s.kindsSeen()
		fmt.Fprintf(w, "   %s:\n", s.name)
		fmt.Fprintf(w, "      %d attempts in %.2f s (%.0f/s); events expected %d, captured %d (connect %d, accept %d, probe %d)\n",
			attempts, elapsed.Seconds(), float64(attempts)/elapsed.Seconds(), want, captured, got[0].Load(), got[1].Load(), got[2].Load())
		fmt.Fprintf(w, "      captured %.0f network events/s; drops: kernel %d, user %d (target: 0 at >= 50,000/s)\n",
			float64(captured)/elapsed.Seconds(), k, u)
	}
	return nil
}

// runLoad runs the load generator as a child process and returns the
// number of attempts it made.
func runLoad(mode string, port int, d time.Duration, maxAttempts, workers, rate int) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second) // bounded even if the child hangs
	defer cancel()
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s %d %d %d", loadEnv, mode, port, d, maxAttempts, workers, rate))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("load generator (%s): %w", mode, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

// load is the child: workers threads open TCP connections to 127.0.0.1:port
// from rotating 127.8.x.y (connect) or 127.9.x.y (knock) sources, paced at
// rate attempts/s when rate > 0, until the time or the attempt budget runs
// out, and print the attempt count.
func load(spec string, stdout io.Writer) error {
	var mode string
	var port, maxAttempts, workers, rate int
	var ds string
	if _, err := fmt.Sscanf(spec, "%s %d %s %d %d %d", &mode, &port, &ds, &maxAttempts, &workers, &rate); err != nil {
		return fmt.Errorf("load spec %q: %w", spec, err)
	}
	d, err := time.ParseDuration(ds)
	if err != nil {
		return err
	}
	second := byte(8)
	if mode == "knock" {
		second = 9
	}
	var attempts atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for wi := range workers {
		wg.Go(func() {
			runtime.LockOSThread()
			// Nice 19 (this thread only): on a real host the knocks arrive
			// from the network and cost softirq time, not a local process
			// competing with the sensor for the CPU.
			if err := unix.Setpriority(unix.PRIO_PROCESS, 0, 19); err != nil {
				firstErr.CompareAndSwap(nil, fmt.Errorf("setpriority: %w", err))
				return
			}
			dst := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
			for i := 0; ; i++ {
				if i%64 == 0 {
					now := time.Now()
					if now.After(deadline) {
						return
					}
					if rate > 0 {
						// Pace: sleep while ahead of rate attempts/s overall.
						ahead := time.Duration(float64(attempts.Load())/float64(rate)*float64(time.Second)) - now.Sub(start)
						if ahead > 0 {
							time.Sleep(ahead)
						}
					}
				}
				if attempts.Add(1) > int64(maxAttempts) {
					attempts.Add(-1)
					return
				}
				if err := attempt(dst, [4]byte{127, second, byte(wi), byte(1 + i%250)}); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	_, err = fmt.Fprintln(stdout, attempts.Load())
	return err
}

// attempt makes one connection (or knock) and closes it with a reset, so
// that no TIME_WAIT sockets pile up and exhaust the ports.
func attempt(dst *unix.SockaddrInet4, src [4]byte) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		return fmt.Errorf("SO_LINGER: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src}); err != nil {
		return fmt.Errorf("bind %v: %w", netip.AddrFrom4(src), err)
	}
	err = unix.Connect(fd, dst)
	if err != nil && !errors.Is(err, unix.ECONNREFUSED) {
		return fmt.Errorf("connect: %w", err)
	}
	return nil
}
