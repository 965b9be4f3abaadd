package detect

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

func TestSSHBruteforceRaisesOnTheSixthQuickFailure(t *testing.T) {
	e := New(every())
	for i := range 5 {
		if got := feed(t, e, failedPw(attacker, at(time.Duration(i)*time.Second), "root")); len(got) != 0 {
			t.Fatalf("failure %d raised %v", i+1, got)
		}
	}
	got := bySource(feed(t, e, failedPw(attacker, at(5*time.Second), "admin")), "ssh_bruteforce")
	if len(got) != 1 {
		t.Fatalf("6th failure: got %d incidents", len(got))
	}
	in := got[0]
	if in.Severity != incident.High || in.Count != 6 || in.IP != attacker || in.Action != "logged" ||
		in.ID != "ssh_bruteforce:185.220.101.34:2026-03-22T14:31Z" || !in.FirstSeen.Equal(t0) ||
		!in.TS.Equal(at(5*time.Second)) || len(in.Evidence.Users) != 2 {
		t.Fatalf("got %+v %+v", in, in.Evidence)
	}
	if in.Summary != "6 failed SSH logins for 2 users in 5 s" {
		t.Fatalf("summary %q", in.Summary)
	}
}

func TestSSHBruteforceIgnoresOccasionalFailures(t *testing.T) {
	e := New(every())
	var evs []event.Event
	for i := range 50 {
		evs = append(evs, failedPw(attacker, at(time.Duration(i)*70*time.Second), "root"))
	}
	if got := feed(t, e, evs...); len(got) != 0 {
		t.Fatalf("got %d incidents, want none", len(got))
	}
}

func TestSSHBruteforceSlowVariantCatchesPatientGuessers(t *testing.T) {
	e := New(every())
	var evs []event.Event
	for i := range 40 {
		evs = append(evs, failedPw(attacker, at(time.Duration(i)*15*time.Second), "root"))
	}
	got := bySource(feed(t, e, evs...), "ssh_bruteforce")
	if len(got) == 0 {
		t.Fatal("slow brute force not raised")
	}
	if got[0].Title != "Slow SSH brute force" {
		t.Fatalf("title %q", got[0].Title)
	}
	for _, in := range got {
		if in.ID != got[0].ID {
			t.Fatalf("ids differ: %s %s", in.ID, got[0].ID)
		}
	}
}

func TestSSHBruteforceCountsTheInvalidUserDoubleLineOnce(t *testing.T) {
	e := New(every())
	var evs []event.Event
	for i := range 5 {
		ts := at(time.Duration(i) * time.Second)
		port := uint16(50000 + i)
		evs = append(evs,
			sshFail(attacker, ts, "admin", port, logparse.DetailInvalidUser),
			sshFail(attacker, ts, "", port, logparse.DetailPAMFailure),
			sshFail(attacker, ts, "admin", port, logparse.DetailFailedPassword),
			sshFail(attacker, ts, "admin", port, logparse.DetailPreauthClose))
	}
	if got := bySource(feed(t, e, evs...), "ssh_bruteforce"); len(got) != 0 {
		t.Fatalf("5 attempts (20 lines) raised %+v", got)
	}
	got := bySource(feed(t, e, sshFail(attacker, at(6*time.Second), "admin", 50006, logparse.DetailInvalidUser)), "ssh_bruteforce")
	if len(got) != 1 || got[0].Count != 6 {
		t.Fatalf("6th attempt: %+v", got)
	}
}

func TestSSHBruteforceCountsInterleavedConnectionsOnce(t *testing.T) {
	e := New(every())
	// Three connections at once: Invalid a, b, c, then their Failed lines.
	evs := []event.Event{
		sshFail(attacker, at(0), "a", 1, logparse.DetailInvalidUser),
		sshFail(attacker, at(0), "b", 2, logparse.DetailInvalidUser),
		sshFail(attacker, at(0), "c", 3, logparse.DetailInvalidUser),
		sshFail(attacker, at(1), "a", 1, logparse.DetailFailedPassword),
		sshFail(attacker, at(1), "b", 2, logparse.DetailFailedPassword),
		sshFail(attacker, at(1), "c", 3, logparse.DetailFailedPassword),
		sshFail(attacker, at(2), "a", 1, logparse.DetailFailedPassword), // second try on connection 1
	}
	feed(t, e, evs...)
	st := e.detectors[0].(*sshBruteforce).t.peek(mustAddr(attacker))
	if st.fast.n != 4 {
		t.Fatalf("counted %d attempts, want 4", st.fast.n)
	}
}

