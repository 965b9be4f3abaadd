//go:build linux

// Package vethns builds a veth pair between the current network namespace
// and a new, named one, with addresses on both ends, for the tests and
// benchmarks of the response backends that need real packets crossing a
// real interface. It needs root and the ip(8) command (iproute2).
//
// The host end carries x.x.x.1 and ::1 of its subnets; the namespace end
// carries one or more peer addresses (.2, .3, ...), so a test can send from
// a blocked and an unblocked source. The namespace side has permanent
// neighbour entries for the host end, so no ARP or neighbour solicitation
// (whose source could be a blocked address) is needed before a packet goes
// out.
package vethns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// seq numbers the pairs of one process, for unique names and subnets.
var seq atomic.Uint32

// Pair is a veth pair whose Peer end lives in namespace NS.
type Pair struct {
	NS     string       // network namespace name (ip netns)
	Host   string       // interface in the current namespace
	Peer   string       // interface in NS
	HostV4 netip.Addr   // address of Host
	HostV6 netip.Addr   // address of Host (nodad: usable at once)
	PeerV4 []netip.Addr // addresses of Peer
	PeerV6 []netip.Addr
}

// New creates the namespace, the pair and its addresses, with peers
// source addresses per family on the namespace side. On error it removes
// whatever it created.
func New(peers int) (_ *Pair, err error) {
	if peers < 1 || peers > 200 {
		return nil, fmt.Errorf("vethns: %d peers: want 1..200", peers)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("vethns: the ip command (iproute2) is missing")
	}
	n := seq.Add(1)
	pid := os.Getpid()
	p := &Pair{
		NS:   fmt.Sprintf("attackmap-%d-%d", pid, n),
		Host: fmt.Sprintf("am%dh%d", pid%10000000, n%1000),
		Peer: fmt.Sprintf("am%dp%d", pid%10000000, n%1000),
	}
	v4, err := freeSubnet(pid, n)
	if err != nil {
		return nil, err
	}
	v6 := netip.AddrFrom16([16]byte{0xfd, 0xaa, 0x77, 0xaa, byte(pid >> 8), byte(pid), byte(n >> 8), byte(n)})
	p.HostV4 = v4.Next()
	p.HostV6 = v6.Next()
	a4, a6 := p.HostV4, p.HostV6
	for range peers {
		a4, a6 = a4.Next(), a6.Next()
		p.PeerV4 = append(p.PeerV4, a4)
		p.PeerV6 = append(p.PeerV6, a6)
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	cmds := [][]string{
		{"netns", "add", p.NS},
		{"link", "add", p.Host, "type", "veth", "peer", "name", p.Peer, "netns", p.NS},
		{"addr", "add", p.HostV4.String() + "/24", "dev", p.Host},
		{"addr", "add", p.HostV6.String() + "/64", "dev", p.Host, "nodad"},
		{"link", "set", p.Host, "up"},
		{"-n", p.NS, "link", "set", "lo", "up"},
		{"-n", p.NS, "link", "set", p.Peer, "up"},
	}
	for i := range peers {
		cmds = append(cmds,
			[]string{"-n", p.NS, "addr", "add", p.PeerV4[i].String() + "/24", "dev", p.Peer},
			[]string{"-n", p.NS, "addr", "add", p.PeerV6[i].String() + "/64", "dev", p.Peer, "nodad"})
	}
	for _, c := range cmds {
		if err := ip(c...); err != nil {
			return nil, err
		}
	}
	ifc, err := net.InterfaceByName(p.Host)
	if err != nil {
		return nil, fmt.Errorf("vethns: %w", err)
	}
	mac := ifc.HardwareAddr.String()
	for _, a := range []netip.Addr{p.HostV4, p.HostV6} {
		if err := ip("-n", p.NS, "neigh", "replace", a.String(), "lladdr", mac, "dev", p.Peer, "nud", "permanent"); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// freeSubnet picks a 10.x.y.0/24 that no interface here uses.
func freeSubnet(pid int, n uint32) (netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vethns: %w", err)
	}
	for i := range 256 {
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + pid%50), byte(int(n)*7 + pid/50 + i)}), 24)
		used := false
		for _, a := range addrs {
			if pn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(pn.IP); ok && cand.Contains(ip.Unmap()) {
					used = true
				}
			}
		}
		if !used {
			return cand.Addr(), nil
		}
	}
	return netip.Addr{}, errors.New("vethns: no free 10.x.y.0/24 subnet")
}

// Close deletes the pair and the namespace; absent ones are not an error.
func (p *Pair) Close() error {
	var errs []error
	if _, err := net.InterfaceByName(p.Host); err == nil {
		errs = append(errs, ip("link", "del", p.Host))
	}
	if _, err := os.Stat("/run/netns/" + p.NS); err == nil {
		errs = append(errs, ip("netns", "del", p.NS))
	}
	return errors.Join(errs...)
}

// Do runs fn on an OS thread that has entered the namespace, then returns
// the thread to the current namespace. Sockets created inside fn stay in
// the namespace and can be used from any goroutine afterwards.
func (p *Pair) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Locked for the whole goroutine: if the way back fails, the
		// goroutine exits locked and the runtime kills the thread,
		// so no other goroutine ever runs in the wrong namespace.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("vethns: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + p.NS)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("vethns: %w", err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("vethns: entering %s: %w", p.NS, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("vethns: leaving %s: %w", p.NS, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// HostRxPackets returns the packets the host end has received (its
// rx_packets counter; XDP drops count as received).
func (p *Pair) HostRxPackets() (uint64, error) {
	b, err := os.ReadFile("/sys/class/net/" + p.Host + "/statistics/rx_packets")
	if err != nil {
		return 0, fmt.Errorf("vethns: %w", err)
	}
	var n uint64
	_, err = fmt.Sscan(strings.TrimSpace(string(b)), &n)
	return n, err
}

// HostXDP reports the XDP attachment of the host end as ip(8) shows it
// (for example "xdpgeneric" or "xdp"), or "" when none is attached.
func (p *Pair) HostXDP() (string, error) {
	out, err := exec.Command("ip", "-o", "link", "show", "dev", p.Host).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("vethns: ip link show %s: %v: %s", p.Host, err, strings.TrimSpace(string(out)))
	}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "xdp") {
			return f, nil
		}
	}
	return "", nil
}

// ip runs ip(8) with args.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("vethns: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
