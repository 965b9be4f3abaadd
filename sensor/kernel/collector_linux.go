//go:build linux

package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/attackmap/attackmap/bpf"
	"github.com/attackmap/attackmap/sensor/event"
)

// tracefsDir is where the tracepoints' IDs are read (cilium/ebpf also
// looks in /sys/kernel/debug/tracing).
const tracefsDir = "/sys/kernel/tracing"

// tracepoint is one attachment.
type tracepoint struct {
	group, name string
	prog        func(*bpf.CollectorObjects) *ebpf.Program
	// optional: Start goes on without it when the kernel lacks it. Not
	// every architecture has open(2) and creat(2); icmp:icmp_send is
	// Linux 6.10+.
	optional bool
	// lost says what is not seen without an optional tracepoint; when
	// set, its absence is logged once at info level (else at debug: a
	// missing open(2) loses nothing, openat(2) is there).
	lost string
}

var tracepoints = []tracepoint{
	{"sched", "sched_process_exec", func(o *bpf.CollectorObjects) *ebpf.Program { return o.HandleExec }, false, ""},
	{"sock", "inet_sock_set_state", func(o *bpf.CollectorObjects) *ebpf.Program { return o.HandleSockState }, false, ""},
	{"tcp", "tcp_send_reset", func(o *bpf.CollectorObjects) *ebpf.Program { return o.HandleSendReset }, false, ""},
	{"icmp", "icmp_send", func(o *bpf.CollectorObjects) *ebpf.Program { return o.HandleIcmpSend }, true,
		"UDP port scans (probe events with proto udp) are not seen; needs Linux 6.10+"},
	{"syscalls", "sys_enter_openat", func(o *bpf.CollectorObjects) *ebpf.Program { return o.HandleOpenat }, false, ""},
	{"syscalls", "sys_enter_openat2", func(o *bpf.CollectorObjects) *ebpf.Program { return o.HandleOpenat2 }, true, ""},
	{"syscalls", "sys_enter_open", func(o *bpf.CollectorObjects) *ebpf.Program { return o.HandleOpen }, true, ""},
	{"syscalls", "sys_enter_creat", func(o *bpf.CollectorObjects) *ebpf.Program { return o.HandleCreat }, true, ""},
}

// Available reports whether the eBPF collectors can run here: nil, or a
// one-line reason (not root, no BTF, no tracefs, no ring buffer, a missing
// tracepoint). As root it mounts tracefs on /sys/kernel/tracing when that
// directory is empty.
func Available() error {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("kernel: eBPF collectors need root (running as uid %d)", uid)
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return errors.New("kernel: this kernel has no BTF (/sys/kernel/btf/vmlinux is missing)")
	}
	if err := mountTracefs(); err != nil {
		return err
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return fmt.Errorf("kernel: no BPF ring buffer on this kernel (needs Linux 5.8+): %w", err)
	}
	for _, tp := range tracepoints {
		if tp.optional {
			continue
		}
		if !hasTracepoint(tp.group, tp.name) {
			return fmt.Errorf("kernel: tracepoint %s:%s is missing from this kernel", tp.group, tp.name)
		}
	}
	return nil
}

// hasTracepoint reports whether the kernel has the tracepoint group:name
// (tracefs must be mounted: Available mounts it).
func hasTracepoint(group, name string) bool {
	_, err := os.Stat(filepath.Join(tracefsDir, "events", group, name))
	return err == nil
}

