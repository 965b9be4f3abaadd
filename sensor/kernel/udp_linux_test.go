//go:build linux

package kernel

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/detect"
	"github.com/attackmap/attackmap/sensor/event"
)

// runCollector starts a collector with the default config and runs it
// until the test ends.
func runCollector(t *testing.T) *sink {
	t.Helper()
	c, err := Start(Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()
	s := newSink(c)
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
		s.wg.Wait()
	})
	return s
}

// requireICMPSend skips on kernels without the icmp:icmp_send tracepoint
// (before Linux 6.10), where UDP probes are not reported by design.
func requireICMPSend(t *testing.T) {
	t.Helper()
	requireBPF(t)
	if !hasTracepoint("icmp", "icmp_send") {
		t.Skip("needs the icmp:icmp_send tracepoint (Linux 6.10+); this kernel reports no UDP probes")
	}
}

// closedUDPPorts returns n loopback UDP ports that nothing listens on.
func closedUDPPorts(t *testing.T, n int) []uint16 {
	var ports []uint16
	for range n {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, uint16(pc.LocalAddr().(*net.UDPAddr).Port))
		pc.Close()
	}
	return ports
}

func TestCollectorReportsUDPProbes(t *testing.T) {
	requireICMPSend(t)
	s := runCollector(t)
	loop4 := netip.MustParseAddr("127.0.0.1")
	prober := netip.MustParseAddr("127.0.9.9")

	open, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	openPort := uint16(open.LocalAddr().(*net.UDPAddr).Port)
	closed := closedUDPPorts(t, 20)

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: prober.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srcPort := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	send := func(port uint16) {
		t.Helper()
		if _, err := conn.WriteToUDPAddrPort([]byte("probe"), netip.AddrPortFrom(loop4, port)); err != nil {
			t.Fatalf("sending to %d: %v", port, err)
		}
	}
	send(openPort)
	for _, p := range closed {
		send(p)
	}

	for _, p := range closed {
		ev := s.wait(t, fmt.Sprintf("UDP probe on port %d", p), func(ev event.Event) bool {
			return ev.Kind == event.KindProbe && ev.Proto == "udp" && ev.DstPort == p
		})
		if ev.SrcIP != prober || ev.SrcPort != srcPort || ev.DstIP != loop4 || ev.PID != 0 || ev.Source != event.SourceEBPF {
			t.Errorf("UDP probe %+v: want %v:%d -> 127.0.0.1:%d", ev, prober, srcPort, p)
		}
	}
	// The datagram to the open port was delivered, so its port
	// unreachable, had there been one, would have come before the others.
	buf := make([]byte, 16)
	open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := open.ReadFrom(buf); err != nil || string(buf[:n]) != "probe" {
		t.Fatalf("open port got %q, %v", buf[:n], err)
	}
	for _, ev := range s.all() {
		if ev.Kind == event.KindProbe && ev.DstPort == openPort {
			t.Errorf("probe event for the open port: %+v", ev)
		}
		if ev.Kind == event.KindProbe && ev.Proto == "tcp" && ev.SrcIP == prober {
			t.Errorf("UDP datagram reported as a TCP probe: %+v", ev)
		}
	}
}

// TestNmapUDPScanRaisesAUDPPortScan runs the real tool: nmap -sU from a
// spoofed loopback source through the collector into the detectors. On
// loopback the kernel does not rate-limit ICMP, so every closed port
// answers and every answer is a probe event.
func TestNmapUDPScanRaisesAUDPPortScan(t *testing.T) {
	requireICMPSend(t)
	nmap, err := exec.LookPath("nmap")
	if err != nil {
		t.Skip("needs nmap (apt-get install nmap; CI installs it)")
	}
	s := runCollector(t)
	const (
		scanner          = "127.0.9.10"
		firstPort        = 1000
		lastPort         = 1030
		sent             = lastPort - firstPort + 1
		minClosedForTest = 15 // the port_scan threshold
	)
	// Bounded: a loopback scan of 31 ports takes well under a second;
	// nmap's own timeouts on a busy machine stay far below a minute.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, nmap, "-sU", "-S", scanner, "-e", "lo", "-Pn", "-n",
		"-p", fmt.Sprintf("%d-%d", firstPort, lastPort), "--max-retries", "0", "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("nmap: %v\n%s", err, out)
	}
	closed := nmapClosed(string(out))
	t.Logf("nmap: %d ports probed, %d reported closed (port-unreach)", sent, closed)
	if closed < minClosedForTest {
		t.Skipf("only %d of ports %d-%d are closed here (others listen): too few for a scan\n%s", closed, firstPort, lastPort, out)
	}

	isScanProbe := func(ev event.Event) bool {
		return ev.Kind == event.KindProbe && ev.SrcIP.String() == scanner
	}
	// Every port nmap saw closed answered with a port unreachable; each
	// must arrive as a probe.
	deadline := time.Now().Add(10 * time.Second)
	var probes []event.Event
	for {
		probes = slices.DeleteFunc(s.all(), func(ev event.Event) bool { return !isScanProbe(ev) })
		if len(probes) >= closed || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ports := map[uint16]bool{}
	for _, ev := range probes {
		if ev.Proto != "udp" || ev.DstPort < firstPort || ev.DstPort > lastPort || ev.DstIP != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("probe from nmap %+v: want udp to 127.0.0.1:%d-%d", ev, firstPort, lastPort)
		}
		ports[ev.DstPort] = true
	}
	t.Logf("collector: %d probe events from %s, %d distinct ports", len(probes), scanner, len(ports))
	if len(ports) != closed {
		t.Errorf("%d distinct ports seen as probes, nmap found %d closed", len(ports), closed)
	}

	cfg := detect.DefaultConfig()
	cfg.IncludePrivate = true // the scanner is a loopback address
	eng := detect.New(cfg)
	var got []incident.Incident
	for _, ev := range s.all() {
		got = append(got, eng.Handle(ev)...)
	}
	got = append(got, eng.Flush()...)
	var scan *incident.Incident
	for i := range got {
		if got[i].Source == "port_scan" && got[i].IP == scanner {
			scan = &got[i]
		}
	}
	if scan == nil {
		t.Fatalf("no port_scan incident from %s among %d incidents", scanner, len(got))
	}
	if scan.Title != "UDP port scan" || !strings.Contains(scan.Summary, "udp") || len(scan.Evidence.Ports) < minClosedForTest {
		t.Errorf("incident %q %q ports %v: want a UDP port scan", scan.Title, scan.Summary, scan.Evidence.Ports)
	}
	if err := scan.Validate(); err != nil {
		t.Error(err)
	}
	t.Logf("incident: %s: %s", scan.Title, scan.Summary)
}

// nmapClosed reads how many ports nmap found closed from its normal
// output: "Not shown: 31 closed udp ports (port-unreach)" when it folds
// them, else one "1000/udp closed ..." line per port.
func nmapClosed(out string) int {
	n := 0
	for line := range strings.Lines(out) {
		var k int
		if _, err := fmt.Sscanf(line, "Not shown: %d closed udp ports", &k); err == nil {
			n += k
			continue
		}
		if f := strings.Fields(line); len(f) >= 2 && strings.HasSuffix(f[0], "/udp") && f[1] == "closed" {
			n++
		}
	}
	return n
}
