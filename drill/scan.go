package drill

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// scanDialTimeout bounds one knock: a closed loopback port answers with a
// reset at once, so 2 s only trips when a firewall drops the SYN.
const scanDialTimeout = 2 * time.Second

// scanPorts are the ports knocked on, in order: the ones real scanners try
// first (ftp, telnet, smtp, web, databases, RDP, VNC, Redis, Elasticsearch,
// ...). Ports something on this host listens on are skipped, so every knock
// is on a closed port; if too many are open, high ports fill the gap.
var scanPorts = []uint16{
	21, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1433,
	1521, 2375, 3306, 3389, 5432, 5900, 5985, 6379, 8080, 8443, 9200,
	11211, 27017,
}

// scanFillFrom is where the high ports used when common ports are open start.
const scanFillFrom = 47001

// listeningPorts returns the TCP ports something listens on, any address,
// from /proc/net/tcp and /proc/net/tcp6 (the ones that exist).
func listeningPorts() (map[uint16]bool, error) {
	ports := make(map[uint16]bool)
	found := false
	for _, p := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("drill: %w", err)
		}
		found = true
		err = parseListenPorts(f, ports)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("drill: %s: %w", p, err)
		}
	}
	if !found {
		return nil, errors.New("drill: no /proc/net/tcp: cannot tell open ports from closed ones")
	}
	return ports, nil
}

// parseListenPorts adds the local ports of the LISTEN sockets (state 0A) in
// a /proc/net/tcp or tcp6 table to ports. Lines it does not understand are
// skipped; only a read error is an error.
//
//	sl  local_address rem_address   st tx_queue rx_queue ...
//	 0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 ...
func parseListenPorts(r io.Reader, ports map[uint16]bool) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "0A" || !strings.HasSuffix(f[0], ":") {
			continue
		}
		i := strings.LastIndexByte(f[1], ':')
		if i < 0 {
			continue
		}
		port, err := strconv.ParseUint(f[1][i+1:], 16, 16)
		if err != nil || port == 0 {
			continue
		}
		ports[uint16(port)] = true
	}
	return sc.Err()
}

// scanTargets returns n closed ports to knock on.
func scanTargets(n int, open map[uint16]bool) []uint16 {
	var out []uint16
	for _, p := range scanPorts {
		if len(out) == n {
			return out
		}
		if !open[p] {
			out = append(out, p)
		}
	}
	for p := uint16(scanFillFrom); len(out) < n && p < scanFillFrom+1000; p++ {
		if !open[p] {
			out = append(out, p)
		}
	}
	return out
}

// runPortScan knocks from a.Addr on a.Planned closed ports of target. Each
// refused connect is one reset sent by the kernel (the eBPF probe event).
// Result.Last is when the last reset arrived.
func runPortScan(ctx context.Context, a Attack, target netip.Addr) Result {
	res := Result{Attack: a, Start: time.Now()}
	open, err := listeningPorts()
	if err != nil {
		res.fail(err)
		return res
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: a.Addr.AsSlice()}, Timeout: scanDialTimeout}
	var ports []int
	for _, p := range scanTargets(a.Planned, open) {
		addr := net.JoinHostPort(target.String(), strconv.Itoa(int(p)))
		conn, err := d.DialContext(ctx, "tcp", addr)
		switch {
		case err == nil:
			// Opened since listeningPorts looked: not a knock on a closed
			// port, so not counted.
			conn.Close()
		case errors.Is(err, syscall.ECONNREFUSED):
			res.Count++
			res.Last = time.Now()
			ports = append(ports, int(p))
		default:
			res.fail(fmt.Errorf("knocking on %s from %s: %w", addr, a.Addr, err))
			return res
		}
	}
	res.Ports = ports
	res.Duration = res.Last.Sub(res.Start)
	if res.Count < a.Planned {
		res.fail(fmt.Errorf("only %d of %d knocks were refused", res.Count, a.Planned))
	}
	return res
}
