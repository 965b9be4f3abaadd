//go:build linux

package respond

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/attackmap/attackmap/bpf"
	"github.com/attackmap/attackmap/sensor/respond/internal/vethns"
)

// newPair creates a veth pair into a fresh namespace with two source
// addresses per family there (index 0 is the one tests block), removed
// when the test ends, also on failure.
func newPair(t *testing.T) *vethns.Pair {
	t.Helper()
	p, err := vethns.New(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// ensureXDP opens and ensures an XDP backend on the pair's host end, closed
// when the test ends.
func ensureXDP(t *testing.T, cfg XDPConfig, log *slog.Logger) *XDP {
	t.Helper()
	x, err := OpenXDP(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	if err := x.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return x
}

// udpProbe sends UDP datagrams from the namespace end to a listener on the
// host end and counts what arrives per source.
type udpProbe struct {
	t    *testing.T
	ln   *net.UDPConn
	srcs map[netip.Addr]*net.UDPConn // sockets in the namespace, by source
}

func newUDPProbe(t *testing.T, p *vethns.Pair, v6 bool) *udpProbe {
	t.Helper()
	host, peers := p.HostV4, p.PeerV4
	if v6 {
		host, peers = p.HostV6, p.PeerV6
	}
	ln, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	u := &udpProbe{t: t, ln: ln, srcs: map[netip.Addr]*net.UDPConn{}}
	err = p.Do(func() error {
		for _, a := range peers {
			c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)),
				net.UDPAddrFromAddrPort(ln.LocalAddr().(*net.UDPAddr).AddrPort()))
			if err != nil {
				return err
			}
			u.srcs[a] = c
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range u.srcs {
			c.Close()
		}
	})
	return u
}

// exchange sends n datagrams from each source in order and returns how many
// arrived from each. Every source's datagrams are sent before the next
// source's, and the last source must be one that is not blocked: once all
// of its datagrams have arrived, a short grace lets any stragglers in.
func (u *udpProbe) exchange(n int, srcs ...netip.Addr) map[netip.Addr]int {
	u.t.Helper()
	for _, a := range srcs {
		for i := range n {
			if _, err := u.srcs[a].Write([]byte{byte(i)}); err != nil {
				u.t.Fatalf("sending from %s: %v", a, err)
			}
		}
	}
	got := map[netip.Addr]int{}
	last := srcs[len(srcs)-1]
	deadline := time.Now().Add(5 * time.Second) // generous: the machine is shared
	buf := make([]byte, 64)
	for time.Now().Before(deadline) {
		wait := time.Until(deadline)
		if got[last] == n {
			wait = 200 * time.Millisecond // stragglers from the earlier sources
			deadline = time.Now().Add(wait)
		}
		u.ln.SetReadDeadline(time.Now().Add(wait))
		_, from, err := u.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			u.t.Fatal(err)
		}
		got[from.Addr().Unmap()]++
	}
	return got
}

