package drill

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Blocked names the drill's last phase: after the SSH brute force, the
// sensor (with blocking on) blocks the attacker, and its next SSH
// connection must not get through.
const Blocked = "blocked"

// Timeouts of the blocked phase. The sensor blocks within milliseconds of
// the detection (make bench-response), and the detection follows the
// brute force's last line by the tail's wake-up; 20 s leaves room for a
// loaded machine. A blocked source's SYN is dropped, so a connect that has
// not completed after 500 ms on loopback (where it takes microseconds) is
// a refused connection; a connect that completes is closed and tried again
// every 200 ms.
const (
	blockedWait = 20 * time.Second
	// blockedLogWait bounds the wait for a blockable brute force's lines
	// (runSSHAttack): sshd writes them within milliseconds unless the
	// attacker's packets are already dropped.
	blockedLogWait = 2 * time.Second
	blockedConnect = 500 * time.Millisecond
	blockedRetry   = 200 * time.Millisecond
)

// runBlocked connects from the brute forcer's address to sshd until a
// connection is refused (dropped or reset) and reports how long after the
// brute force's last line that took.
func runBlocked(ctx context.Context, brute Result, s *sshd) Result {
	res := Result{Attack: Attack{Name: Blocked, Addr: brute.Addr, Source: brute.Source, Severity: brute.Severity, Place: brute.Place},
		Start: time.Now()}
	if brute.Error != "" || s == nil {
		res.Skipped = "the SSH brute force did not run"
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, blockedWait)
	defer cancel()
	since := brute.Last
	if since.IsZero() {
		since = res.Start
	}
	for {
		res.Count++
		err := connectFrom(ctx, brute.Addr, s.Addr)
		if err != nil && ctx.Err() == nil {
			// Refused: the SYN was dropped (timeout) or answered with a
			// reset by a reject rule.
			res.Last = time.Now()
			res.Duration = res.Last.Sub(since)
			return res
		}
		select {
		case <-ctx.Done():
			res.fail(errors.New("the attacker's SSH connections still get through: is blocking on (response.enabled, root)?"))
			return res
		case <-time.After(blockedRetry):
		}
	}
}

func connectFrom(ctx context.Context, src netip.Addr, dst string) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: blockedConnect}
	c, err := d.DialContext(ctx, "tcp", dst)
	if err != nil {
		if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, os.ErrPermission) {
			return nil // not the firewall: keep trying until the deadline says why
		}
		return err
	}
	return c.Close()
}
