package detect

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/attackmap/attackmap/sensor/event"
)

// bruteForces returns n attackers' 6 failures each, a second apart (the
// 6th fires the fast bucket), the attackers interleaved.
func bruteForces(n int, key string, start time.Time) []event.Event {
	var evs []event.Event
	for k := range 6 {
		for i := range n {
			ip := netip.AddrFrom4([4]byte{45, 10, byte(i / 250), byte(1 + i%250)})
			ev := failedPw(ip.String(), start.Add(time.Duration(k)*time.Second+time.Duration(i)*time.Millisecond), "root")
			ev.Origin.Key = key
			evs = append(evs, ev)
		}
	}
	return evs
}

func withOrigin(ev event.Event, key string) event.Event {
	ev.Origin.Key = key
	return ev
}

func TestFutureLineDoesNotWipeOtherAttackers(t *testing.T) {
	future := withOrigin(failedPw("198.51.100.77", at(time.Hour), "admin"), "/var/log/auth.log")
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"replay", nil},
		{"live", []Option{WithHostClock(func() time.Time { return at(3 * time.Minute) })}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(DefaultConfig(), tc.opts...)
			evs := bruteForces(30, "/var/log/auth.log", t0)
			// The lone line an hour ahead lands in the middle of the attacks.
			evs = append(evs[:90:90], append([]event.Event{future}, evs[90:]...)...)
			var ins = feed(t, e, evs...)
			ins = append(ins, e.Flush()...)
			ips := map[string]bool{}
			for _, in := range bySource(ins, "ssh_bruteforce") {
				ips[in.IP] = true
			}
			if len(ips) != 30 {
				t.Errorf("%d of 30 attackers raised an incident", len(ips))
			}
			if a := e.Stats().Ahead; a != 1 {
				t.Errorf("Stats.Ahead = %d, want 1", a)
			}
		})
	}
}

func TestLiveClampsLinesAheadOfTheHostClock(t *testing.T) {
	host := at(0)
	e := New(every(), WithHostClock(func() time.Time { return host }))
	var ins []seenCopy
	for i := range 6 {
		host = at(time.Duration(i) * time.Second)
		ts := host
		if i == 2 {
			ts = at(2 * time.Hour) // the writer's clock jumped for one line
		}
		for _, in := range e.Handle(failedPw(attacker, ts, "root")) {
			ins = append(ins, seenCopy{in.Count, in.LastSeen})
		}
	}
	if len(ins) == 0 {
		t.Fatal("no incident: the clamped line broke the bucket")
	}
	if got := ins[0]; got.count != 6 || got.last.After(at(time.Minute)) {
		t.Errorf("incident count %d last_seen %v; want 6 within the minute", got.count, got.last)
	}
	if a := e.Stats().Ahead; a != 1 {
		t.Errorf("Stats.Ahead = %d, want 1", a)
	}
}

type seenCopy struct {
	count int
	last  time.Time
}

func TestReplayGapKeepsTheLinesOwnTime(t *testing.T) {
	// Quiet for two hours, then a brute force: the first line after the
	// gap is held until the second confirms the jump, and then handled
	// at its own time (so first_seen is right and nothing is counted).
	e := New(every())
	feed(t, e, withOrigin(failedPw("198.51.100.1", at(0), "x"), "a"))
	var ins []string
	for i := range 6 {
		for _, in := range feed(t, e, withOrigin(failedPw(attacker, at(2*time.Hour+time.Duration(i)*time.Second), "root"), "a")) {
			ins = append(ins, fmt.Sprintf("%d %s", in.Count, in.FirstSeen.Format(time.TimeOnly)))
		}
	}
	if len(ins) == 0 || ins[0] != "6 16:31:02" {
		t.Errorf("incidents %q, want the first at count 6 first seen 16:31:02", ins)
	}
	if a := e.Stats().Ahead; a != 0 {
		t.Errorf("Stats.Ahead = %d, want 0 (a gap is no future line)", a)
	}
}

func TestSourceAheadDoesNotSweepAnotherSourcesState(t *testing.T) {
	// Live: the access log is on time, the auth log arrives 30 minutes
	// late (a syslog relay catching up). Sweeping at the access log's
	// time would forget the auth log's buckets between its lines.
	host := at(30 * time.Minute)
	e := New(DefaultConfig(), WithHostClock(func() time.Time { return host }))
	var n int
	for i := range 6 {
		host = at(30*time.Minute + time.Duration(i)*2*time.Minute)
		for j := range 3 { // more than a sweep interval of the other source's time
			ev := withOrigin(httpReq("203.0.113.50", host.Add(time.Duration(j-2)*time.Minute), "GET", "/", 200, "curl"), "/var/log/nginx/access.log")
			e.Handle(ev)
		}
		n += len(bySource(e.Handle(withOrigin(failedPw(attacker, at(time.Duration(i)*time.Second), "root"), "/var/log/auth.log")), "ssh_bruteforce"))
	}
	if n == 0 {
		t.Error("the late source's brute force was swept away by the other source's clock")
	}
	if s := e.Stats().Sources; s != 2 {
		t.Errorf("Stats.Sources = %d, want 2", s)
	}
}
