package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/logparse"
)

func TestCredentialStuffingRaisesOnTheFifthDistinctUsername(t *testing.T) {
	e := New(every())
	users := []string{"admin", "oracle", "postgres", "ubuntu", "test"}
	for i, u := range users {
		got := bySource(feed(t, e, sshFail(attacker, at(time.Duration(i)*4*time.Second), u, uint16(1000+i), logparse.DetailInvalidUser)), "credential_stuffing")
		if i < 4 && len(got) != 0 {
			t.Fatalf("raised at user %d", i+1)
		}
		if i == 4 {
			if len(got) != 1 || got[0].Severity != incident.High || len(got[0].Evidence.Users) != 5 {
				t.Fatalf("5th user: %+v", got)
			}
			if got[0].Summary != "5 SSH login attempts with 5 distinct usernames in 16 s" {
				t.Fatalf("summary %q", got[0].Summary)
			}
		}
	}
}

func TestCredentialStuffingIgnoresOneUserTriedOften(t *testing.T) {
	e := New(every())
	for i := range 30 {
		got := bySource(feed(t, e, failedPw(attacker, at(time.Duration(i)*time.Second), "root")), "credential_stuffing")
		if len(got) != 0 {
			t.Fatal("one username raised credential stuffing")
		}
	}
}

func TestCredentialStuffingRaisesForFailedWebLogins(t *testing.T) {
	e := New(every())
	var got []incident.Incident
	for i := range 6 {
		got = append(got, feed(t, e, httpReq(attacker, at(time.Duration(i)*time.Second), "POST", "/login", 401, "python-requests/2.31"))...)
	}
	cs := bySource(got, "credential_stuffing")
	if len(cs) != 1 || cs[0].Count != 6 || cs[0].Summary != "6 failed web logins on 1 login endpoint in 5 s" {
		t.Fatalf("got %+v", cs)
	}
}

func TestCredentialStuffingRaisesForRepeatedWordPressPosts(t *testing.T) {
	e := New(every())
	var got []incident.Incident
	for i := range 10 {
		// WordPress answers a failed login with 200.
		got = append(got, feed(t, e, httpReq(attacker, at(time.Duration(i)*time.Second), "POST", "/wp-login.php", 200, "Mozilla/5.0"))...)
	}
	if cs := bySource(got, "credential_stuffing"); len(cs) != 1 || cs[0].Count != 10 {
		t.Fatalf("got %+v", cs)
	}
}

func TestCredentialStuffingIgnoresSuccessfulAndGetLogins(t *testing.T) {
	e := New(every())
	for i := range 40 {
		ts := at(time.Duration(i) * time.Second)
		got := feed(t, e,
			httpReq(attacker, ts, "GET", "/login", 401, ""),
			httpReq(attacker, ts, "POST", "/login", 302, ""),
			httpReq(attacker, ts, "POST", fmt.Sprintf("/api/items/%d", i), 403, ""))
		if cs := bySource(got, "credential_stuffing"); len(cs) != 0 {
			t.Fatalf("raised %+v", cs)
		}
	}
}