// mountTracefs mounts tracefs when /sys/kernel/tracing is empty.
func mountTracefs() error {
	if _, err := os.Stat(filepath.Join(tracefsDir, "events")); err == nil {
		return nil
	}
	ents, err := os.ReadDir(tracefsDir)
	if err != nil {
		return fmt.Errorf("kernel: no tracefs: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("kernel: %s is not tracefs and not empty", tracefsDir)
	}
	if err := unix.Mount("nodev", tracefsDir, "tracefs", 0, ""); err != nil {
		return fmt.Errorf("kernel: mounting tracefs on %s: %w", tracefsDir, err)
	}
	return nil
}

// Collector is a running set of eBPF programs and the reader of their ring
// buffer. Create it with Start, then call Run once.
type Collector struct {
	log      *slog.Logger
	interval time.Duration
	// wait is the bound on a wait for room in each lane (Config.NetLaneWait,
	// Config.ProcLaneWait; 0: never wait).
	wait [2]time.Duration
	// waitTimer bounds a wait for room in a lane; only the reader
	// goroutine uses it.
	waitTimer *time.Timer
	stopping  <-chan struct{} // ctx.Done() of Run: ends a wait at once
	objs      bpf.CollectorObjects
	links     []link.Link
	rd        *ringbuf.Reader
	dec       decoder
	net       chan event.Event
	proc      chan event.Event
	st        stats
	offset    atomic.Int64 // wall-clock ns minus CLOCK_BOOTTIME ns
	ran       atomic.Bool
	close     sync.Once
}

// Start loads and attaches the programs and opens the ring-buffer reader,
// in the cilium/ebpf examples' order (memlock, load, attach, reader). On
// error nothing stays loaded; otherwise the caller must call Run, which
// releases everything when its context ends.
func Start(cfg Config) (_ *Collector, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	comms := cfg.IgnoreComms
	if comms == nil {
		comms = DefaultIgnoreComms()
	}
	if err := checkComms(comms); err != nil {
		return nil, err
	}
	paths := cfg.SensitivePaths
	if paths == nil {
		paths = DefaultSensitivePaths()
	}
	var rules []rule
	rules, err = compileRules(paths)
	if err != nil {
		return nil, err
	}
	ringBytes := cfg.RingBufferBytes
	if ringBytes <= 0 {
		ringBytes = DefaultRingBufferBytes
	}
	ringBytes = max(ringBytes, os.Getpagesize())
	ringBytes = 1 << bits.Len(uint(ringBytes-1)) // next power of two
	c := &Collector{
		log:      cfg.Logger,
		interval: cfg.DropLogInterval,
		wait:     [2]time.Duration{laneNet: laneWait(cfg.NetLaneWait), laneProc: laneWait(cfg.ProcLaneWait)},
		net:      make(chan event.Event, LaneCapacity),
		proc:     make(chan event.Event, LaneCapacity),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.interval <= 0 {
		c.interval = DefaultDropLogInterval
	}
	c.dec = decoder{bootOffset: c.offset.Load}
	c.offset.Store(bootOffset())

	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("kernel: removing the memlock limit: %w", err)
	}
	spec, err := bpf.LoadCollector()
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	spec.Maps["events"].MaxEntries = uint32(ringBytes)
	var krules [MaxSensitivePaths]bpf.CollectorOpenRule
	for i, r := range rules {
		k := &krules[i]
		k.Head, k.HeadMask = r.head()
		k.Len, k.TailLen = uint8(len(r.prefix)), uint8(len(r.tail))
		if r.wild {
			k.Wild = 1
		}
		for j := range len(r.prefix) {
			k.Prefix[j] = int8(r.prefix[j])
		}
		for j := range len(r.tail) {
			k.Tail[j] = int8(r.tail[j])
		}
	}
	for name, v := range map[string]any{
		"self_tgid":    uint32(os.Getpid()),
		"n_open_rules": uint32(len(rules)),
		"open_rules":   krules,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("kernel: setting %s: %w", name, err)
		}
	}
	if err := spec.LoadAndAssign(&c.objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			c.log.Error("eBPF verifier log", "log", fmt.Sprintf("%+v", verr))
		}
		return nil, fmt.Errorf("kernel: loading eBPF objects: %w", err)
	}
	defer func() {
		if err != nil {
			c.release()
		}
	}()
	for _, comm := range comms {
		var key [commLen]byte
		copy(key[:], comm)
		if err := c.objs.IgnoreComms.Put(key, uint8(1)); err != nil {
			return nil, fmt.Errorf("kernel: filling ignore_comms: %w", err)
		}
	}
	for _, tp := range tracepoints {
		l, err := link.Tracepoint(tp.group, tp.name, tp.prog(&c.objs), nil)
		if err != nil {
			if tp.optional && errors.Is(err, os.ErrNotExist) {
				if tp.lost != "" {
					c.log.Info("tracepoint missing from this kernel", "tracepoint", tp.group+":"+tp.name, "lost", tp.lost)
				} else {
					c.log.Debug("optional tracepoint missing", "tracepoint", tp.group+":"+tp.name)
				}
				continue
			}
			return nil, fmt.Errorf("kernel: attaching %s:%s: %w", tp.group, tp.name, err)
		}
		c.links = append(c.links, l)
	}
	c.rd, err = ringbuf.NewReader(c.objs.Events)
	if err != nil {
		return nil, fmt.Errorf("kernel: opening ring buffer: %w", err)
	}
	c.log.Info("eBPF collectors started", "ring_bytes", ringBytes, "tracepoints", len(c.links),
		"sensitive_paths", len(rules), "ignored_comms", len(comms))
	return c, nil
}

