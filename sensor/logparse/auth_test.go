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
			want{F, DetailPreauthTimeout, "185.220.101.34", "", 41337}},
		{"timeout old", "Mar 22 14:32:01 web-1 sshd[1234]: fatal: Timeout before authentication for 185.220.101.34",
			want{F, DetailPreauthTimeout, "185.220.101.34", "", 0}},
		{"timeout listener 9.8", "Mar 22 14:32:01 web-1 sshd[1234]: Timeout before authentication for connection from 185.220.101.34 to 10.0.0.5, pid = 4242",
			want{F, DetailPreauthTimeout, "185.220.101.34", "", 0}},
		{"drop connection penalty grace time", "Mar 22 14:32:01 web-1 sshd[1]: drop connection #3 from [185.220.101.34]:41337 on [10.0.0.5]:22 penalty: exceeded LoginGraceTime",
			want{F, DetailPreauthTimeout, "185.220.101.34", "", 41337}},
		{"drop connection max startups v6", "Mar 22 14:32:01 web-1 sshd[1]: drop connection #10 from [2001:db8::66]:50000 on [2001:db8::1]:22 past MaxStartups",
			want{F, DetailConnDropped, "2001:db8::66", "", 50000}},
		// Pubkey-only servers log only the close of a failed attempt.
		{"disconnected authenticating", "Mar 22 14:32:01 web-1 sshd[1234]: Disconnected from authenticating user root 185.220.101.34 port 41337 [preauth]",
			want{F, DetailPreauthClose, "185.220.101.34", "root", 41337}},
		{"closed authenticating smuggled", "Mar 22 14:32:01 web-1 sshd[1234]: Connection closed by authenticating user test 127.0.0.1 port 12345 185.220.101.34 port 46039 [preauth]",
			want{F, DetailPreauthClose, "185.220.101.34", "test 127.0.0.1 port 12345", 46039}},
		{"closed invalid empty user", "Mar 22 14:32:01 web-1 sshd[1234]: Connection closed by invalid user  185.220.101.34 port 34916 [preauth]",
			want{F, DetailPreauthClose, "185.220.101.34", "", 34916}},
		{"closed old no port preauth", "Apr 10 02:43:29 quasar sshd[50112]: Connection closed by 66.240.236.119 [preauth]",
			want{F, DetailPreauthClose, "66.240.236.119", "", 0}},
		{"closed old no port session end", "Sep 29 16:28:05 localhost sshd[16700]: Connection closed by 192.0.2.5", want{}},
		{"reset plain preauth", "Mar 15 09:20:57 host sshd[28972]: Connection reset by 192.0.2.39 port 14282 [preauth]",
			want{F, DetailPreauthClose, "192.0.2.39", "", 14282}},
		{"closed logged in user", "Mar 22 14:32:01 web-1 sshd[1234]: Connection closed by user alice 192.0.2.10 port 50000", want{}},
		{"disconnected plain preauth", "Jul 18 17:19:11 srv sshd[2101]: Disconnected from 192.0.2.4 port 36985 [preauth]",
			want{F, DetailPreauthClose, "192.0.2.4", "", 36985}},
		{"disconnected plain session end", "Dec  1 06:25:27 server sshd[19471]: Disconnected from 1.2.3.4 port 60058", want{}},
		// Refusals.
		{"root refused", "Mar 22 14:32:01 web-1 sshd[1234]: ROOT LOGIN REFUSED FROM 185.220.101.34 port 14423",
			want{F, DetailRootRefused, "185.220.101.34", "root", 14423}},
		{"root refused preauth v6", "Mar 22 14:32:01 web-1 sshd[1234]: ROOT LOGIN REFUSED FROM 2001:db8::a11:beef:7ac1 port 14423 [preauth]",
			want{F, DetailRootRefused, "2001:db8::a11:beef:7ac1", "root", 14423}},
		{"root refused old mapped", "Jan  5 01:31:41 www sshd[1643]: ROOT LOGIN REFUSED FROM ::ffff:1.2.3.4",
			want{F, DetailRootRefused, "1.2.3.4", "root", 0}},
		{"user not allowed v6 zone", "Mar 22 14:32:01 web-1 sshd[1234]: User mario from 2001:db8::a11:beef:7ac0%lo not allowed because listed in DenyUsers",
			want{F, DetailUserNotAllowed, "2001:db8::a11:beef:7ac0", "mario", 0}},
		{"refused connect libwrap", "Nov 11 23:33:27 Server sshd[5174]: refused connect from _U2Fs@::ffff:10.0.0.1 (::ffff:218.249.210.161)",
			want{F, DetailRefusedConnect, "218.249.210.161", "", 0}},
		{"illegal user old", "Mar 22 14:32:01 web-1 sshd[1234]: Illegal user test from 185.220.101.34",
			want{F, DetailInvalidUser, "185.220.101.34", "test", 0}},
		{"invalid user empty", "Jun  6 04:17:04 host sshd[1189074]: Invalid user  from 192.0.2.68 port 34916",
			want{F, DetailInvalidUser, "192.0.2.68", "", 34916}},
		// PAM.
		{"pam lower-case failure", "Mar 22 14:32:01 web-1 sshd[1234]: error: PAM: authentication failure for mario from 6.6.6.0",
			want{F, DetailPAMFailure, "6.6.6.0", "mario", 0}},
		{"pam failure zone", "Mar 22 14:32:01 web-1 sshd[1234]: error: PAM: Authentication failure for mario from 2001:db8::a11:beef:7ac0%vbr1",
			want{F, DetailPAMFailure, "2001:db8::a11:beef:7ac0", "mario", 0}},
		{"pam unknown user", "Mar 22 14:32:01 web-1 sshd[1234]: error: PAM: unknown user for illegal user mario from 6.6.6.6",
			want{F, DetailPAMFailure, "6.6.6.6", "mario", 0}},
		{"pam user not known", "Dec 12 20:04:39 aragorn sshd[1328]: error: PAM: User not known to the underlying authentication module for illegal user kernelitshell from 10.215.4.227 ",
			want{F, DetailPAMFailure, "10.215.4.227", "kernelitshell", 0}},
		{"pam error via local address", "Apr 29 12:53:38 imac sshd[47831]: error: PAM: authentication error for james from 205.186.180.88 via 192.168.1.201",
			want{F, DetailPAMFailure, "205.186.180.88", "james", 0}},
		{"pam smuggled from", "Mar 22 14:32:01 web-1 sshd[1234]: error: PAM: Authentication failure for x from 10.0.0.1 via y from 185.220.101.34",
			want{F, DetailPAMFailure, "185.220.101.34", "x from 10.0.0.1 via y", 0}},
		{"pam other module", "Mar 22 14:32:01 web-1 sshd[1234]: pam_sss(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34 user=bob",
			want{F, DetailPAMFailure, "185.220.101.34", "bob", 0}},
		{"pam other service", "Mar 22 14:32:01 web-1 sshd[1234]: pam_unix(cockpit:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=185.220.101.34 user=jeff", want{}},
		{"pam summary not counted twice", "Mar 22 14:32:01 web-1 sshd[1234]: PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34  user=root", want{}},
		// Clients giving up, switching users, hitting limits.
		{"received disconnect old auth fail", "Apr 10 13:50:24 quasar sshd[53269]: error: Received disconnect from 95.9.156.208: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]",
			want{F, DetailAuthGaveUp, "95.9.156.208", "", 0}},
		{"received disconnect auth fail no preauth", "Jul 13 18:44:28 mdop sshd[4931]: Received disconnect from 89.24.13.192: 3: com.jcraft.jsch.JSchException: Auth fail",
			want{F, DetailAuthGaveUp, "89.24.13.192", "", 0}},
		{"received disconnect new auth fail", "Jan  2 01:18:41 host sshd[11808]: error: Received disconnect from 10.0.0.1 port 7736:3: com.jcraft.jsch.JSchException: Auth fail [preauth]",
			want{F, DetailAuthGaveUp, "10.0.0.1", "", 7736}},
		{"received disconnect no auth methods v6", "May 29 14:44:30 epsilon sshd[4564]: error: Received disconnect from 2001:db8::a11:beef:7ac0: 14: No supported authentication methods available [preauth]",
			want{F, DetailAuthGaveUp, "2001:db8::a11:beef:7ac0", "", 0}},
		{"received disconnect no auth methods new", "Nov 25 01:35:15 srv sshd[3626]: error: Received disconnect from 192.168.2.93 port 1883:14: No authentication methods available [preauth]",
			want{F, DetailAuthGaveUp, "192.168.2.93", "", 1883}},
		{"received disconnect old bye preauth", "Apr  9 13:24:07 quasar sshd[44787]: Received disconnect from 103.237.33.58: 11: Bye Bye [preauth]",
			want{F, DetailPreauthClose, "103.237.33.58", "", 0}},
		{"received disconnect old session end", "Apr  9 13:24:07 quasar sshd[44787]: Received disconnect from 103.237.33.58: 11: disconnected by user", want{}},
		{"username change", "Jul  4 13:55:09 karpov sshd[64301]: Disconnecting invalid user user 10.42.42.42 port 38987: Change of username or service not allowed: (user,ssh-connection) -> (manager,ssh-connection) [preauth]",
			want{F, DetailUsernameChange, "10.42.42.42", "user", 38987}},
		{"username change smuggled", "Jul  4 13:55:09 karpov sshd[64301]: Disconnecting invalid user a 10.0.0.1 port 1: Change of username or service not allowed: (b 185.220.101.34 port 38987: Change of username or service not allowed: (a 10.0.0.1 port 1: Change of username or service not allowed: (b,ssh-connection) -> (c,ssh-connection)",
			want{F, DetailUsernameChange, "185.220.101.34", "a 10.0.0.1 port 1: Change of username or service not allowed: (b", 38987}},
		{"username change cut at 100 bytes", "Jul  4 13:55:09 karpov sshd[64301]: Disconnecting invalid user " + strings.Repeat("u", 60) + " 10.42.42.42 port 38987: Change of username or service not allowed: (" + strings.Repeat("u", 54) + " [preauth]",
			want{F, DetailUsernameChange, "10.42.42.42", strings.Repeat("u", 60), 38987}},
		{"too many failures old form no address", "Mar 22 14:32:01 web-1 sshd[1234]: Disconnecting: Too many authentication failures for root [preauth]", want{}},
		// Scanners.
		{"unable to negotiate fatal", "Mar 22 14:32:01 web-1 sshd[1234]: fatal: Unable to negotiate with 6.6.6.6 port 2222: no matching key exchange method found. Their offer: diffie-hellman-group14-sha1",
			want{F, DetailKexFailure, "6.6.6.6", "", 2222}},
		{"bad protocol old", "Mar 22 14:32:01 web-1 sshd[1234]: Bad protocol version identification XYZ from 2001:db8::a11:beef:7ac0",
			want{F, DetailKexFailure, "2001:db8::a11:beef:7ac0", "", 0}},
		{"bad protocol smuggled", "Jun  7 01:11:58 host sshd[8783]: Bad protocol version identification 'dummy string' from 192.0.2.1' from 69.61.56.115 port 31778",
			want{F, DetailKexFailure, "69.61.56.115", "", 31778}},
		{"no ident zone", "Mar 22 14:32:01 web-1 sshd[1234]: Did not receive identification string from 2001:db8::a11:beef:7ac0%eth0",
			want{F, DetailNoIdent, "2001:db8::a11:beef:7ac0", "", 0}},
		{"protocol major old", "Mar 22 14:32:01 web-1 sshd[1234]: Protocol major versions differ for 185.220.101.34: SSH-2.0-OpenSSH_5.3 vs. SSH-1.5-Nmap-SSH1-Hostkey",
			want{F, DetailKexFailure, "185.220.101.34", "", 0}},
		{"kex without address unattributed", "Mar 22 14:32:01 web-1 sshd[1234]: error: kex_exchange_identification: client sent invalid protocol identifier \"GET / HTTP/1.1\"", want{}},
		// Authentication results with extra information.
		{"failed without ssh2", "Feb 25 14:34:10 belka sshd[31602]: Failed password for invalid user ROOT from 194.117.26.70 port 12345",
			want{F, DetailFailedPassword, "194.117.26.70", "ROOT", 12345}},
		{"failed without port", "Feb 25 14:34:11 belka sshd[31603]: Failed password for invalid user ROOT from aaaa:bbbb:cccc:1234::1:1",
			want{F, DetailFailedPassword, "aaaa:bbbb:cccc:1234::1:1", "ROOT", 0}},
		{"failed hostbased", `Sep 29 17:15:02 spaceman sshd[12946]: Failed hostbased for dan from 127.0.0.1 port 45785 ssh2: RSA 8c:e3:aa:0f:64:51:02:f7:14:79:89:3f:65:84:7c:30, client user "dan", client host "localhost.localdomain"`,
			want{F, DetailFailedOther, "127.0.0.1", "dan", 45785}},
		{"failed ssh1 ruser", "Sep 29 17:15:02 spaceman sshd[12946]: Failed password for user from 127.0.0.1 port 20000 ssh1: ruser from 1.2.3.4",
			want{F, DetailFailedPassword, "127.0.0.1", "user", 20000}},
		{"failed publickey smuggled key", "Mar 22 14:32:01 web-1 sshd[1234]: Failed publickey for invalid user x from 10.0.0.1 port 1 ssh2: RSA SHA256:aaaa from 185.220.101.34 port 5 ssh2: ED25519 SHA256:bbbb",
			want{F, DetailFailedPublickey, "185.220.101.34", "x from 10.0.0.1 port 1 ssh2: RSA SHA256:aaaa", 5}},
		{"failed solaris tag", "Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed keyboard-interactive for <invalid username> from 205.186.180.55 port 42742 ssh2",
			want{F, DetailFailedKbdInt, "205.186.180.55", "<invalid username>", 42742}},
		{"accepted publickey is not hostile", "Dec  1 06:25:27 server sshd[19956]: Accepted publickey for User from 1.2.3.4 port 21563 ssh2: RSA SHA256:...",
			want{A, DetailAcceptedKey, "1.2.3.4", "User", 21563}},
		{"postponed is nothing", "Nov 28 09:16:03 srv sshd[32307]: Postponed publickey for git from 192.0.2.1 port 57904 ssh2 [preauth]", want{}},
		{"break-in warning is nothing", "Oct 15 19:51:35 server sshd[7592]: Address 1.2.3.4 maps to 1234.bbbbbb.com, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!", want{}},
		// Header variants.
		{"facility between host and program", "Jun 20 02:18:39 vps auth.info sshd[13482]: Invalid user admin from 192.168.2.2",
			want{F, DetailInvalidUser, "192.168.2.2", "admin", 0}},
		{"svlogd facility for program", "2015-05-27T04:31:27.46667 auth.info: Invalid user admin from 2001:db8::a11:beef:7ac0",
			want{F, DetailInvalidUser, "2001:db8::a11:beef:7ac0", "admin", 0}},
		{"stamp then bare message", "2018-06-26 13:22:02.108781500 Failed password for woold from 10.10.10.76 port 34718 ssh2",
			want{F, DetailFailedPassword, "10.10.10.76", "woold", 34718}},
		{"macOS unified log", "2018-12-20 10:09:05.180218+0000 localhost sshd[67566]: Invalid user git from 185.52.1.9 port 35968",
			want{F, DetailInvalidUser, "185.52.1.9", "git", 35968}},
		{"no host", "Nov 23 21:50:37 sshd[8148]: Connection closed by 61.0.0.1 [preauth]",
			want{F, DetailPreauthClose, "61.0.0.1", "", 0}},
		{"bracketed program without colon", "Jun 25 23:53:34 [sshd] User root from 1.2.3.4 not allowed because not listed in AllowUsers",
			want{F, DetailUserNotAllowed, "1.2.3.4", "root", 0}},
		{"sshd-auth", "Mar 22 14:32:01 web-1 sshd-auth[1234]: Connection closed by invalid user oracle 185.220.101.34 port 41337 [preauth]",
			want{F, DetailPreauthClose, "185.220.101.34", "oracle", 41337}},
		{"sshd -E line with CR", "Failed password for root from 127.0.0.6 port 47617 ssh2\r",
			want{F, DetailFailedPassword, "127.0.0.6", "root", 47617}},
		{"sshd -E preauth line with CR", "Connection closed by invalid user admin 127.0.0.6 port 47617 [preauth]\r",
			want{F, DetailPreauthClose, "127.0.0.6", "admin", 47617}},
		{"other program facility", "Jun 20 02:18:39 vps auth.info sudo[13482]: Invalid user admin from 192.168.2.2", want{}},
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