func TestSSHBruteforceEscalatesAtTwiceAndThriceTheThreshold(t *testing.T) {
	c := every()
	c.SSHBruteforce.Severity = incident.Medium
	e := New(c)
	var evs []event.Event
	for i := range 18 {
		evs = append(evs, failedPw(attacker, at(time.Duration(i)*time.Second), "root"))
	}
	got := bySource(feed(t, e, evs...), "ssh_bruteforce")
	sev := map[int]incident.Severity{}
	for _, in := range got {
		sev[in.Count] = in.Severity
	}
	if sev[6] != incident.Medium || sev[11] != incident.Medium || sev[12] != incident.High ||
		sev[17] != incident.High || sev[18] != incident.Critical {
		t.Fatalf("severities by count: %v", sev)
	}
}

func TestSSHBruteforceUpdatesOneIncidentPerCooldown(t *testing.T) {
	e := New(every())
	var evs []event.Event
	for i := range 10 {
		evs = append(evs, failedPw(attacker, at(time.Duration(i)*time.Second), "root"))
	}
	// A new attack after the cooldown is a new incident.
	for i := range 6 {
		evs = append(evs, failedPw(attacker, at(30*time.Minute+time.Duration(i)*time.Second), "root"))
	}
	got := bySource(feed(t, e, evs...), "ssh_bruteforce")
	ids := map[string]int{}
	for _, in := range got {
		ids[in.ID]++
	}
	if len(ids) != 2 || ids["ssh_bruteforce:185.220.101.34:2026-03-22T14:31Z"] != 5 ||
		ids["ssh_bruteforce:185.220.101.34:2026-03-22T15:01Z"] != 1 {
		t.Fatalf("ids: %v", ids)
	}
}

func TestSSHBruteforceSpacesUpdatesAndFlushesTheLastOne(t *testing.T) {
	e := New(DefaultConfig()) // updates at most every 10 s
	var all []incident.Incident
	for i := range 30 {
		all = append(all, feed(t, e, failedPw(attacker, at(time.Duration(i)*time.Second), "root"))...)
	}
	if len(all) != 3 { // at 6 (new), 12 (critical), 22 (10 s later)
		t.Fatalf("got %d copies, want 3: %+v", len(all), all)
	}
	fl := e.Flush()
	if len(fl) != 1 || fl[0].Count != 30 || fl[0].ID != all[0].ID {
		t.Fatalf("flush: %+v", fl)
	}
	if len(e.Flush()) != 0 {
		t.Fatal("second flush repeated the incident")
	}
}

func TestSSHBruteforceThenLoginIsCritical(t *testing.T) {
	c := every()
	e := New(c)
	var evs []event.Event
	for i := range 6 {
		evs = append(evs, failedPw(attacker, at(time.Duration(i)*time.Second), "root"))
	}
	evs = append(evs, event.Event{TS: at(7 * time.Second), Kind: event.KindSSHAccepted, SrcIP: mustAddr(attacker),
		User: "root", Detail: logparse.DetailAcceptedPass})
	in := last(t, bySource(feed(t, e, evs...), "ssh_bruteforce"))
	if in.Severity != incident.Critical || in.Summary != "6 failed SSH logins for 1 user in 7 s, then a successful login as root" {
		t.Fatalf("got %s %q", in.Severity, in.Summary)
	}
}