func TestXDPDropsOnlyTheBlockedSource(t *testing.T) {
	needXDP(t)
	const n = 25
	for _, tt := range []struct {
		name string
		mode string
		v6   bool
	}{
		{"IPv4 generic", XDPModeGeneric, false},
		{"IPv6 generic", XDPModeGeneric, true},
		{"IPv4 native", XDPModeNative, false},
		{"IPv6 native", XDPModeNative, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t)
			x := ensureXDP(t, XDPConfig{Interfaces: []string{p.Host}, Mode: tt.mode}, nil)
			if got := x.Modes()[p.Host]; got != tt.mode {
				t.Fatalf("attached in mode %q, want %q", got, tt.mode)
			}
			u := newUDPProbe(t, p, tt.v6)
			a, b := p.PeerV4[0], p.PeerV4[1]
			if tt.v6 {
				a, b = p.PeerV6[0], p.PeerV6[1]
			}
			if got := u.exchange(n, a, b); got[a] != n || got[b] != n {
				t.Fatalf("before the block: arrived %v, want %d from each of %s and %s", got, n, a, b)
			}
			before, err := x.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Add(context.Background(), a, time.Hour); err != nil {
				t.Fatal(err)
			}
			got := u.exchange(n, a, b)
			if got[a] != 0 {
				t.Errorf("%d datagrams from the blocked %s arrived, want 0", got[a], a)
			}
			if got[b] != n {
				t.Errorf("%d datagrams from %s arrived, want all %d", got[b], b, n)
			}
			after, err := x.Stats()
			if err != nil {
				t.Fatal(err)
			}
			dropped, other := after.DroppedV4-before.DroppedV4, after.DroppedV6-before.DroppedV6
			if tt.v6 {
				dropped, other = other, dropped
			}
			if dropped != n || other != 0 {
				t.Errorf("drop counters rose by %d (this family) and %d (the other), want %d and 0", dropped, other, n)
			}
			if d, err := x.Drops(); err != nil || d != after.Dropped() {
				t.Errorf("Drops() = %d, %v; want %d", d, err, after.Dropped())
			}
			hits, err := x.Hits()
			if err != nil {
				t.Fatal(err)
			}
			if hits[a] != n {
				t.Errorf("entry %s counted %d hits, want %d (hits: %v)", a, hits[a], n, hits)
			}
		})
	}
}

