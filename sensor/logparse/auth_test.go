package logparse

import (
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/sensor/event"
)

var fixedNow = time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC)

func testOpts() Options {
	return Options{Year: 2026, Location: time.UTC, Now: func() time.Time { return fixedNow }}
}

// want is the part of an event a table test checks.
type want struct {
	kind, detail, ip, user string
	port                   uint16
}

func (w want) check(t *testing.T, ev event.Event, ok bool) {
	t.Helper()
	if w.kind == "" {
		if ok {
			t.Fatalf("got event %+v, want none", ev)
		}
		return
	}
	if !ok {
		t.Fatalf("got no event, want %+v", w)
	}
	if ev.Kind != w.kind || ev.Detail != w.detail || ev.SrcIP.String() != w.ip || ev.User != w.user || ev.SrcPort != w.port {
		t.Fatalf("got kind=%q detail=%q ip=%s user=%q port=%d\nwant %+v", ev.Kind, ev.Detail, ev.SrcIP, ev.User, ev.SrcPort, w)
	}
}

func TestAuthMessages(t *testing.T) {
	const F, A = event.KindSSHFailed, event.KindSSHAccepted
	cases := []struct {
		name, line string
		want       want
	}{
		{"failed password valid user", "Mar 22 14:32:01 web-1 sshd[1234]: Failed password for root from 185.220.101.34 port 41337 ssh2",
			want{F, DetailFailedPassword, "185.220.101.34", "root", 41337}},
		{"failed password invalid user", "Mar 22 14:32:01 web-1 sshd[1234]: Failed password for invalid user admin from 185.220.101.34 port 41337 ssh2",
			want{F, DetailFailedPassword, "185.220.101.34", "admin", 41337}},
		{"smuggled address in username", "Mar 22 14:32:01 web-1 sshd[1234]: Failed password for invalid user evil from 10.0.0.1 port 22 from 185.220.101.34 port 58461 ssh2",
			want{F, DetailFailedPassword, "185.220.101.34", "evil from 10.0.0.1 port 22", 58461}},
		{"smuggled ssh2 suffix in username", "Mar 22 14:32:01 web-1 sshd[1234]: Failed password for invalid user x from 1.2.3.4 port 22 ssh2 from 185.220.101.34 port 5 ssh2",
			want{F, DetailFailedPassword, "185.220.101.34", "x from 1.2.3.4 port 22 ssh2", 5}},
		{"empty invalid user", "Mar 22 14:32:01 web-1 sshd[1234]: Failed none for invalid user  from 185.220.101.34 port 41337 ssh2",
			want{F, DetailFailedNone, "185.220.101.34", "", 41337}},
		{"failed publickey", "Mar 22 14:32:01 web-1 sshd[1234]: Failed publickey for git from 2001:db8::7 port 50000 ssh2: RSA SHA256:abcdefghijklmnop",
			want{F, DetailFailedPublickey, "2001:db8::7", "git", 50000}},
		{"keyboard-interactive", "Mar 22 14:32:01 web-1 sshd[1234]: Failed keyboard-interactive/pam for invalid user oracle from 185.220.101.34 port 41337 ssh2",
			want{F, DetailFailedKbdInt, "185.220.101.34", "oracle", 41337}},
		{"invalid user", "Mar 22 14:32:01 web-1 sshd[1234]: Invalid user admin from 185.220.101.34 port 41337",
			want{F, DetailInvalidUser, "185.220.101.34", "admin", 41337}},
		{"invalid user old", "Mar 22 14:32:01 web-1 sshd[1234]: Invalid user admin from 185.220.101.34",
			want{F, DetailInvalidUser, "185.220.101.34", "admin", 0}},
		{"invalid user smuggled", "Mar 22 14:32:01 web-1 sshd[1234]: Invalid user a from 10.0.0.1 port 22 from 185.220.101.34 port 41337",
			want{F, DetailInvalidUser, "185.220.101.34", "a from 10.0.0.1 port 22", 41337}},
		{"ipv6 zone id", "Mar 22 14:32:01 web-1 sshd[1234]: Invalid user pi from fe80::1%eth0 port 41337",
			want{F, DetailInvalidUser, "fe80::1", "pi", 41337}},
		{"v4 mapped", "Mar 22 14:32:01 web-1 sshd[1234]: Failed password for root from ::ffff:185.220.101.34 port 41337 ssh2",
			want{F, DetailFailedPassword, "185.220.101.34", "root", 41337}},
		{"user not allowed", "Mar 22 14:32:01 web-1 sshd[1234]: User oracle from 185.220.101.34 not allowed because not listed in AllowUsers",
			want{F, DetailUserNotAllowed, "185.220.101.34", "oracle", 0}},
		{"pam failure", "Mar 22 14:32:01 web-1 sshd[1234]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34  user=root",
			want{F, DetailPAMFailure, "185.220.101.34", "root", 0}},
		{"pam failure smuggled user", "Mar 22 14:32:01 web-1 sshd[1234]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34  user=x rhost=10.0.0.1",
			want{F, DetailPAMFailure, "185.220.101.34", "x rhost=10.0.0.1", 0}},
		{"max auth tries", "Mar 22 14:32:01 web-1 sshd[1234]: error: maximum authentication attempts exceeded for root from 185.220.101.34 port 41337 ssh2 [preauth]",
			want{F, DetailMaxAuthTries, "185.220.101.34", "root", 41337}},
		{"too many failures", "Mar 22 14:32:01 web-1 sshd[1234]: Disconnecting authenticating user root 185.220.101.34 port 41337: Too many authentication failures [preauth]",
			want{F, DetailMaxAuthTries, "185.220.101.34", "root", 41337}},
		{"too many failures invalid", "Mar 22 14:32:01 web-1 sshd[1234]: Disconnecting invalid user test 185.220.101.34 port 41337: Too many authentication failures [preauth]",
			want{F, DetailMaxAuthTries, "185.220.101.34", "test", 41337}},
		{"closed authenticating", "Mar 22 14:32:01 web-1 sshd[1234]: Connection closed by authenticating user root 185.220.101.34 port 41337 [preauth]",
			want{F, DetailPreauthClose, "185.220.101.34", "root", 41337}},
		{"closed invalid", "Mar 22 14:32:01 web-1 sshd[1234]: Connection closed by invalid user nosuchuser 127.0.0.5 port 35947 [preauth]",
			want{F, DetailPreauthClose, "127.0.0.5", "nosuchuser", 35947}},
		{"reset invalid", "Mar 22 14:32:01 web-1 sshd[1234]: Connection reset by invalid user ubnt 185.220.101.34 port 41337 [preauth]",
			want{F, DetailPreauthClose, "185.220.101.34", "ubnt", 41337}},
		{"closed plain", "Mar 22 14:32:01 web-1 sshd[1234]: Connection closed by 185.220.101.34 port 41337 [preauth]",
			want{F, DetailPreauthClose, "185.220.101.34", "", 41337}},
		{"disconnected invalid", "Mar 22 14:32:01 web-1 sshd[1234]: Disconnected from invalid user admin 185.220.101.34 port 41337 [preauth]",
			want{F, DetailPreauthClose, "185.220.101.34", "admin", 41337}},
		{"disconnected user session end", "Mar 22 14:32:01 web-1 sshd[1234]: Disconnected from user root 185.220.101.34 port 41337", want{}},
		{"received disconnect preauth", "Mar 22 14:32:01 web-1 sshd[1234]: Received disconnect from 185.220.101.34 port 41337:11: Bye from 10.0.0.1 port 22 [preauth]",
			want{F, DetailPreauthClose, "185.220.101.34", "", 41337}},
		{"received disconnect session", "Mar 22 14:32:01 web-1 sshd[1234]: Received disconnect from 185.220.101.34 port 41337:11: disconnected by user", want{}},
		{"unable to negotiate", "Mar 22 14:32:01 web-1 sshd[1234]: Unable to negotiate with 185.220.101.34 port 41337: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
			want{F, DetailKexFailure, "185.220.101.34", "", 41337}},
		{"banner exchange", "Mar 22 14:32:01 web-1 sshd[1234]: banner exchange: Connection from 185.220.101.34 port 41337: invalid format",
			want{F, DetailKexFailure, "185.220.101.34", "", 41337}},
		{"bad protocol version", "Mar 22 14:32:01 web-1 sshd[1234]: Bad protocol version identification 'GET / HTTP/1.1 from 10.0.0.1 port 22' from 185.220.101.34 port 41337",
			want{F, DetailKexFailure, "185.220.101.34", "", 41337}},
		{"no ident", "Mar 22 14:32:01 web-1 sshd[1234]: Did not receive identification string from 185.220.101.34 port 41337",
			want{F, DetailNoIdent, "185.220.101.34", "", 41337}},
		{"no ident old", "Mar 22 14:32:01 web-1 sshd[1234]: Did not receive identification string from 185.220.101.34",
			want{F, DetailNoIdent, "185.220.101.34", "", 0}},
		{"dispatch fatal", "Mar 22 14:32:01 web-1 sshd[1234]: ssh_dispatch_run_fatal: Connection from 185.220.101.34 port 41337: invalid format [preauth]",
			want{F, DetailKexFailure, "185.220.101.34", "", 41337}},
		{"dispatch fatal user", "Mar 22 14:32:01 web-1 sshd[1234]: ssh_dispatch_run_fatal: Connection from invalid user a: b 185.220.101.34 port 41337: message authentication code incorrect [preauth]",
			want{F, DetailKexFailure, "185.220.101.34", "a: b", 41337}},
		{"timeout", "Mar 22 14:32:01 web-1 sshd[1234]: fatal: Timeout before authentication for 185.220.101.34 port 41337",
			want{F, DetailPreauthClose, "185.220.101.34", "", 41337}},
		{"accepted password", "Mar 22 14:32:01 web-1 sshd[1234]: Accepted password for alice from 192.0.2.10 port 50000 ssh2",
			want{A, DetailAcceptedPass, "192.0.2.10", "alice", 50000}},
		{"accepted publickey", "Mar 22 14:32:01 web-1 sshd-session[1234]: Accepted publickey for alice from 2001:db8::1 port 50000 ssh2: ED25519 SHA256:2f6ZcVdNDYyTd1FU6IpbFPoSx2WdNf6fhIVvX8mAbQs",
			want{A, DetailAcceptedKey, "2001:db8::1", "alice", 50000}},
		{"rfc3339 stamp", "2026-03-22T14:32:01.123456+01:00 web-1 sshd[1234]: Failed password for root from 185.220.101.34 port 41337 ssh2",
			want{F, DetailFailedPassword, "185.220.101.34", "root", 41337}},
		{"rfc5424", "<38>1 2026-03-22T14:32:01.003Z web-1 sshd 1234 - - Failed password for root from 185.220.101.34 port 41337 ssh2",
			want{F, DetailFailedPassword, "185.220.101.34", "root", 41337}},
		{"bare sshd -E line", "Failed password for root from 127.0.0.6 port 47617 ssh2",
			want{F, DetailFailedPassword, "127.0.0.6", "root", 47617}},
		{"other program", "Mar 22 14:32:01 web-1 sudo[1234]: Failed password for root from 185.220.101.34 port 41337 ssh2", want{}},
		{"not a port", "Mar 22 14:32:01 web-1 sshd[1234]: Failed password for root from 185.220.101.34 port 99999 ssh2", want{}},
		{"host name never resolved", "Mar 22 14:32:01 web-1 sshd[1234]: Invalid user x from example.com port 22", want{}},
		{"garbage", "\x00\xff garbage", want{}},
		{"empty", "", want{}},
		{"session opened", "Mar 22 14:32:01 web-1 sshd[1234]: pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)", want{}},
		{"control chars escaped", "Mar 22 14:32:01 web-1 sshd[1234]: Invalid user a\x1b[31mb from 185.220.101.34 port 1",
			want{F, DetailInvalidUser, "185.220.101.34", `a\x1b[31mb`, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, ok := NewAuth(testOpts()).Line(c.line)
			c.want.check(t, ev, ok)
			if ok && ev.TS.IsZero() {
				t.Fatal("zero timestamp")
			}
		})
	}
}

