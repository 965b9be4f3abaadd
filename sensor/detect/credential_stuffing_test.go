package detect

import (
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