func TestSSHBruteforceIgnoresPrivateAndAllowedAddresses(t *testing.T) {
	for _, ip := range []string{"127.0.0.5", "10.1.2.3", "192.168.1.9", "fe80::1", "fd00::5", "100.64.3.3", "192.0.2.7", "2001:db8::1", "0.0.0.0", "::"} {
		e := New(every())
		var evs []event.Event
		for i := range 20 {
			evs = append(evs, failedPw(ip, at(time.Duration(i)*time.Second), "root"))
		}
		if got := feed(t, e, evs...); len(got) != 0 {
			t.Fatalf("%s raised %d incidents", ip, len(got))
		}
		c := every()
		c.IncludePrivate = true
		if got := feed(t, New(c), evs...); len(got) == 0 {
			t.Fatalf("%s with IncludePrivate raised nothing", ip)
		}
	}
	c := every()
	c.Allow = []string{"185.220.101.0/24"}
	e := New(c)
	var evs []event.Event
	for i := range 20 {
		evs = append(evs, failedPw(attacker, at(time.Duration(i)*time.Second), "root"))
	}
	if got := feed(t, e, evs...); len(got) != 0 {
		t.Fatalf("allow-listed network raised %d incidents", len(got))
	}
}

func TestSSHBruteforceEscapesAttackerUsernames(t *testing.T) {
	e := New(every())
	var evs []event.Event
	for i := range 6 {
		evs = append(evs, failedPw(attacker, at(time.Duration(i)*time.Second), "<script>\x1b[31m"+string(rune('a'+i))))
	}
	in := last(t, feed(t, e, evs...))
	for _, u := range in.Evidence.Users {
		if len(u) > incident.MaxEvidenceString || u != incident.CleanText(u, incident.MaxEvidenceString) {
			t.Fatalf("user not clean: %q", u)
		}
	}
	b, _ := incident.Marshal(&in)
	if string(b) == "" || containsByte(b, '<') {
		t.Fatalf("markup not escaped in JSON: %s", b)
	}
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// sshdLines parses auth.log lines with the real sshd parser. Lines are
// "Mon DD HH:MM:SS host prog[pid]: message" (year 2026, UTC) or bare sshd
// -E messages, which take t0 as their time.
func sshdLines(t *testing.T, text string) []event.Event {
	t.Helper()
	p := logparse.NewAuth(logparse.Options{Year: 2026, Location: time.UTC, Now: func() time.Time { return t0 }})
	var evs []event.Event
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if ev, ok := p.Line(strings.TrimSpace(l)); ok {
			evs = append(evs, ev)
		}
	}
	return evs
}

// countAttempts runs events through one attempts table, as ssh_bruteforce
// and credential_stuffing do.
func countAttempts(evs []event.Event) int {
	var a attempts
	e := New(DefaultConfig())
	n := 0
	for i := range evs {
		if evs[i].Kind == event.KindSSHFailed && isAttempt(&evs[i]) && a.count(e, &evs[i]) {
			n++
		}
	}
	return n
}