func TestAuthAttributesLinesWithoutAddressThroughThePid(t *testing.T) {
	p := NewAuth(testOpts())
	lines := []string{
		"Mar 22 14:32:01 web-1 sshd[77]: Connection from 185.220.101.34 port 41337 on 10.0.0.5 port 22 rdomain \"\"",
		"Mar 22 14:32:02 web-1 sshd[77]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=scanner.example.net  user=root",
		"Mar 22 14:32:03 web-1 sshd[78]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=scanner.example.net  user=root",
		"Mar 22 14:32:04 web-1 sshd[77]: Disconnecting: Too many authentication failures for root [preauth]",
	}
	ev, ok := p.Line(lines[0])
	(want{}).check(t, ev, ok)
	ev, ok = p.Line(lines[1])
	(want{event.KindSSHFailed, DetailPAMFailure, "185.220.101.34", "root", 41337}).check(t, ev, ok)
	ev, ok = p.Line(lines[2]) // another pid, never seen: unattributed
	(want{}).check(t, ev, ok)
	ev, ok = p.Line(lines[3])
	(want{event.KindSSHFailed, DetailMaxAuthTries, "185.220.101.34", "root", 41337}).check(t, ev, ok)
}

func TestAuthKexFailureNamedByTheClosingLine(t *testing.T) {
	p := NewAuth(testOpts())
	ev, ok := p.Line("Mar 22 14:32:01 web-1 sshd[90]: kex_exchange_identification: Connection closed by remote host")
	(want{}).check(t, ev, ok)
	ev, ok = p.Line("Mar 22 14:32:01 web-1 sshd[90]: Connection closed by 185.220.101.34 port 41337")
	(want{event.KindSSHFailed, DetailKexFailure, "185.220.101.34", "", 41337}).check(t, ev, ok)
	ev, ok = p.Line("Mar 22 14:32:02 web-1 sshd[90]: kex_exchange_identification: read: Connection reset by peer")
	(want{event.KindSSHFailed, DetailKexFailure, "185.220.101.34", "", 41337}).check(t, ev, ok)
}

func TestPidTableIsBounded(t *testing.T) {
	tab := newPidTable(8)
	a := mustAddr("185.220.101.34")
	for pid := 1; pid <= 100; pid++ {
		tab.put(pidKey{pid: pid}, a, 1)
	}
	if len(tab.m) != 8 {
		t.Fatalf("table holds %d pids, want 8", len(tab.m))
	}
	if _, _, ok := tab.get(pidKey{pid: 100}); !ok {
		t.Fatal("newest pid forgotten")
	}
	if _, _, ok := tab.get(pidKey{pid: 1}); ok {
		t.Fatal("oldest pid kept")
	}
}

func TestAuthCapsUsernames(t *testing.T) {
	long := strings.Repeat("u", 5000)
	ev, ok := NewAuth(testOpts()).Line("Mar 22 14:32:01 web-1 sshd[1]: Invalid user " + long + " from 185.220.101.34 port 22")
	if !ok || len(ev.User) > MaxUser {
		t.Fatalf("ok=%v len(user)=%d", ok, len(ev.User))
	}
}
