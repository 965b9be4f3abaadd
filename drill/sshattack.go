package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshDialTimeout bounds one TCP connect to the drill's sshd; loopback
// connects take microseconds, so 5 s only trips when something is broken.
const sshDialTimeout = 5 * time.Second

// sshConnDeadline bounds one whole SSH connection (key exchange and up to
// four password tries, each delayed a few ms by sshd): far more than it
// takes, but it keeps a wedged server from hanging the drill.
const sshConnDeadline = 20 * time.Second

// sshLogWait bounds the wait for sshd's lines about an attack to reach the
// auth log after the client has gone; they follow within milliseconds.
const sshLogWait = 10 * time.Second

// errLoggedIn would mean a drill password worked. They are random, so it
// cannot happen; if it does, the drill stops rather than go on.
var errLoggedIn = errors.New("drill: an SSH login succeeded; stopping (the drill's passwords are random, check the server)")

// sshTry is one SSH connection: a user and the passwords tried on it.
type sshTry struct {
	user      string
	passwords []string
}

// sshPlan returns the connections of an SSH attack.
func sshPlan(name string) []sshTry {
	var tries []sshTry
	switch name {
	case SSHBruteForce:
		for left := sshBrutePasswords; left > 0; left -= sshBrutePerConn {
			tries = append(tries, sshTry{user: "root", passwords: randomPasswords(min(left, sshBrutePerConn))})
		}
	case SSHCredStuffer:
		for _, u := range sshStuffUsers {
			tries = append(tries, sshTry{user: u, passwords: randomPasswords(1)})
		}
	}
	return tries
}

// randomPasswords returns n passwords nobody has: sshd never logs passwords,
// so realistic ones would add nothing but the risk of a real login.
func randomPasswords(n int) []string {
	pw := make([]string, n)
	for i := range pw {
		b := make([]byte, 12)
		rand.Read(b)
		pw[i] = "drill-" + hex.EncodeToString(b)
	}
	return pw
}

// runSSHAttack performs an SSH attack from a.Addr against srv and waits
// until sshd's lines about it are in the auth log. With blockable, the
// sensor may block the attacker while it runs (the drill's blocked phase):
// a connection cut off after some failures ends the attack without failing
// it, and sshd's "connection closed" lines are not waited for (the
// attacker's last packets are dropped, so sshd logs them only much later).
func runSSHAttack(ctx context.Context, a Attack, srv *sshd, blockable bool) Result {
	res := Result{Attack: a, Start: time.Now()}
	failures := 0
	tries := sshPlan(a.Name)
	for _, t := range tries {
		n, err := sshAttempt(ctx, a.Addr, srv.Addr, srv.HostKey, t)
		failures += n
		if err != nil {
			if blockable && failures > 0 {
				break
			}
			res.fail(err)
			return res
		}
	}
	res.Count = failures
	// Wait for sshd to log every failure and the end of every connection:
	// the last of those lines is the attack's completing log line.
	wait := sshLogWait
	if blockable {
		// A blocked attacker's last packets are dropped, and sshd may log
		// its last failure or the connection's end much later or never:
		// what sshd logged within blockedLogWait is the attack.
		wait = blockedLogWait
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	got, err := srv.tally.wait(wctx, a.Addr, func(t addrTally) bool {
		return t.Marks["failed"] >= failures && (blockable || t.Marks["closed"] >= len(tries))
	})
	res.Lines, res.Last = got.Lines, got.Last
	res.Duration = res.Last.Sub(res.Start)
	if err != nil && blockable && ctx.Err() == nil && got.Marks["failed"] > 0 {
		err = nil
	}
	if err != nil {
		res.fail(fmt.Errorf("sshd logged %d of %d failed passwords and %d of %d connection ends from %s: %w",
			got.Marks["failed"], failures, got.Marks["closed"], len(tries), a.Addr, err))
	}
	return res
}

// sshAttempt makes one SSH connection from laddr to addr and tries t's
// passwords on it. It returns how many passwords were tried; a rejection of
// all of them is the expected outcome, not an error.
func sshAttempt(ctx context.Context, laddr netip.Addr, addr string, hostKey ssh.PublicKey, t sshTry) (int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: laddr.AsSlice()}, Timeout: sshDialTimeout}
	conn, err := d.DialContext(ctx, "tcp4", addr)
	if err != nil {
		return 0, fmt.Errorf("dialing sshd from %s: %w", laddr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(sshConnDeadline))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	tried := 0
	next := ssh.PasswordCallback(func() (string, error) {
		if tried == len(t.passwords) {
			return "", errors.New("out of passwords")
		}
		tried++
		return t.passwords[tried-1], nil
	})
	cfg := &ssh.ClientConfig{
		User:            t.user,
		Auth:            []ssh.AuthMethod{ssh.RetryableAuthMethod(next, len(t.passwords))},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
		// What the Go-based scanners that fill real auth logs send.
		ClientVersion: "SSH-2.0-Go",
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err == nil {
		ssh.NewClient(c, chans, reqs).Close()
		return tried, errLoggedIn
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return tried, nil
	}
	if ctx.Err() != nil {
		return tried, ctx.Err()
	}
	return tried, fmt.Errorf("ssh from %s as %q: %w", laddr, t.user, err)
}