func TestSSHAttemptsCountEachAttemptOncePerConnection(t *testing.T) {
	cases := []struct {
		name  string
		lines string
		want  int
	}{
		{"password server, unknown user: five lines, one attempt", `
Mar 22 14:31:04 web-1 sshd[4102]: Invalid user admin from 185.220.101.34 port 41001
Mar 22 14:31:04 web-1 sshd[4102]: pam_unix(sshd:auth): check pass; user unknown
Mar 22 14:31:04 web-1 sshd[4102]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34
Mar 22 14:31:06 web-1 sshd[4102]: Failed password for invalid user admin from 185.220.101.34 port 41001 ssh2
Mar 22 14:31:06 web-1 sshd[4102]: Connection closed by invalid user admin 185.220.101.34 port 41001 [preauth]`, 1},
		{"password server, unknown user tried twice on one connection", `
Mar 22 14:31:04 web-1 sshd[4102]: Invalid user admin from 185.220.101.34 port 41001
Mar 22 14:31:04 web-1 sshd[4102]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34
Mar 22 14:31:06 web-1 sshd[4102]: Failed password for invalid user admin from 185.220.101.34 port 41001 ssh2
Mar 22 14:31:06 web-1 sshd[4102]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34
Mar 22 14:31:08 web-1 sshd[4102]: Failed password for invalid user admin from 185.220.101.34 port 41001 ssh2
Mar 22 14:31:08 web-1 sshd[4102]: Received disconnect from 185.220.101.34 port 41001:11: Bye Bye [preauth]
Mar 22 14:31:08 web-1 sshd[4102]: Disconnected from invalid user admin 185.220.101.34 port 41001 [preauth]`, 2},
		{"root three times, then the close", `
Mar 22 14:31:02 web-1 sshd[4101]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34  user=root
Mar 22 14:31:04 web-1 sshd[4101]: Failed password for root from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:06 web-1 sshd[4101]: Failed password for root from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:08 web-1 sshd[4101]: Failed password for root from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:08 web-1 sshd[4101]: Connection closed by authenticating user root 185.220.101.34 port 41000 [preauth]`, 3},
		{"MaxAuthTries: six failures, then the limit lines add nothing", `
Mar 22 14:31:02 web-1 sshd-session[4101]: Failed password for root from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:03 web-1 sshd-session[4101]: Failed password for root from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:04 web-1 sshd-session[4101]: Failed password for root from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:05 web-1 sshd-session[4101]: Failed password for root from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:06 web-1 sshd-session[4101]: Failed password for root from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:07 web-1 sshd-session[4101]: Failed password for root from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:07 web-1 sshd-session[4101]: error: maximum authentication attempts exceeded for root from 185.220.101.34 port 41000 ssh2 [preauth]
Mar 22 14:31:07 web-1 sshd-session[4101]: Disconnecting authenticating user root 185.220.101.34 port 41000: Too many authentication failures [preauth]`, 6},
		{"pubkey-only server: the close is the attempt", `
Mar 22 14:31:02 web-1 sshd-session[5001]: Connection closed by authenticating user root 185.220.101.34 port 41000 [preauth]
Mar 22 14:31:03 web-1 sshd-session[5002]: Received disconnect from 185.220.101.34 port 41001:11: Bye Bye [preauth]
Mar 22 14:31:03 web-1 sshd-session[5002]: Disconnected from authenticating user root 185.220.101.34 port 41001 [preauth]
Mar 22 14:31:04 web-1 sshd-session[5003]: Invalid user oracle from 185.220.101.34 port 41002
Mar 22 14:31:04 web-1 sshd-session[5003]: Failed none for invalid user oracle from 185.220.101.34 port 41002 ssh2
Mar 22 14:31:04 web-1 sshd-session[5003]: Connection closed by invalid user oracle 185.220.101.34 port 41002 [preauth]`, 3},
		{"client gives up: one attempt however it says goodbye", `
Mar 22 14:31:02 web-1 sshd[5001]: Received disconnect from 185.220.101.34 port 41000:14: No supported authentication methods available [preauth]
Mar 22 14:31:02 web-1 sshd[5001]: Disconnected from authenticating user root 185.220.101.34 port 41000 [preauth]`, 1},
		{"keyboard-interactive: PAM's child pid is the same attempt", `
Mar 22 14:31:02 web-1 sshd[6000]: Invalid user bob from 185.220.101.34 port 41000
Mar 22 14:31:02 web-1 sshd[6001]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34
Mar 22 14:31:04 web-1 sshd[6000]: Failed keyboard-interactive/pam for invalid user bob from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:05 web-1 sshd[6011]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34  user=root
Mar 22 14:31:07 web-1 sshd[6010]: Failed keyboard-interactive/pam for root from 185.220.101.34 port 41001 ssh2`, 2},
		{"sshd -E file without pids: matched by port", `
Invalid user nosuchuser0 from 185.220.101.34 port 35947
Failed password for invalid user nosuchuser0 from 185.220.101.34 port 35947 ssh2
Connection closed by invalid user nosuchuser0 185.220.101.34 port 35947 [preauth]
Connection closed by authenticating user root 185.220.101.34 port 35948 [preauth]
Failed password for root from 185.220.101.34 port 35949 ssh2
Connection closed by authenticating user root 185.220.101.34 port 35949 [preauth]`, 3},
		{"interleaved connections", `
Mar 22 14:31:02 web-1 sshd[7001]: Invalid user a from 185.220.101.34 port 41001
Mar 22 14:31:02 web-1 sshd[7002]: Invalid user b from 185.220.101.34 port 41002
Mar 22 14:31:02 web-1 sshd[7003]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34  user=root
Mar 22 14:31:02 web-1 sshd[7002]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34
Mar 22 14:31:02 web-1 sshd[7001]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=185.220.101.34
Mar 22 14:31:04 web-1 sshd[7003]: Failed password for root from 185.220.101.34 port 41003 ssh2
Mar 22 14:31:04 web-1 sshd[7001]: Failed password for invalid user a from 185.220.101.34 port 41001 ssh2
Mar 22 14:31:04 web-1 sshd[7002]: Failed password for invalid user b from 185.220.101.34 port 41002 ssh2
Mar 22 14:31:04 web-1 sshd[7002]: Connection closed by invalid user b 185.220.101.34 port 41002 [preauth]
Mar 22 14:31:04 web-1 sshd[7003]: Connection closed by authenticating user root 185.220.101.34 port 41003 [preauth]
Mar 22 14:31:04 web-1 sshd[7001]: Connection closed by invalid user a 185.220.101.34 port 41001 [preauth]`, 3},
		{"AllowUsers refusal then two password lines", `
Mar 22 14:31:02 web-1 sshd[8001]: User deploy from 185.220.101.34 not allowed because not listed in AllowUsers
Mar 22 14:31:04 web-1 sshd[8001]: Failed password for invalid user deploy from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:06 web-1 sshd[8001]: Failed password for invalid user deploy from 185.220.101.34 port 41000 ssh2
Mar 22 14:31:06 web-1 sshd[8001]: Connection closed by invalid user deploy 185.220.101.34 port 41000 [preauth]`, 2},
		{"scanners and timeouts are no attempts", `
Mar 22 14:31:02 web-1 sshd[9001]: Connection closed by 185.220.101.34 port 41000 [preauth]
Mar 22 14:31:02 web-1 sshd[9002]: Unable to negotiate with 185.220.101.34 port 41001: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]
Mar 22 14:31:02 web-1 sshd[9003]: banner exchange: Connection from 185.220.101.34 port 41002: invalid format
Mar 22 14:31:02 web-1 sshd[9004]: error: kex_exchange_identification: Connection closed by remote host
Mar 22 14:31:02 web-1 sshd[9004]: Connection closed by 185.220.101.34 port 41003
Mar 22 14:31:02 web-1 sshd[9005]: Received disconnect from 185.220.101.34 port 41004:11: Bye [preauth]
Mar 22 14:31:02 web-1 sshd[9005]: Disconnected from 185.220.101.34 port 41004 [preauth]`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := sshdLines(t, c.lines)
			if got := countAttempts(evs); got != c.want {
				t.Fatalf("counted %d attempts, want %d; events: %+v", got, c.want, evs)
			}
		})
	}
}

