package detect

import (
	"slices"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// timeout is "fatal: Timeout before authentication for A port P" of sshd
// pid pid.
func timeout(ip string, ts time.Time, pid uint32, port uint16) event.Event {
	ev := sshFail(ip, ts, "", port, logparse.DetailPreauthTimeout)
	ev.PID = pid
	return ev
}

func TestSSHTimeoutStormRaisesOnARegreSSHionWave(t *testing.T) {
	e := New(every())
	var got []incident.Incident
	// The exploit holds many connections open; each is cut off at
	// LoginGraceTime (120 s) and timeouts come in waves.
	for wave := range 2 {
		for i := range 10 {
			ts := at(time.Duration(wave)*2*time.Minute + time.Duration(i)*100*time.Millisecond)
			got = append(got, feed(t, e, timeout(attacker, ts, uint32(3000+wave*10+i), uint16(40000+wave*10+i)))...)
		}
	}
	ts := bySource(got, "ssh_timeout_storm")
	if len(ts) == 0 {
		t.Fatalf("no ssh_timeout_storm: %+v", got)
	}
	first, in := ts[0], last(t, ts)
	if first.Count != 4 || first.Severity != incident.High || !slices.Equal(first.Tags, []string{"cve-2024-6387"}) ||
		first.Title != "regreSSHion exploitation pattern (CVE-2024-6387)" {
		t.Fatalf("first: %+v", first)
	}
	if in.ID != first.ID || in.Count != 20 || in.Severity != incident.High ||
		in.Summary != "20 SSH connections timed out before authentication in 2 min" {
		t.Fatalf("last: %+v", in)
	}
	if other := len(got) - len(ts); other != 0 {
		t.Fatalf("timeouts raised %d other incidents: %+v", other, got)
	}
}

func TestSSHTimeoutStormThresholds(t *testing.T) {
	cases := []struct {
		name  string
		evs   []event.Event
		raise bool
	}{
		{"a single timeout is a user who walked away", []event.Event{timeout(attacker, at(0), 1, 40000)}, false},
		{"three in a minute", []event.Event{
			timeout(attacker, at(0), 1, 40000), timeout(attacker, at(20*time.Second), 2, 40001),
			timeout(attacker, at(40*time.Second), 3, 40002)}, false},
		{"four in a minute", []event.Event{
			timeout(attacker, at(0), 1, 40000), timeout(attacker, at(20*time.Second), 2, 40001),
			timeout(attacker, at(40*time.Second), 3, 40002), timeout(attacker, at(50*time.Second), 4, 40003)}, true},
		{"one connection read from two sources counts once", []event.Event{
			timeout(attacker, at(0), 1, 40000), timeout(attacker, at(0), 1, 40000),
			timeout(attacker, at(0), 1, 40000), timeout(attacker, at(0), 1, 40000)}, false},
		{"one every two minutes, for an hour", func() []event.Event {
			var evs []event.Event
			for i := range 30 {
				evs = append(evs, timeout(attacker, at(time.Duration(i)*2*time.Minute), uint32(i+1), uint16(40000+i)))
			}
			return evs
		}(), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := bySource(feed(t, New(every()), c.evs...), "ssh_timeout_storm")
			if (len(got) > 0) != c.raise {
				t.Fatalf("raised %+v, want %v", got, c.raise)
			}
		})
	}
}
