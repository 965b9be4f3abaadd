//go:build linux

package respond

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/attackmap/attackmap/bpf"
)

// xdpProgName is the XDP program's kernel name (its C function name,
// truncated by the kernel to 15 bytes): how a second process (the block
// CLI next to a running sensor) recognises attackmap's program on an
// interface and adopts its maps instead of loading its own.
const xdpProgName = "attackmap_xdp"

// XDP is the "xdp" backend: attackmap_xdp (bpf/xdp_block.bpf.c) attached to
// the configured interfaces, dropping packets from the addresses in its
// IPv4 and IPv6 LPM tries. An entry's value holds its expiry in
// CLOCK_BOOTTIME nanoseconds: the program stops dropping at that time on
// its own, and a sweeper goroutine deletes expired entries every second.
//
// Nothing is pinned. The links belong to the process that attached them:
// Close detaches them and the kernel frees the program and its maps, and a
// crashed sensor leaves nothing dropping; the responder's state file
// restores the entries on the next start. A second process (the block CLI)
// whose Ensure finds attackmap_xdp already attached to a configured
// interface adopts the running program's maps, so its Add, Remove, List and
// Flush act on the live block list.
type XDP struct {
	cfg XDPConfig
	log *slog.Logger

	// mu guards everything below; the responder's calls and the sweeper
	// goroutine both take it.
	mu    sync.Mutex
	prog  *ebpf.Program
	v4    *ebpf.Map
	v6    *ebpf.Map
	stats *ebpf.Map
	links map[string]*xdpAttachment // by interface name
	// due orders the entries this process wrote by expiry, so a sweep
	// touches only the entries that are due.
	due        expiryHeap
	lastRescan time.Time
	stop       chan struct{} // closed to stop the sweeper
	done       chan struct{} // closed when the sweeper has returned
}

// xdpAttachment is the program on one interface.
type xdpAttachment struct {
	ifindex int
	link    link.Link
	mode    string // XDPModeNative or XDPModeGeneric; "" when adopted
	adopted bool   // attached by another process; we only hold a handle
}

// OpenXDP returns the XDP backend for cfg. It checks the configuration and
// touches nothing in the kernel: Ensure loads and attaches.
func OpenXDP(cfg XDPConfig, log *slog.Logger) (*XDP, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &XDP{cfg: cfg, log: log, links: map[string]*xdpAttachment{}}, nil
}

// newXDP is the responder's constructor for the "xdp" backend.
func newXDP(cfg XDPConfig, log *slog.Logger) (Backend, error) {
	return OpenXDP(cfg, log)
}

// Name returns "xdp".
func (x *XDP) Name() string { return "xdp" }

// Ensure loads the program (or adopts the one another attackmap process
// attached), attaches it to every configured interface where it is not
// attached yet, and starts the sweeper. Called again, it re-attaches to
// interfaces that lost the program (an interface deleted and re-created).
func (x *XDP) Ensure(ctx context.Context) error {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("respond: xdp: needs root (running as uid %d): %w", uid, ErrUnsupported)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.prog == nil {
		if err := rlimit.RemoveMemlock(); err != nil {
			return fmt.Errorf("respond: xdp: removing the memlock limit: %w", err)
		}
		adopted, err := x.adopt()
		if err != nil {
			return err
		}
		if !adopted {
			if err := x.load(); err != nil {
				return err
			}
		}
	}
	for _, name := range x.cfg.Interfaces {
		if err := x.attach(name); err != nil {
			return err
		}
	}
	if x.stop == nil {
		x.stop, x.done = make(chan struct{}), make(chan struct{})
		go x.sweeper(x.stop, x.done)
	}
	return nil
}

// load loads a fresh copy of the program and its maps.
func (x *XDP) load() error {
	spec, err := bpf.LoadXDPBlock()
	if err != nil {
		return fmt.Errorf("respond: xdp: %w", err)
	}
	for _, m := range []string{"am_block_v4", "am_block_v6"} {
		spec.Maps[m].MaxEntries = uint32(x.cfg.MaxEntries)
	}
	var objs bpf.XDPBlockObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("respond: xdp: loading the program: %+v", ve)
		}
		return fmt.Errorf("respond: xdp: loading the program: %w", err)
	}
	x.prog, x.v4, x.v6, x.stats = objs.AttackmapXdp, objs.AmBlockV4, objs.AmBlockV6, objs.AmXdpStats
	return nil
}