// pubkeyOnlyBruteForce is what a pubkey-only server (PasswordAuthentication
// no) logs of a root brute force: no "Failed" line, only closes.
func pubkeyOnlyBruteForce(n int, every time.Duration) string {
	var b strings.Builder
	for i := range n {
		ts := at(time.Duration(i) * every).Format(time.Stamp)
		pid, port := 20000+i, 50000+i
		if i%2 == 0 {
			fmt.Fprintf(&b, "%s web-1 sshd-session[%d]: Connection closed by authenticating user root 185.220.101.34 port %d [preauth]\n", ts, pid, port)
		} else {
			fmt.Fprintf(&b, "%s web-1 sshd[%d]: Received disconnect from 185.220.101.34 port %d:11: Bye Bye [preauth]\n", ts, pid, port)
			fmt.Fprintf(&b, "%s web-1 sshd[%d]: Disconnected from authenticating user root 185.220.101.34 port %d [preauth]\n", ts, pid, port)
		}
	}
	return b.String()
}

func TestSSHBruteforceRaisesOnAPubkeyOnlyServer(t *testing.T) {
	for _, c := range []struct {
		name  string
		n     int
		every time.Duration
		want  string
	}{
		{"six closes in five seconds", 6, time.Second, "SSH brute force"},
		{"twelve closes in a minute", 12, 5 * time.Second, "SSH brute force"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := feed(t, New(every()), sshdLines(t, pubkeyOnlyBruteForce(c.n, c.every))...)
			bf := bySource(got, "ssh_bruteforce")
			if len(bf) == 0 {
				t.Fatalf("no ssh_bruteforce; got %+v", got)
			}
			if bf[0].Severity != incident.High {
				t.Fatalf("raised as %s", bf[0].Severity)
			}
			in := last(t, bf)
			if in.Title != c.want || in.Count != c.n || len(in.Evidence.Users) != 1 || in.Evidence.Users[0] != "root" {
				t.Fatalf("got %q count %d %v", in.Title, in.Count, in.Evidence.Users)
			}
			if p := bySource(got, "ssh_probe"); len(p) != 0 {
				t.Fatalf("a brute force raised ssh_probe: %+v", p)
			}
		})
	}
}

