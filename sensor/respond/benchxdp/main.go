//go:build linux

// Command benchxdp measures the XDP backend's drop rate (root): a UDP flood
// from one source in a network namespace over a veth pair to a listener on
// the host end, first without any program, then with attackmap_xdp
// attached in generic mode (source not blocked, then blocked) and in native
// mode (source blocked). The same sender runs in every phase, so the rates
// compare directly: packets/s the stack delivered to the socket without the
// program against packets/s the program dropped.
//
// On veth the receive path runs on the sender's CPU, so a cheaper receive
// path shows up as a faster sender: "sent/s" rises when XDP drops early.
//
//	go run ./sensor/respond/benchxdp [-d 2s] [-size 64]
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
	"os/signal"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/attackmap/attackmap/sensor/respond"
	"github.com/attackmap/attackmap/sensor/respond/internal/vethns"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchxdp:", err)
		os.Exit(1)
	}
}

// batch is the number of datagrams per sendmmsg(2): enough to make the
// syscall's own cost small next to the per-packet work being measured.
const batch = 64

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchxdp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dur := fs.Duration("d", 2*time.Second, "flood `duration` of each phase (4 phases; the whole run stays under 4x this plus setup)")
	size := fs.Int("size", 64, "UDP payload `bytes` per datagram (64: a small-packet flood, the worst case per byte)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size < 1 || *size > 1400 {
		return fmt.Errorf("-size %d: want 1..1400 (one datagram per frame on a 1500-byte MTU)", *size)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (XDP, network namespaces, veth pairs)")
	}
	p, err := vethns.New(1)
	if err != nil {
		return err
	}
	defer p.Close()

	ln, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.HostV4, 0)))
	if err != nil {
		return err
	}
	defer ln.Close()
	// A 4 MiB receive buffer, so the socket rather than the reader's
	// scheduling is rarely what drops in the baseline.
	ln.SetReadBuffer(4 << 20)
	var delivered atomic.Uint64
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := ln.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			delivered.Add(1)
		}
	}()

	src := p.PeerV4[0]
	var fd int
	err = p.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
			return err
		}
		dst := ln.LocalAddr().(*net.UDPAddr).AddrPort()
		return unix.Connect(fd, &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())})
	})
	if err != nil {
		return fmt.Errorf("sender socket: %w", err)
	}
	defer unix.Close(fd)

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	type phase struct {
		name  string
		mode  string // "" = no program
		block bool
	}
	phases := []phase{
		{"no program", "", false},
		{"generic, source not blocked", respond.XDPModeGeneric, false},
		{"generic, source blocked", respond.XDPModeGeneric, true},
		{"native, source blocked", respond.XDPModeNative, true},
	}
	fmt.Fprintf(stdout, "XDP drop rate: UDP flood of %d-byte datagrams from one source over veth, %v per phase\n", *size, *dur)
	fmt.Fprintln(stdout, "(2-core shared machine: figures are noisy; compare rows of one run)")
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tsent/s\tat host/s\tdelivered/s\txdp dropped/s\t")
	for _, ph := range phases {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var x *respond.XDP
		if ph.mode != "" {
			x, err = respond.OpenXDP(respond.XDPConfig{Interfaces: []string{p.Host}, Mode: ph.mode}, log)
			if err != nil {
				return err
			}
			if err := x.Ensure(ctx); err != nil {
				return err
			}
			if ph.block {
				if err := x.Add(ctx, src, time.Hour); err != nil {
					x.Close()
					return err
				}
			}
		}
		rx0, _ := p.HostRxPackets()
		d0 := delivered.Load()
		var x0 uint64
		if x != nil {
			x0, _ = x.Drops()
		}
		start := time.Now()
		sent := flood(ctx, fd, *size, *dur)
		el := time.Since(start).Seconds()
		time.Sleep(100 * time.Millisecond) // let the reader drain its buffer
		rx1, _ := p.HostRxPackets()
		dropped := "-"
		if x != nil {
			x1, _ := x.Drops()
			dropped = fmt.Sprintf("%.0f", float64(x1-x0)/el)
			x.Close()
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%s\t\n", ph.name, float64(sent)/el,
			float64(rx1-rx0)/el, float64(delivered.Load()-d0)/el, dropped)
	}
	return tw.Flush()
}

// flood sends datagrams of size bytes on the connected socket fd with
// sendmmsg(2) for d and returns how many the kernel accepted.
func flood(ctx context.Context, fd, size int, d time.Duration) uint64 {
	payload := make([]byte, size)
	iov := unix.Iovec{Base: &payload[0]}
	iov.SetLen(size)
	msgs := make([]unix.Mmsghdr, batch)
	for i := range msgs {
		msgs[i].Hdr.Iov = &iov
		msgs[i].Hdr.SetIovlen(1)
	}
	var sent uint64
	deadline := time.Now().Add(d)
	for i := 0; ; i++ {
		// Check the clock every 64 batches: time.Now is cheap, but not
		// free next to a syscall that may take under a microsecond.
		if i%64 == 0 && (time.Now().After(deadline) || ctx.Err() != nil) {
			return sent
		}
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), batch, 0, 0, 0)
		if errno != 0 {
			// ENOBUFS/EAGAIN: the veth's queue is full; keep pushing.
			continue
		}
		sent += uint64(n)
	}
}
