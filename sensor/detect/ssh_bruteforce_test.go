package detect

import (
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