func TestSSHBruteforceIgnoresAFewPubkeyOnlyCloses(t *testing.T) {
	got := feed(t, New(every()), sshdLines(t, pubkeyOnlyBruteForce(5, 2*time.Second))...)
	if len(got) != 0 {
		t.Fatalf("5 closes raised %+v", got)
	}
}

func TestSSHBruteforceOnAPubkeyOnlyServerThenLoginIsCritical(t *testing.T) {
	evs := sshdLines(t, pubkeyOnlyBruteForce(6, time.Second)+
		"Mar 22 14:31:20 web-1 sshd-session[30000]: Accepted password for root from 185.220.101.34 port 51000 ssh2\n")
	in := last(t, bySource(feed(t, New(every()), evs...), "ssh_bruteforce"))
	if in.Severity != incident.Critical || !strings.HasSuffix(in.Summary, "then a successful login as root") {
		t.Fatalf("got %s %q", in.Severity, in.Summary)
	}
}

func TestSSHDetectorsIgnoreAUserWhoLogsInWithAKey(t *testing.T) {
	var b strings.Builder
	for i := range 8 {
		ts := at(time.Duration(i) * 20 * time.Second).Format(time.Stamp)
		pid, port := 40000+i, 52000+i
		fmt.Fprintf(&b, "%s web-1 sshd-session[%d]: Accepted publickey for alice from 91.198.174.192 port %d ssh2: ED25519 SHA256:2f6ZcVdNDYyTd1FU6IpbFPoSx2WdNf6fhIVvX8mAbQs\n", ts, pid, port)
		fmt.Fprintf(&b, "%s web-1 sshd-session[%d]: pam_unix(sshd:session): session opened for user alice(uid=1000) by alice(uid=0)\n", ts, pid)
		fmt.Fprintf(&b, "%s web-1 sshd-session[%d]: Received disconnect from 91.198.174.192 port %d:11: disconnected by user\n", ts, pid, port)
		fmt.Fprintf(&b, "%s web-1 sshd-session[%d]: Disconnected from user alice 91.198.174.192 port %d\n", ts, pid, port)
		fmt.Fprintf(&b, "%s web-1 sshd-session[%d]: pam_unix(sshd:session): session closed for user alice\n", ts, pid)
	}
	evs := sshdLines(t, b.String())
	if len(evs) == 0 {
		t.Fatal("the parser gave no event for the logins")
	}
	if got := feed(t, New(every()), evs...); len(got) != 0 {
		t.Fatalf("raised %+v", got)
	}
}