// adopt looks for attackmap_xdp attached by another process to one of the
// configured interfaces and, when it finds it, takes handles on its program,
// maps and links. It reports whether it adopted.
func (x *XDP) adopt() (bool, error) {
	want := map[int]string{}
	for _, name := range x.cfg.Interfaces {
		if ifc, err := net.InterfaceByName(name); err == nil {
			want[ifc.Index] = name
		}
	}
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != link.XDPType || info.XDP() == nil {
			continue
		}
		name, ok := want[int(info.XDP().Ifindex)]
		if !ok {
			continue
		}
		if x.prog == nil {
			ok, err := x.adoptProgram(info.Program)
			if err != nil {
				return false, err
			}
			if !ok {
				continue
			}
		} else if info.Program != x.progID() {
			continue // another program on this interface: attach fails and says so
		}
		x.links[name] = &xdpAttachment{ifindex: int(info.XDP().Ifindex), link: it.Take(), adopted: true}
		x.log.Info("respond: xdp: using the program attached by another process", "interface", name)
	}
	if err := it.Err(); err != nil {
		x.closeObjects()
		return false, fmt.Errorf("respond: xdp: listing links: %w", err)
	}
	return x.prog != nil, nil
}

// adoptProgram takes the program id and its maps when it is attackmap_xdp.
func (x *XDP) adoptProgram(id ebpf.ProgramID) (bool, error) {
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return false, nil // gone meanwhile
	}
	info, err := prog.Info()
	if err != nil || info.Name != xdpProgName {
		prog.Close()
		return false, nil
	}
	ids, _ := info.MapIDs()
	maps := map[string]**ebpf.Map{"am_block_v4": &x.v4, "am_block_v6": &x.v6, "am_xdp_stats": &x.stats}
	for _, mid := range ids {
		m, err := ebpf.NewMapFromID(mid)
		if err != nil {
			continue
		}
		mi, err := m.Info()
		if dst, ok := maps[mi.Name]; err == nil && ok && *dst == nil {
			*dst = m
			continue
		}
		m.Close()
	}
	x.prog = prog
	if x.v4 == nil || x.v6 == nil || x.stats == nil {
		x.closeObjects()
		return false, fmt.Errorf("respond: xdp: program %d is %s but its maps are missing", id, xdpProgName)
	}
	return true, nil
}

// progID is the loaded program's id (0 when unknown).
func (x *XDP) progID() ebpf.ProgramID {
	info, err := x.prog.Info()
	if err != nil {
		return 0
	}
	id, _ := info.ID()
	return id
}

// attach attaches the program to the interface name unless it is attached
// there already. In auto mode it tries the driver first and logs which mode
// it got.
func (x *XDP) attach(name string) error {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("respond: xdp: interface %s: %w", name, err)
	}
	if a := x.links[name]; a != nil {
		info, err := a.link.Info()
		if err == nil && info.XDP() != nil && int(info.XDP().Ifindex) == ifc.Index {
			return nil
		}
		// The interface went away (the link is defunct) or was
		// re-created with another index: attach again.
		a.link.Close()
		delete(x.links, name)
	}
	try := func(mode string) (link.Link, error) {
		flags := link.XDPGenericMode
		if mode == XDPModeNative {
			flags = link.XDPDriverMode
		}
		return link.AttachXDP(link.XDPOptions{Program: x.prog, Interface: ifc.Index, Flags: flags})
	}
	var l link.Link
	mode := x.cfg.Mode
	switch mode {
	case XDPModeAuto:
		var nerr error
		l, nerr = try(XDPModeNative)
		mode = XDPModeNative
		if nerr != nil {
			l, err = try(XDPModeGeneric)
			mode = XDPModeGeneric
			if err != nil {
				return fmt.Errorf("respond: xdp: attaching to %s: native: %v; generic: %w", name, nerr, err)
			}
			x.log.Info("respond: xdp: attached in generic mode (the driver has no native XDP)",
				"interface", name, "native_error", nerr.Error())
			break
		}
		x.log.Info("respond: xdp: attached in native mode", "interface", name)
	default:
		l, err = try(mode)
		if err != nil {
			return fmt.Errorf("respond: xdp: attaching to %s in %s mode: %w", name, mode, err)
		}
		x.log.Info("respond: xdp: attached", "interface", name, "mode", mode)
	}
	x.links[name] = &xdpAttachment{ifindex: ifc.Index, link: l, mode: mode}
	return nil
}

// Modes returns the attachment mode per interface: "native", "generic", or
// "adopted" for a program another process attached.
func (x *XDP) Modes() map[string]string {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[string]string, len(x.links))
	for name, a := range x.links {
		out[name] = a.mode
		if a.adopted {
			out[name] = "adopted"
		}
	}
	return out
}

