//go:build linux

package respond

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/detect"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// BenchmarkResponseNFTables measures the time from the sshd line that
// completes an ssh_bruteforce detection to the kernel entry being in place
// (the netlink batch acknowledged, which the kernel sends after the
// transaction commits), through the real parser, detectors, responder and
// nftables backend: p50 and p99 per block (target p99 <= 50 ms). Each
// iteration is a new attacker from 198.18.0.0/15 (the benchmarking range).
// Every entry is checked in the kernel afterwards, outside the clock.
func BenchmarkResponseNFTables(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (nftables netlink)")
	}
	table := fmt.Sprintf("attackmap_bench%d", os.Getpid())
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.NFTables.Table = table
	cfg.MaxPerMinute = 1 << 30 // the benchmark measures blocks, not the cap
	cfg.MaxEntries = 1 << 20
	cfg.SSHPorts = []int{1}
	dir := b.TempDir()
	got := make(chan time.Time, 1)
	r, err := New(Options{Config: cfg, DataDir: dir, Logger: slog.New(slog.DiscardHandler),
		Update: func(incident.Incident) { got <- time.Now() }})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
		nb, _ := newNFTables(NFTablesOptions{Table: table})
		_ = nb.Flush(context.Background())
		nb.Close()
	})
	for {
		if _, err := Call(ctx, dir, Request{Op: "stats"}); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}

	dcfg, err := detect.DecodeConfig([]byte("{}"))
	if err != nil {
		b.Fatal(err)
	}
	dcfg.IncludePrivate = true // the detectors skip the benchmarking range by default
	eng := detect.New(dcfg)
	p := logparse.NewAuth(logparse.Options{Location: time.UTC})
	var lat []time.Duration
	var addrs []netip.Addr
	n := 0
	start := time.Now().UTC()
	for b.Loop() {
		n++
		addr := netip.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)})
		addrs = append(addrs, addr)
		ts := start.Add(time.Duration(n) * time.Minute)
		var lines []string
		for i := range 8 {
			lines = append(lines, fmt.Sprintf("%s bench sshd[%d]: Failed password for invalid user admin from %s port %d ssh2",
				ts.Add(time.Duration(i)*time.Second).Format(time.Stamp), 1000+i, addr, 50000+i))
		}
		raised := false
		for _, line := range lines {
			t0 := time.Now()
			ev, ok := p.Line(line)
			if !ok {
				b.Fatalf("parser refused %q", line)
			}
			for _, in := range eng.Handle(ev) {
				if in.Source == "ssh_bruteforce" {
					raised = true
					r.Offer(in)
				}
			}
			if raised {
				select {
				case t1 := <-got:
					lat = append(lat, t1.Sub(t0))
				case <-time.After(5 * time.Second):
					b.Fatalf("no block for %s", addr)
				}
				break
			}
		}
		if !raised {
			b.Fatalf("no detection for %s", addr)
		}
	}
	b.StopTimer()
	nb, _ := newNFTables(NFTablesOptions{Table: table})
	defer nb.Close()
	es, err := nb.List(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	in := map[netip.Addr]bool{}
	for _, e := range es {
		in[e.Addr] = true
	}
	for _, a := range addrs {
		if !in[a] {
			b.Fatalf("%s not in the kernel set", a)
		}
	}
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(0, "ns/op")
}