func TestCredentialStuffingCountsSSHAttemptsOncePerConnection(t *testing.T) {
	var b strings.Builder
	for i, u := range []string{"admin", "oracle", "postgres", "ubuntu", "test"} {
		ts := at(time.Duration(i) * 2 * time.Second).Format(time.Stamp)
		pid, port := 23000+i, 53000+i
		// A pubkey-only server: the user is named twice, tried once.
		fmt.Fprintf(&b, "%s web-1 sshd-session[%d]: Invalid user %s from 185.220.101.34 port %d\n", ts, pid, u, port)
		fmt.Fprintf(&b, "%s web-1 sshd-session[%d]: Connection closed by invalid user %s 185.220.101.34 port %d [preauth]\n", ts, pid, u, port)
		// A client that gives up before naming a user is an attempt
		// but no username.
		fmt.Fprintf(&b, "%s web-1 sshd-session[%d]: Received disconnect from 185.220.101.34 port %d:14: No supported authentication methods available [preauth]\n", ts, pid+100, port+100)
	}
	got := bySource(feed(t, New(every()), sshdLines(t, b.String())...), "credential_stuffing")
	if len(got) == 0 {
		t.Fatal("no credential_stuffing")
	}
	// Raised at the 5th username: 5 connections naming a user (each
	// once, not once per line) and 4 that gave up before naming one.
	in := got[0]
	if len(in.Evidence.Users) != 5 || slices.Contains(in.Evidence.Users, "") ||
		in.Summary != "9 SSH login attempts with 5 distinct usernames in 8 s" {
		t.Fatalf("got %q %q", in.Summary, in.Evidence.Users)
	}
	if in := last(t, got); in.Count != 10 || len(in.Evidence.Users) != 5 {
		t.Fatalf("last: count %d users %q", in.Count, in.Evidence.Users)
	}
}

// FuzzSSHAttempts feeds arbitrary sequences of sshd events (4 bytes each:
// detail, pid, port, user) to the attempt counter and checks that it never
// counts more attempts than lines, never counts a closing line on a
// connection that counted before, and keeps its table bounded.
func FuzzSSHAttempts(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 10, 1, 1, 0, 3, 1, 1, 1, 11, 1, 1, 1}) // invalid user, PAM, failed, close
	f.Add([]byte{11, 1, 1, 1, 11, 2, 2, 1, 11, 3, 3, 1})            // pubkey-only closes
	f.Add([]byte{0, 0, 0, 2, 3, 0, 5, 2, 10, 9, 0, 0, 6, 8, 7, 3})  // keyless and orphan marks
	details := []string{logparse.DetailInvalidUser, logparse.DetailUserNotAllowed, logparse.DetailRootRefused,
		logparse.DetailFailedPassword, logparse.DetailFailedPublickey, logparse.DetailFailedKbdInt,
		logparse.DetailFailedOther, logparse.DetailFailedNone, "", logparse.DetailMaxAuthTries,
		logparse.DetailPAMFailure, logparse.DetailPreauthClose, logparse.DetailAuthGaveUp,
		logparse.DetailUsernameChange, logparse.DetailPreauthTimeout, logparse.DetailKexFailure}
	closing := map[string]bool{logparse.DetailPreauthClose: true, logparse.DetailAuthGaveUp: true,
		logparse.DetailUsernameChange: true, logparse.DetailMaxAuthTries: true}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a attempts
		e := New(DefaultConfig())
		counted := map[[2]uint32]bool{} // connections that counted, by (pid, port)
		n, lines := 0, 0
		for i := 0; i+4 <= len(b); i += 4 {
			ev := sshFail(attacker, t0, []string{"", "root", "admin", "oracle"}[b[i+3]%4], uint16(b[i+2]%8), details[int(b[i])%len(details)])
			ev.PID = uint32(b[i+1] % 8)
			lines++
			key := [2]uint32{ev.PID, uint32(ev.SrcPort)}
			before := counted[key]
			if !isAttempt(&ev) {
				continue
			}
			if a.count(e, &ev) {
				n++
				if closing[ev.Detail] && before && ev.PID != 0 && ev.SrcPort != 0 {
					t.Fatalf("closing line %+v counted on a connection that counted before", ev)
				}
				counted[key] = true
			}
			if len(a.conns.c) > maxConns {
				t.Fatalf("%d connections kept, cap %d", len(a.conns.c), maxConns)
			}
		}
		if n > lines {
			t.Fatalf("%d attempts from %d lines", n, lines)
		}
	})
}