// Add blocks addr until ttl from now.
func (x *XDP) Add(_ context.Context, addr netip.Addr, ttl time.Duration) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	m, key, err := x.keyOf(addr)
	if err != nil {
		return err
	}
	now := bootNow()
	exp := now + max(ttl, time.Second)
	if exp < now { // overflow: a TTL of centuries
		exp = 1<<63 - 1
	}
	v := bpf.XDPBlockBlockValue{ExpiresNs: uint64(exp)}
	if err := m.Update(key, &v, ebpf.UpdateAny); err != nil {
		if errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ENOSPC) { // hash maps say E2BIG, LPM tries ENOSPC
			return fmt.Errorf("respond: xdp: adding %s: the map is full (max_entries %d)", addr, x.cfg.MaxEntries)
		}
		return fmt.Errorf("respond: xdp: adding %s: %w", addr, err)
	}
	heap.Push(&x.due, expiry{at: exp, addr: addr.Unmap()})
	return nil
}

// Remove unblocks addr; an absent address is not an error.
func (x *XDP) Remove(_ context.Context, addr netip.Addr) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	m, key, err := x.keyOf(addr)
	if err != nil {
		return err
	}
	if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("respond: xdp: removing %s: %w", addr, err)
	}
	return nil
}

// List returns the live entries (expired ones that the sweeper has not
// deleted yet are left out: they no longer drop).
func (x *XDP) List(context.Context) ([]Entry, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.v4 == nil {
		return nil, errNotEnsured
	}
	now := bootNow()
	wall := time.Now()
	var out []Entry
	err := x.walk(func(addr netip.Addr, v bpf.XDPBlockBlockValue) {
		e := Entry{Addr: addr}
		if v.ExpiresNs != 0 {
			if time.Duration(v.ExpiresNs) <= now {
				return
			}
			e.Expires = wall.Add(time.Duration(v.ExpiresNs) - now).Truncate(time.Second)
		}
		out = append(out, e)
	})
	return out, err
}

// Hits returns, per live entry, the packets it dropped since it was last
// written.
func (x *XDP) Hits() (map[netip.Addr]uint64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.v4 == nil {
		return nil, errNotEnsured
	}
	out := map[netip.Addr]uint64{}
	err := x.walk(func(addr netip.Addr, v bpf.XDPBlockBlockValue) { out[addr] = v.Hits })
	return out, err
}

// Stats sums the program's per-CPU counters.
func (x *XDP) Stats() (XDPStats, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stats == nil {
		return XDPStats{}, errNotEnsured
	}
	var st XDPStats
	var per []bpf.XDPBlockXdpStat
	for idx, dst := range []struct{ p, b *uint64 }{
		{&st.DroppedV4, &st.DroppedBytesV4}, // STAT_DROP_V4
		{&st.DroppedV6, &st.DroppedBytesV6}, // STAT_DROP_V6
		{&st.ExpiredPassed, new(uint64)},    // STAT_EXPIRED
	} {
		if err := x.stats.Lookup(uint32(idx), &per); err != nil {
			return XDPStats{}, fmt.Errorf("respond: xdp: reading counters: %w", err)
		}
		for _, s := range per {
			*dst.p += s.Packets
			*dst.b += s.Bytes
		}
	}
	return st, nil
}

// Drops returns the packets dropped, both families (DropCounter).
func (x *XDP) Drops() (uint64, error) {
	st, err := x.Stats()
	return st.Dropped(), err
}

// Flush deletes every entry, detaches the program from every interface
// (also when another process attached it) and releases everything.
func (x *XDP) Flush(ctx context.Context) error {
	x.stopSweeper()
	x.mu.Lock()
	defer x.mu.Unlock()
	var errs []error
	if x.v4 != nil {
		var keys []netip.Addr
		errs = append(errs, x.walk(func(a netip.Addr, _ bpf.XDPBlockBlockValue) { keys = append(keys, a) }))
		for _, a := range keys {
			m, key, _ := x.keyOf(a)
			if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				errs = append(errs, fmt.Errorf("respond: xdp: removing %s: %w", a, err))
			}
		}
	}
	for name, a := range x.links {
		if err := a.link.Detach(); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("respond: xdp: detaching from %s: %w", name, err))
		}
	}
	x.closeObjects()
	return errors.Join(errs...)
}

// Close stops the sweeper and releases the handles. The links this process
// attached go with them (nothing is pinned), so the program stops dropping;
// links adopted from another process stay attached.
func (x *XDP) Close() error {
	x.stopSweeper()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.closeObjects()
	return nil
}

// closeObjects closes links, program and maps. x.mu is held.
func (x *XDP) closeObjects() {
	for name, a := range x.links {
		a.link.Close()
		delete(x.links, name)
	}
	if x.prog != nil {
		x.prog.Close()
	}
	for _, m := range []*ebpf.Map{x.v4, x.v6, x.stats} {
		if m != nil {
			m.Close()
		}
	}
	x.prog, x.v4, x.v6, x.stats = nil, nil, nil, nil
	x.due = nil
}