func TestXDPEntryStopsDroppingWhenItExpires(t *testing.T) {
	needXDP(t)
	p := newPair(t)
	x := ensureXDP(t, XDPConfig{Interfaces: []string{p.Host}, Mode: XDPModeGeneric}, nil)
	u := newUDPProbe(t, p, false)
	a, b := p.PeerV4[0], p.PeerV4[1]
	ctx := context.Background()

	if err := x.Add(ctx, a, time.Second); err != nil { // the shortest TTL the contract allows
		t.Fatal(err)
	}
	if got := u.exchange(5, a, b); got[a] != 0 || got[b] != 5 {
		t.Fatalf("during the block: arrived %v, want 0 from %s and 5 from %s", got, a, b)
	}
	time.Sleep(1200 * time.Millisecond)
	if got := u.exchange(5, a, b); got[a] != 5 || got[b] != 5 {
		t.Fatalf("after the expiry: arrived %v, want 5 from each", got)
	}
	// The sweeper runs every second: the entry leaves the map soon after.
	deadline := time.Now().Add(5 * time.Second)
	for {
		hits, err := x.Hits()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := hits[a]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired entry %s still in the map after 5 s", a)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestXDPProgramIgnoresAnExpiredEntryBeforeTheSweep(t *testing.T) {
	needXDP(t)
	p := newPair(t)
	x := ensureXDP(t, XDPConfig{Interfaces: []string{p.Host}, Mode: XDPModeGeneric}, nil)
	x.stopSweeper() // only the program's own check is left
	u := newUDPProbe(t, p, false)
	a, b := p.PeerV4[0], p.PeerV4[1]

	key := bpf.XDPBlockKeyV4{Prefixlen: 32, Addr: a.As4()}
	val := bpf.XDPBlockBlockValue{ExpiresNs: uint64(bootNow() - time.Millisecond)}
	if err := x.v4.Update(&key, &val, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if got := u.exchange(5, a, b); got[a] != 5 || got[b] != 5 {
		t.Fatalf("arrived %v, want 5 from each (the entry has expired)", got)
	}
	st, err := x.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Dropped() != 0 || st.ExpiredPassed != 5 {
		t.Errorf("stats %+v: want nothing dropped and 5 expired-passed", st)
	}
	if l, err := x.List(context.Background()); err != nil || len(l) != 0 {
		t.Errorf("List() = %v, %v; want no live entries", l, err)
	}
	if n, err := x.Sweep(); err != nil || n != 1 {
		t.Errorf("Sweep() = %d, %v; want the 1 expired entry removed", n, err)
	}
	if hits, _ := x.Hits(); len(hits) != 0 {
		t.Errorf("entries left after the sweep: %v", hits)
	}
}

func TestXDPAddRemoveList(t *testing.T) {
	needXDP(t)
	p := newPair(t)
	x := ensureXDP(t, XDPConfig{Interfaces: []string{p.Host}, Mode: XDPModeGeneric, MaxEntries: 3}, nil)
	ctx := context.Background()
	v4, v6 := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7")
	mapped := netip.MustParseAddr("::ffff:198.51.100.9")

	start := time.Now()
	for _, a := range []netip.Addr{v4, v6, mapped} {
		if err := x.Add(ctx, a, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Add(ctx, v4, 2*time.Hour); err != nil { // a repeat offender: replaced, not added
		t.Fatal(err)
	}
	list, err := x.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]time.Duration{v4: 2 * time.Hour, v6: time.Hour, mapped.Unmap(): time.Hour}
	if len(list) != len(want) {
		t.Fatalf("List() = %v, want %d entries", list, len(want))
	}
	for _, e := range list {
		ttl, ok := want[e.Addr]
		if !ok {
			t.Errorf("unexpected entry %v", e)
			continue
		}
		if d := e.Expires.Sub(start.Add(ttl)); d < -2*time.Second || d > 2*time.Second {
			t.Errorf("%s expires at %v, want about %v", e.Addr, e.Expires, start.Add(ttl))
		}
	}

	// Each trie holds MaxEntries: a fourth IPv4 address does not fit.
	if err := x.Add(ctx, netip.MustParseAddr("203.0.113.8"), time.Hour); err != nil {
		t.Fatal(err) // third IPv4 entry
	}
	err = x.Add(ctx, netip.MustParseAddr("203.0.113.9"), time.Hour)
	if err == nil || !strings.Contains(err.Error(), "full") {
		t.Errorf("adding to a full map: error %v, want one saying the map is full", err)
	}

	for _, a := range []netip.Addr{v4, v6, v6} { // removing an absent address is no error
		if err := x.Remove(ctx, a); err != nil {
			t.Errorf("Remove(%s) = %v", a, err)
		}
	}
	list, _ = x.List(ctx)
	for _, e := range list {
		if e.Addr == v4 || e.Addr == v6 {
			t.Errorf("removed %s still listed", e.Addr)
		}
	}
	if err := x.Add(ctx, netip.Addr{}, time.Hour); err == nil {
		t.Error("adding the zero address succeeded")
	}
}

func TestXDPAutoModeFallsBackToGeneric(t *testing.T) {
	needXDP(t)
	// dummy, ifb and bridge devices have no native XDP: auto must fall
	// back and say so. Kernels build some of them as modules: use the
	// first one this kernel can create.
	name := fmt.Sprintf("amd%d", os.Getpid()%10000000)
	var errs []string
	for _, kind := range []string{"dummy", "ifb", "bridge"} {
		out, err := exec.Command("ip", "link", "add", name, "type", kind).CombinedOutput()
		if err == nil {
			errs = nil
			break
		}
		errs = append(errs, fmt.Sprintf("%s: %v: %s", kind, err, bytes.TrimSpace(out)))
	}
	if errs != nil {
		t.Skipf("needs a dummy, ifb or bridge interface: %s", strings.Join(errs, "; "))
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	var logs bytes.Buffer
	x := ensureXDP(t, XDPConfig{Interfaces: []string{name}}, slog.New(slog.NewTextHandler(&logs, nil)))
	if got := x.Modes()[name]; got != XDPModeGeneric {
		t.Errorf("mode %q on a dummy interface, want generic", got)
	}
	if !strings.Contains(logs.String(), "generic mode") {
		t.Errorf("log does not say it fell back to generic mode:\n%s", logs.String())
	}

	p := newPair(t)
	y := ensureXDP(t, XDPConfig{Interfaces: []string{p.Host}}, nil)
	if got := y.Modes()[p.Host]; got != XDPModeNative {
		t.Errorf("mode %q on veth, want native (veth has native XDP)", got)
	}
}

func TestXDPSecondProcessAdoptsTheRunningProgram(t *testing.T) {
	needXDP(t)
	p := newPair(t)
	ctx := context.Background()
	cfg := XDPConfig{Interfaces: []string{p.Host}, Mode: XDPModeGeneric}
	sensor := ensureXDP(t, cfg, nil)
	cli := ensureXDP(t, cfg, nil) // what the block CLI does next to a running sensor
	if got := cli.Modes()[p.Host]; got != "adopted" {
		t.Fatalf("second backend's mode %q, want adopted", got)
	}
	u := newUDPProbe(t, p, false)
	a, b := p.PeerV4[0], p.PeerV4[1]
	if err := cli.Add(ctx, a, time.Hour); err != nil {
		t.Fatal(err)
	}
	if l, err := sensor.List(ctx); err != nil || len(l) != 1 || l[0].Addr != a {
		t.Fatalf("sensor's List() = %v, %v; want the CLI's entry %s", l, err, a)
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	if got := u.exchange(5, a, b); got[a] != 0 || got[b] != 5 {
		t.Fatalf("after the CLI closed: arrived %v, want 0 from %s and 5 from %s", got, a, b)
	}

	cli = ensureXDP(t, cfg, nil)
	if err := cli.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := p.HostXDP(); err != nil || got != "" {
		t.Errorf("after the CLI's flush, ip link shows %q (%v), want no XDP program", got, err)
	}
	if got := u.exchange(5, a, b); got[a] != 5 {
		t.Errorf("after flush: arrived %v, want 5 from %s", got, a)
	}
}

func TestXDPCloseAndFlushLeaveNoProgram(t *testing.T) {
	needXDP(t)
	for _, tt := range []struct {
		name string
		end  func(*XDP) error
	}{
		{"close", func(x *XDP) error { return x.Close() }},
		{"flush", func(x *XDP) error { return x.Flush(context.Background()) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t)
			x := ensureXDP(t, XDPConfig{Interfaces: []string{p.Host}, Mode: XDPModeGeneric}, nil)
			if err := x.Add(context.Background(), p.PeerV4[0], time.Hour); err != nil {
				t.Fatal(err)
			}
			if got, err := p.HostXDP(); err != nil || got != "xdpgeneric" {
				t.Fatalf("while running, ip link shows %q (%v), want xdpgeneric", got, err)
			}
			if err := tt.end(x); err != nil {
				t.Fatal(err)
			}
			if got, err := p.HostXDP(); err != nil || got != "" {
				t.Errorf("after %s, ip link shows %q (%v), want no XDP program", tt.name, got, err)
			}
			if err := x.Add(context.Background(), p.PeerV4[0], time.Hour); !errors.Is(err, errNotEnsured) {
				t.Errorf("Add after %s: %v, want errNotEnsured", tt.name, err)
			}
		})
	}
}

func TestXDPEnsureReattachesToARecreatedInterface(t *testing.T) {
	needXDP(t)
	p := newPair(t)
	x := ensureXDP(t, XDPConfig{Interfaces: []string{p.Host}, Mode: XDPModeGeneric}, nil)
	if err := x.Add(context.Background(), p.PeerV4[0], time.Hour); err != nil {
		t.Fatal(err)
	}
	// Deleting the host end takes the link down with it; a new pair
	// under the same name gets another ifindex.
	if err := exec.Command("ip", "link", "del", p.Host).Run(); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("ip", "link", "add", p.Host, "type", "veth", "peer", "name", p.Host+"x").Run(); err != nil {
		t.Fatal(err)
	}
	if err := x.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, err := p.HostXDP(); err != nil || got != "xdpgeneric" {
		t.Errorf("after Ensure on the re-created interface, ip link shows %q (%v), want xdpgeneric", got, err)
	}
	if l, _ := x.List(context.Background()); len(l) != 1 {
		t.Errorf("entries after re-attaching: %v, want the one block kept", l)
	}
}
