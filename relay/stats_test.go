package relay

import (
	"fmt"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

var statsT0 = time.Date(2026, 3, 22, 14, 32, 0, 0, time.UTC)

func statsInc(host, id string, sev incident.Severity, ts, last time.Time) *incident.Incident {
	return &incident.Incident{ID: id, Host: host, Source: "ssh_bruteforce", Severity: sev, IP: "203.0.113.7",
		Country: "DE", TS: ts, LastSeen: last, Count: 5, GeoSource: "dbip"}
}

func TestStatsCountAnEscalatedIncidentOnceAtItsLatestSeverity(t *testing.T) {
	s := newStats()
	ts := statsT0
	s.add(statsInc("web-1", "a", incident.High, ts, ts), ts)
	up := statsInc("web-1", "a", incident.Critical, ts, ts.Add(20*time.Second))
	up.Count = 40
	s.add(up, ts.Add(20*time.Second))
	snap := s.snapshot(ts.Add(30 * time.Second))
	for _, w := range []string{"1m", "1h", "24h"} {
		t.Run(w, func(t *testing.T) {
			c := snap.Windows[w]
			if c.Total != 1 || c.BySeverity["critical"] != 1 || c.BySeverity["high"] != 0 ||
				c.BySource["ssh_bruteforce"] != 1 || c.ByCountry["DE"] != 1 {
				t.Fatalf("%s: %+v, want one critical incident", w, c)
			}
			if _, ok := c.BySeverity["high"]; ok {
				t.Fatalf("%s: an emptied key stays in the answer: %v", w, c.BySeverity)
			}
		})
	}
}

func TestStatsKeepUpdatesInTheBucketsOfTheFirstCopy(t *testing.T) {
	s := newStats()
	s.add(statsInc("web-1", "a", incident.Medium, statsT0, statsT0), statsT0)
	// Two minutes later the update arrives: the last minute no longer
	// holds the incident, the hour still does, at its new severity.
	later := statsT0.Add(2 * time.Minute)
	s.add(statsInc("web-1", "a", incident.High, statsT0, later), later)
	snap := s.snapshot(later)
	if c := snap.Windows["1m"]; c.Total != 0 {
		t.Fatalf("1m: %+v, want empty", c)
	}
	if c := snap.Windows["1h"]; c.Total != 1 || c.BySeverity["high"] != 1 || c.BySeverity["medium"] != 0 {
		t.Fatalf("1h: %+v", c)
	}
}

func TestStatsTellHostsApart(t *testing.T) {
	s := newStats()
	s.add(statsInc("web-1", "a", incident.High, statsT0, statsT0), statsT0)
	s.add(statsInc("web-2", "a", incident.Critical, statsT0, statsT0.Add(time.Second)), statsT0.Add(time.Second))
	c := s.snapshot(statsT0.Add(2 * time.Second)).Windows["24h"]
	if c.Total != 2 || c.BySeverity["high"] != 1 || c.BySeverity["critical"] != 1 {
		t.Fatalf("24h: %+v, want one high (web-1) and one critical (web-2)", c)
	}
}

func TestStatsForgetIncidentsThatLeftTheWindow(t *testing.T) {
	s := newStats()
	s.add(statsInc("web-1", "old", incident.High, statsT0, statsT0), statsT0)
	next := statsT0.Add(24*time.Hour + time.Minute)
	s.add(statsInc("web-1", "new", incident.Low, next, next), next)
	if _, ok := s.counted[s.key("web-1", "old")]; ok || len(s.counted) != 1 {
		t.Fatalf("%d incidents remembered a day later, want only the new one", len(s.counted))
	}
	c := s.snapshot(next).Windows["24h"]
	if c.Total != 1 || c.BySeverity["low"] != 1 {
		t.Fatalf("24h: %+v", c)
	}
}

func TestStatsMemoryStaysUnderItsCap(t *testing.T) {
	s := newStats()
	n := maxCounted + 100
	for i := range n {
		at := statsT0.Add(time.Duration(i) * time.Millisecond)
		s.add(statsInc("web-1", fmt.Sprint(i), incident.Low, at, at), at)
	}
	if len(s.counted) > maxCounted {
		t.Fatalf("%d incidents remembered, cap %d", len(s.counted), maxCounted)
	}
	// The newest are remembered: an update of the last one moves it.
	last := statsT0.Add(time.Duration(n-1) * time.Millisecond)
	s.add(statsInc("web-1", fmt.Sprint(n-1), incident.Critical, last, last.Add(time.Second)), last.Add(time.Second))
	c := s.snapshot(last.Add(time.Second)).Windows["24h"]
	if c.Total != n || c.BySeverity["critical"] != 1 || c.BySeverity["low"] != n-1 {
		t.Fatalf("24h: total %d, severities %v", c.Total, c.BySeverity)
	}
}

func TestStatsQueueStaysSmallUnderManyUpdates(t *testing.T) {
	s := newStats()
	in := statsInc("web-1", "a", incident.Low, statsT0, statsT0)
	for i := range 50_000 {
		in.LastSeen = statsT0.Add(time.Duration(i) * time.Millisecond)
		in.Count = i + 1
		s.add(in, in.LastSeen)
	}
	if len(s.counted) != 1 || len(s.recent) > 2*len(s.counted)+1024 {
		t.Fatalf("%d records, %d queue entries after 50,000 updates of one incident", len(s.counted), len(s.recent))
	}
	if c := s.snapshot(in.LastSeen).Windows["24h"]; c.Total != 1 {
		t.Fatalf("24h total %d, want 1", c.Total)
	}
}

// BenchmarkStatsAdd counts a stream where every other copy is an update
// of a recent incident, with the memory at its cap.
func BenchmarkStatsAdd(b *testing.B) {
	s := newStats()
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = fmt.Sprintf("ssh_bruteforce:203.0.113.%d:2026-03-22T14:%02dZ", i%256, i%60)
	}
	in := statsInc("web-1", "", incident.High, statsT0, statsT0)
	now := statsT0
	i := 0
	for b.Loop() {
		now = now.Add(time.Millisecond)
		if i%2 == 0 {
			in.ID = fmt.Sprint("new-", i)
		} else {
			in.ID = ids[i%len(ids)]
		}
		in.TS, in.LastSeen = now, now
		s.add(in, now)
		i++
	}
}

func TestStatsFollowAnEscalationThroughIngest(t *testing.T) {
	tr := startRelay(t, Config{})
	s := dialSensor(t, tr.url, tr.tok)
	s.send(inc("escalates", map[string]any{"severity": "high"}))
	s.send(inc("escalates", map[string]any{"severity": "critical", "last_seen": incTS(20 * time.Second), "count": 40}))
	var st Stats
	waitFor(t, "the escalation in /api/stats", func() bool {
		getJSON(t, tr.url+"/api/stats", &st)
		return st.Windows["24h"].BySeverity["critical"] == 1
	})
	for _, w := range []string{"1h", "24h"} {
		if c := st.Windows[w]; c.Total != 1 || c.BySeverity["critical"] != 1 || c.BySeverity["high"] != 0 {
			t.Errorf("%s: %+v, want one critical incident", w, c)
		}
	}
}