// TestAuthNamesAddresslessLinesFromTheirConnection covers the lines that
// name no address: an earlier line of the same sshd pid does.
func TestAuthNamesAddresslessLinesFromTheirConnection(t *testing.T) {
	const F = event.KindSSHFailed
	cases := []struct {
		name  string
		lines []string
		want  want // of the last line
	}{
		{"read from socket failed after vendor connection log", []string{
			"Nov 24 23:46:39 host sshd[32686]: SSH: Server;Ltype: Version;Remote: 192.0.2.7-1780;Protocol: 2.0;Client: libssh2_1.4.3",
			"Nov 24 23:46:43 host sshd[32686]: fatal: Read from socket failed: Connection reset by peer [preauth]",
		}, want{F, DetailPreauthClose, "192.0.2.7", "", 1780}},
		{"old kex failure after connection line without local address", []string{
			"Feb 12 04:09:18 localhost sshd[26713]: Connection from 192.0.2.3 port 39678",
			"Feb 12 04:09:21 localhost sshd[26713]: fatal: Unable to negotiate a key exchange method [preauth]",
		}, want{F, DetailKexFailure, "192.0.2.3", "", 39678}},
		{"no matching mac", []string{
			"Oct 25 19:37:08 hostname sshd[22477]: Connection from 192.0.2.1 port 31309 on 192.0.2.8 port 22",
			"Oct 25 19:37:09 hostname sshd[22477]: fatal: no matching mac found: client hmac-xxx server hmac-yyy [preauth]",
		}, want{F, DetailKexFailure, "192.0.2.1", "", 31309}},
		{"locked account", []string{
			"Apr 24 01:39:19 host sshd[3719]: Connection from 192.0.2.9 port 4000 on 192.0.2.8 port 22",
			"Apr 24 01:39:19 host sshd[3719]: User root not allowed because account is locked",
		}, want{F, DetailUserNotAllowed, "192.0.2.9", "root", 4000}},
		{"pam host name", []string{
			"May 29 20:56:50 imago sshd[28732]: Connection from 192.0.2.11 port 4001 on 192.0.2.8 port 22",
			"May 29 20:56:52 imago sshd[28732]: error: PAM: Authentication failure for stefanor from example.com",
		}, want{F, DetailPAMFailure, "192.0.2.11", "stefanor", 4001}},
		{"ambiguous username change", []string{
			// The user is "a 10.0.0.1 port 1: Change of username or service not allowed: (a,z": two splits
			// of the closing line agree with themselves.
			"Jul  4 13:55:08 karpov sshd[64301]: Invalid user a 10.0.0.1 port 1: Change of username or service not allowed: (a,z from 192.0.2.42 port 38987",
			"Jul  4 13:55:09 karpov sshd[64301]: Disconnecting invalid user a 10.0.0.1 port 1: Change of username or service not allowed: (a,z 192.0.2.42 port 38987: Change of username or service not allowed: (a 10.0.0.1 port 1: Change of username or service not allowed: (a,z,ssh-connection) -> (b,ssh-connection) [preauth]",
		}, want{F, DetailUsernameChange, "192.0.2.42", "a 10.0.0.1 port 1: Change of username or service not allowed: (a,z", 38987}},
		{"old too many failures", []string{
			"Feb 12 04:09:18 localhost sshd[26713]: Connection from 192.0.2.3 port 51353 on 127.0.0.1 port 22",
			"Feb 12 04:09:21 localhost sshd[26713]: Disconnecting: Too many authentication failures [preauth]",
		}, want{F, DetailMaxAuthTries, "192.0.2.3", "", 51353}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewAuth(testOpts())
			var ev event.Event
			var ok bool
			for _, l := range c.lines {
				ev, ok = p.Line(l)
			}
			c.want.check(t, ev, ok)
		})
	}
}
