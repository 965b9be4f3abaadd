package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// kexScan is what sshd logs of ssh-audit-like scanners: each connection
// fails in key exchange or the banner, never reaching authentication.
const kexScan = `
Mar 22 14:31:02 web-1 sshd-session[9001]: Unable to negotiate with 45.155.205.9 port 41000: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1,diffie-hellman-group14-sha1 [preauth]
Mar 22 14:31:03 web-1 sshd-session[9002]: banner exchange: Connection from 45.155.205.9 port 41001: invalid format
Mar 22 14:31:04 web-1 sshd-session[9003]: error: kex_exchange_identification: Connection closed by remote host
Mar 22 14:31:04 web-1 sshd-session[9003]: Connection closed by 45.155.205.9 port 41002
Mar 22 14:31:05 web-1 sshd-session[9004]: Unable to negotiate with 45.155.205.9 port 41003: no matching host key type found. Their offer: ssh-rsa,ssh-dss [preauth]
Mar 22 14:31:09 web-1 sshd-session[9005]: Connection closed by 45.155.205.9 port 41004 [preauth]
`

func TestSSHProbeRaisesForAKeyExchangeScanner(t *testing.T) {
	evs := sshdLines(t, kexScan)
	if len(evs) != 5 {
		t.Fatalf("parsed %d events, want 5: %+v", len(evs), evs)
	}
	got := feed(t, New(every()), evs...)
	if bf := bySource(got, "ssh_bruteforce"); len(bf) != 0 {
		t.Fatalf("a scanner raised ssh_bruteforce: %+v", bf)
	}
	p := bySource(got, "ssh_probe")
	if len(p) == 0 {
		t.Fatalf("no ssh_probe: %+v", got)
	}
	first, in := p[0], last(t, p)
	if first.Count != 3 || !first.TS.Equal(at(2*time.Second)) {
		t.Fatalf("raised at count %d, %v; want the 3rd probe", first.Count, first.TS)
	}
	if in.ID != first.ID || in.Severity != incident.Low || in.Count != 5 || in.IP != "45.155.205.9" ||
		in.Title != "SSH key-exchange scanner" ||
		in.Summary != "5 SSH probes in 7 s: 4 failed key exchanges, 1 connection closed before login" {
		t.Fatalf("got %+v", in)
	}
}

func TestSSHProbeCountsEachConnectionOnce(t *testing.T) {
	e := New(every())
	var evs []event.Event
	for i := range 6 {
		// sshd -E and journald side by side: every line read twice.
		ev := sshFail(attacker, at(time.Duration(i)*time.Second), "", 41000, logparse.DetailKexFailure)
		ev.PID = 777
		evs = append(evs, ev)
	}
	if got := feed(t, e, evs...); len(got) != 0 {
		t.Fatalf("one connection raised %+v", got)
	}
}