// bootOffset returns wall-clock time minus CLOCK_BOOTTIME, in ns.
func bootOffset() int64 {
	var ts unix.Timespec
	before := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return before.UnixNano() - ts.Nano()
}

// Net returns the network lane: accept, probe and connect events. It is
// closed when Run returns.
func (c *Collector) Net() <-chan event.Event { return c.net }

// Proc returns the process lane: exec and open events. It is closed when
// Run returns.
func (c *Collector) Proc() <-chan event.Event { return c.proc }

// Run reads the ring buffer until ctx ends, then detaches the programs,
// frees the kernel objects, closes both lanes and returns nil. It returns
// an error only if reading fails for another reason. Call it once.
func (c *Collector) Run(ctx context.Context) error {
	if !c.ran.CompareAndSwap(false, true) {
		return errors.New("kernel: Run called twice")
	}
	defer close(c.proc)
	defer close(c.net)
	defer c.release()
	c.stopping = ctx.Done()

	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	wg.Go(func() {
		select {
		case <-ctx.Done():
			// Unblocks ReadInto with ringbuf.ErrClosed.
			c.rd.Close()
		case <-done:
		}
	})
	wg.Go(func() { c.watch(done) })

	var rec ringbuf.Record
	for {
		if err := c.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				c.logDrops(true)
				return nil
			}
			return fmt.Errorf("kernel: reading ring buffer: %w", err)
		}
		ev, ln, err := c.dec.decode(rec.RawSample)
		if err != nil {
			if c.st.decodeErrors.Add(1) == 1 {
				c.log.Warn("undecodable eBPF record (further ones only counted)", "err", err)
			}
			continue
		}
		c.dispatch(ev, ln)
	}
}

// laneWait turns a configured wait into the one used: 0 is the default,
// negative is no wait.
func laneWait(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultLaneWait
	case d < 0:
		return 0
	}
	return d
}

// dispatch hands an event to its lane. A full lane is waited on for up to
// its bound (Config.NetLaneWait, Config.ProcLaneWait): the kernel ring keeps
// filling meanwhile, so nothing is lost until the ring itself is full, and
// then the kernel counts it. Only a consumer that takes nothing for the
// whole wait costs an event here (a user-space drop, counted).
//
// With waiting switched off (a negative bound) a full lane drops the event
// after yielding a few times: a consumer woken by our sends usually waits
// in this P's run queue while the reader keeps the CPU through a burst, and
// a Gosched lets it drain the lane.
func (c *Collector) dispatch(ev event.Event, ln lane) {
	ch := c.net
	if ln == laneProc {
		ch = c.proc
	}
	c.st.read[kindIndex(ev.Kind)].Add(1)
	select {
	case ch <- ev:
		return
	default:
	}
	if w := c.wait[ln]; w > 0 {
		if c.waitTimer == nil {
			c.waitTimer = time.NewTimer(w)
		} else {
			c.waitTimer.Reset(w)
		}
		select {
		case ch <- ev:
			c.waitTimer.Stop()
			return
		case <-c.waitTimer.C:
			c.st.userDrops[ln].Add(1)
			return
		case <-c.stopping:
			c.waitTimer.Stop()
			c.st.userDrops[ln].Add(1)
			return
		}
	}
	for range dispatchYields {
		runtime.Gosched()
		select {
		case ch <- ev:
			return
		default:
		}
	}
	c.st.userDrops[ln].Add(1)
}