// errNotEnsured is the error of a call before Ensure (or after Flush).
var errNotEnsured = errors.New("respond: xdp: not loaded (Ensure was not called, or Flush was)")

// keyOf returns the trie and key for addr. x.mu is held.
func (x *XDP) keyOf(addr netip.Addr) (*ebpf.Map, any, error) {
	if x.v4 == nil {
		return nil, nil, errNotEnsured
	}
	addr = addr.Unmap()
	switch {
	case addr.Is4():
		return x.v4, &bpf.XDPBlockKeyV4{Prefixlen: 32, Addr: addr.As4()}, nil
	case addr.Is6():
		return x.v6, &bpf.XDPBlockKeyV6{Prefixlen: 128, Addr: addr.As16()}, nil
	}
	return nil, nil, fmt.Errorf("respond: xdp: invalid address %v", addr)
}

// walk calls fn for every entry of both tries. x.mu is held.
func (x *XDP) walk(fn func(netip.Addr, bpf.XDPBlockBlockValue)) error {
	var k4 bpf.XDPBlockKeyV4
	var k6 bpf.XDPBlockKeyV6
	var v bpf.XDPBlockBlockValue
	it := x.v4.Iterate()
	for it.Next(&k4, &v) {
		fn(netip.AddrFrom4(k4.Addr), v)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("respond: xdp: reading the IPv4 map: %w", err)
	}
	it = x.v6.Iterate()
	for it.Next(&k6, &v) {
		fn(netip.AddrFrom16(k6.Addr), v)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("respond: xdp: reading the IPv6 map: %w", err)
	}
	return nil
}

// sweeper deletes expired entries every xdpSweepInterval until stop.
func (x *XDP) sweeper(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(xdpSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if n, err := x.Sweep(); err != nil {
				x.log.Warn("respond: xdp: sweeping expired entries", "err", err)
			} else if n > 0 {
				x.log.Debug("respond: xdp: expired entries removed", "n", n)
			}
		}
	}
}

// stopSweeper stops the sweeper goroutine and waits for it.
func (x *XDP) stopSweeper() {
	x.mu.Lock()
	stop, done := x.stop, x.done
	x.stop, x.done = nil, nil
	x.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// Sweep deletes the entries whose time has run out and returns how many it
// deleted. The sweeper calls it every second; it reads only the entries
// that are due, and walks the whole tries once every xdpRescanInterval to
// learn the expiries that another process wrote.
func (x *XDP) Sweep() (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.v4 == nil {
		return 0, nil
	}
	now := bootNow()
	if wall := time.Now(); x.lastRescan.IsZero() || wall.Sub(x.lastRescan) >= xdpRescanInterval {
		x.lastRescan = wall
		x.due = x.due[:0]
		err := x.walk(func(a netip.Addr, v bpf.XDPBlockBlockValue) {
			if v.ExpiresNs != 0 {
				x.due = append(x.due, expiry{at: time.Duration(v.ExpiresNs), addr: a})
			}
		})
		if err != nil {
			return 0, err
		}
		heap.Init(&x.due)
	}
	n := 0
	var v bpf.XDPBlockBlockValue
	for len(x.due) > 0 && x.due[0].at <= now {
		e := heap.Pop(&x.due).(expiry)
		m, key, err := x.keyOf(e.addr)
		if err != nil {
			continue
		}
		// The entry may have been rewritten with a later expiry since
		// it was queued (a repeat offender, or the CLI): look first.
		// A rewrite by another process between this lookup and the
		// delete is lost; the responder's state file restores it on
		// its next reconcile.
		if err := m.Lookup(key, &v); err != nil {
			continue // removed meanwhile
		}
		if v.ExpiresNs == 0 || time.Duration(v.ExpiresNs) > now {
			continue // its own heap entry (or the next rescan) covers it
		}
		if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("respond: xdp: expiring %s: %w", e.addr, err)
		}
		n++
	}
	return n, nil
}

// bootNow is CLOCK_BOOTTIME, the clock of bpf_ktime_get_boot_ns (it keeps
// counting through suspend, so an expiry holds across one).
func bootNow() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic("respond: xdp: CLOCK_BOOTTIME: " + err.Error()) // Linux has had it since 2.6.39
	}
	return time.Duration(ts.Nano())
}

// expiry is one pending expiry of the sweeper's heap.
type expiry struct {
	at   time.Duration // CLOCK_BOOTTIME
	addr netip.Addr
}

// expiryHeap is a min-heap of expiries (container/heap).
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(v any)        { *h = append(*h, v.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}