func TestSSHProbeThresholds(t *testing.T) {
	probe := func(detail, user string) func(i int) event.Event {
		return func(i int) event.Event {
			ev := sshFail(attacker, at(time.Duration(i)*10*time.Second), user, uint16(41000+i), detail)
			ev.PID = uint32(100 + i)
			return ev
		}
	}
	cases := []struct {
		name  string
		n     int
		ev    func(i int) event.Event
		title string // "" for no incident
	}{
		{"two key-exchange failures are noise", 2, probe(logparse.DetailKexFailure, ""), ""},
		{"a third one in a minute is a scan", 3, probe(logparse.DetailKexFailure, ""), "SSH key-exchange scanner"},
		{"connections that never send a banner", 3, probe(logparse.DetailNoIdent, ""), "SSH scanner"},
		{"connect-and-close without a user", 3, probe(logparse.DetailPreauthClose, ""), "SSH scanner"},
		{"\"none\" method probes", 3, probe(logparse.DetailFailedNone, "root"), "SSH scanner"},
		{"closes that name a user are login attempts", 8, probe(logparse.DetailPreauthClose, "root"), ""},
		{"timeouts are not probes", 8, probe(logparse.DetailPreauthTimeout, ""), ""},
		{"one probe a minute never fills the bucket", 30, func(i int) event.Event {
			ev := probe(logparse.DetailKexFailure, "")(i)
			ev.TS = at(time.Duration(i) * time.Minute)
			return ev
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := New(every())
			var got []incident.Incident
			for i := range c.n {
				got = append(got, bySource(feed(t, e, c.ev(i)), "ssh_probe")...)
			}
			if c.title == "" {
				if len(got) != 0 {
					t.Fatalf("raised %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Title != c.title || got[0].Count != c.n {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestSSHProbeIgnoresTheClosesOfAPasswordBruteForce(t *testing.T) {
	var b strings.Builder
	for i := range 10 {
		ts := at(time.Duration(i) * 3 * time.Second).Format(time.Stamp)
		pid, port := 21000+i, 51000+i
		fmt.Fprintf(&b, "%s web-1 sshd[%d]: Failed password for root from 185.220.101.34 port %d ssh2\n", ts, pid, port)
		fmt.Fprintf(&b, "%s web-1 sshd[%d]: Received disconnect from 185.220.101.34 port %d:11: Bye Bye [preauth]\n", ts, pid, port)
		fmt.Fprintf(&b, "%s web-1 sshd[%d]: Disconnected from authenticating user root 185.220.101.34 port %d [preauth]\n", ts, pid, port)
	}
	got := feed(t, New(every()), sshdLines(t, b.String())...)
	if p := bySource(got, "ssh_probe"); len(p) != 0 {
		t.Fatalf("raised ssh_probe: %+v", p)
	}
	if bf := bySource(got, "ssh_bruteforce"); len(bf) == 0 || last(t, bf).Count != 10 {
		t.Fatalf("ssh_bruteforce: %+v", bf)
	}
}

func TestSSHProbeIgnoresTheNoneRequestsOfAUserWhoLogsIn(t *testing.T) {
	// LogLevel VERBOSE logs the "none" request every client starts with.
	var b strings.Builder
	for i := range 5 {
		ts := at(time.Duration(i) * 10 * time.Second).Format(time.Stamp)
		pid, port := 22000+i, 52000+i
		fmt.Fprintf(&b, "%s web-1 sshd[%d]: Failed none for alice from 91.198.174.192 port %d ssh2\n", ts, pid, port)
		fmt.Fprintf(&b, "%s web-1 sshd[%d]: Accepted publickey for alice from 91.198.174.192 port %d ssh2: ED25519 SHA256:2f6ZcVdNDYyTd1FU6IpbFPoSx2WdNf6fhIVvX8mAbQs\n", ts, pid, port)
	}
	if got := feed(t, New(every()), sshdLines(t, b.String())...); len(got) != 0 {
		t.Fatalf("raised %+v", got)
	}
}

func TestSSHProbeKeepsOneIncidentPerCooldown(t *testing.T) {
	e := New(every())
	var got []incident.Incident
	for i := range 40 {
		ev := sshFail(attacker, at(time.Duration(i)*5*time.Second), "", uint16(41000+i), logparse.DetailNoIdent)
		got = append(got, bySource(feed(t, e, ev), "ssh_probe")...)
	}
	ids := map[string]bool{}
	for _, in := range got {
		ids[in.ID] = true
		if in.Severity != incident.Low {
			t.Fatalf("severity %s, want low however long the scan", in.Severity)
		}
	}
	if len(ids) != 1 || last(t, got).Count != 40 {
		t.Fatalf("ids %v, last %+v", ids, last(t, got))
	}
}

func TestSSHProbeAndTimeoutStormSkipPrivateAddresses(t *testing.T) {
	for _, c := range []struct {
		source, detail string
	}{
		{"ssh_probe", logparse.DetailKexFailure},
		{"ssh_timeout_storm", logparse.DetailPreauthTimeout},
	} {
		for _, ip := range []string{"10.1.2.3", "192.168.1.9", "fd00::5", "127.0.0.1"} {
			t.Run(c.source+" "+ip, func(t *testing.T) {
				var evs []event.Event
				for i := range 10 {
					evs = append(evs, sshFail(ip, at(time.Duration(i)*time.Second), "", uint16(41000+i), c.detail))
				}
				if got := feed(t, New(every()), evs...); len(got) != 0 {
					t.Fatalf("raised %+v", got)
				}
				cfg := every()
				cfg.IncludePrivate = true
				if got := bySource(feed(t, New(cfg), evs...), c.source); len(got) == 0 {
					t.Fatal("IncludePrivate raised nothing")
				}
			})
		}
	}
}

// sshd's own refusals (MaxStartups drops, source penalties, tcp-wrappers)
// are connections of a prober too.
func TestSSHProbeCountsConnectionsSSHDRefused(t *testing.T) {
	e := New(every())
	var evs []event.Event
	for i, d := range []string{logparse.DetailConnDropped, logparse.DetailRefusedConnect, logparse.DetailConnDropped} {
		evs = append(evs, sshFail(attacker, at(time.Duration(i)*time.Second), "", uint16(41000+i), d))
	}
	got := bySource(feed(t, e, evs...), "ssh_probe")
	if len(got) == 0 {
		t.Fatal("three refused connections raised no ssh_probe")
	}
	if s := last(t, got).Summary; !strings.Contains(s, "refused by sshd") {
		t.Fatalf("summary %q does not say sshd refused them", s)
	}
}