const dispatchYields = 4

// watch logs grown drop counters and refreshes the boot-time offset (NTP
// may step the wall clock) every interval until done closes.
func (c *Collector) watch(done <-chan struct{}) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			c.offset.Store(bootOffset())
			c.logDrops(false)
		}
	}
}

// Drops returns the events lost so far: in the kernel (ring buffer full,
// or process records shed to keep room for network records) and in user
// space (a lane's channel full).
func (c *Collector) Drops() (kernel, user uint64) {
	for _, n := range c.kernelDrops() {
		kernel += n
	}
	return kernel, c.st.userDrops[laneNet].Load() + c.st.userDrops[laneProc].Load()
}

// kernelDrops sums the per-CPU drop counters by reason. After Run has
// returned it reports the last values read.
func (c *Collector) kernelDrops() [kdropMax]uint64 {
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	if c.st.released || c.objs.Drops == nil {
		return c.st.lastKernel
	}
	var out [kdropMax]uint64
	for i := range out {
		var perCPU []uint64
		if err := c.objs.Drops.Lookup(uint32(i), &perCPU); err != nil {
			continue
		}
		for _, n := range perCPU {
			out[i] += n
		}
	}
	c.st.lastKernel = out
	return out
}

// release detaches and frees everything; it is idempotent.
func (c *Collector) release() {
	c.close.Do(func() {
		c.kernelDrops() // keep the final counts for Drops and metrics
		c.st.mu.Lock()
		c.st.released = true
		c.st.mu.Unlock()
		var errs []error
		if c.rd != nil {
			errs = append(errs, c.rd.Close())
		}
		for _, l := range c.links {
			errs = append(errs, l.Close())
		}
		errs = append(errs, c.objs.Close())
		if err := errors.Join(errs...); err != nil {
			c.log.Warn("releasing eBPF objects", "err", err)
		}
	})
}

// Register exports the collector's counters (events read by kind, kernel
// and user-space drops by reason, decode errors) to reg.
func (c *Collector) Register(reg prometheus.Registerer) error {
	if err := reg.Register(newMetrics(&c.st, c.kernelDrops)); err != nil {
		return fmt.Errorf("kernel: registering metrics: %w", err)
	}
	return nil
}

// logDrops logs the drop counters when they grew since the last log (and,
// when final, their totals if any are non-zero).
func (c *Collector) logDrops(final bool) {
	k := c.kernelDrops()
	cur := [kdropMax + 2]uint64{k[0], k[1], k[2], c.st.userDrops[laneNet].Load(), c.st.userDrops[laneProc].Load()}
	c.st.mu.Lock()
	prev := c.st.logged
	c.st.logged = cur
	c.st.mu.Unlock()
	if cur == prev && !final {
		return
	}
	if cur == ([kdropMax + 2]uint64{}) {
		return
	}
	msg := "eBPF events dropped"
	if final {
		msg = "eBPF events dropped in total"
	}
	c.log.Warn(msg,
		"kernel_net_ring_full", cur[0], "kernel_proc_ring_full", cur[1], "kernel_proc_shed", cur[2],
		"user_net_lane_full", cur[3], "user_proc_lane_full", cur[4])
}
