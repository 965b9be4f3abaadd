package live

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

func TestStatsSeedThenLive(t *testing.T) {
	snap, err := DecodeSnapshot([]byte(`{"windows":{
		"1m":{"total":6,"by_source":{"port_scan":6},"by_severity":{"low":6},"by_country":{"CN":6}},
		"24h":{"total":100,"by_source":{"port_scan":60,"ssh_bruteforce":40},"by_severity":{"low":60,"high":40},
		       "by_country":{"CN":50,"US":20,"DE":10,"RU":10,"BR":5,"NL":5}}},
		"geo_sources":["dbip"]}`))
	if err != nil {
		t.Fatal(err)
	}
	m := New(Config{})
	m.Seed(snap, t0)
	if !m.DBIP {
		t.Fatal("geo_sources dbip did not switch the attribution on")
	}
	v := m.Stats(t0)
	if v.PerMinute != 6 || v.Total != 100 {
		t.Fatalf("seeded view %+v", v)
	}
	if len(v.Countries) != 5 || v.Countries[0] != (KV{"CN", 50}) || v.Countries[4] != (KV{"BR", 5}) {
		t.Fatalf("top countries %v", v.Countries)
	}
	for i := 0; i < 3; i++ {
		in := inc(string(rune('a'+i)), incident.High, 10, 10, t0)
		in.Country = "NL"
		m.Apply(in, t0.Add(30*time.Second), live)
	}
	// A replayed feed item does not count.
	m.Apply(inc("old", incident.High, 10, 10, t0), t0.Add(30*time.Second), Options{})
	v = m.Stats(t0.Add(30 * time.Second))
	if v.PerMinute != 3+3 { // 3 live plus half of the seed's 6
		t.Fatalf("per minute %d, want 6", v.PerMinute)
	}
	if v.Total != 103 || v.BySeverity[1] != (KV{"high", 43}) || v.ByType[0] != (KV{"port_scan", 60}) {
		t.Fatalf("view %+v", v)
	}
	if v.Countries[4] != (KV{"NL", 8}) {
		t.Fatalf("countries %v", v.Countries)
	}
	if v = m.Stats(t0.Add(2 * time.Minute)); v.PerMinute != 0 {
		t.Fatalf("rate after two quiet minutes %d", v.PerMinute)
	}
	m.Seed(snap, t0.Add(3*time.Minute))
	if v = m.Stats(t0.Add(3 * time.Minute)); v.Total != 100 {
		t.Fatalf("re-seeding kept live counts: %d", v.Total)
	}
}

func TestDecodeSnapshotForms(t *testing.T) {
	s, err := DecodeSnapshot([]byte(`{"1m":{"total":1},"1h":{"total":2},"24h":{"total":3}}`))
	if err != nil || s.Windows["24h"].Total != 3 || s.HasDBIP() {
		t.Fatalf("top-level windows: %+v %v", s, err)
	}
	for _, bad := range []string{`[]`, `{"24h":{"total":-1}}`, `{"24h":{"by_country":{"CN":-5}}}`, `{"geo_sources":"dbip"}`, strings.Repeat(" ", MaxStatsBytes+1)} {
		if _, err := DecodeSnapshot([]byte(bad)); err == nil {
			t.Errorf("accepted %.40q", bad)
		}
	}
}

func TestNormalizeRelay(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"", "", ""},
		{"  https://relay.example.org/  ", "https://relay.example.org", ""},
		{"http://127.0.0.1:8080/attack/", "http://127.0.0.1:8080/attack", ""},
		{"javascript:alert(1)", "", "http:// or https://"},
		{"relay.example.org", "", "http:// or https://"},
		{"https://user:pw@relay.example.org", "", "user name"},
		{"https://relay.example.org/?x=1", "", "query"},
		{"https://relay.example.org/#x", "", "fragment"},
		{"https:///path", "", "no host"},
		{"https://a b", "", "not a URL"},
		{"https://relay.example.org/" + strings.Repeat("a", MaxRelayURL), "", "limit"},
	}
	for _, tt := range tests {
		got, err := NormalizeRelay(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("NormalizeRelay(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("NormalizeRelay(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
		}
	}
}

func seeds(f *testing.F, glob string) {
	files, _ := filepath.Glob(glob)
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	seeds(f, "testdata/stats-*.json")
	f.Fuzz(func(t *testing.T, s string) {
		snap, err := DecodeSnapshot([]byte(s))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		m := New(Config{})
		m.Seed(snap, t0)
		v := m.Stats(t0)
		if v.Total < 0 || v.PerMinute < 0 {
			t.Fatalf("negative figures %+v", v)
		}
	})
}

func FuzzNormalizeRelay(f *testing.F) {
	seeds(f, "testdata/relay-*.txt")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeRelay(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if got == "" {
			return
		}
		if !strings.HasPrefix(got, "http://") && !strings.HasPrefix(got, "https://") {
			t.Fatalf("%q normalized to %q", s, got)
		}
		if strings.ContainsAny(got, " \t\r\n\"'<>?#") {
			t.Fatalf("%q normalized to %q", s, got)
		}
		again, err := NormalizeRelay(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, got, again, err)
		}
	})
}

func TestStatsCountAnEscalatedIncidentOnceAtItsLatestSeverity(t *testing.T) {
	high := inc("a", incident.High, 10, 10, t0)
	high.Host, high.LastSeen = "web-1", t0
	crit := high
	crit.Severity, crit.LastSeen, crit.Count = incident.Critical, t0.Add(20*time.Second), 40
	check := func(t *testing.T, v StatsView) {
		t.Helper()
		if v.Total != 1 || v.BySeverity[0] != (KV{"critical", 1}) || v.BySeverity[1] != (KV{"high", 0}) ||
			len(v.ByType) != 1 || v.ByType[0].Count != 1 {
			t.Fatalf("stats %+v, want one critical incident", v)
		}
	}
	t.Run("both live", func(t *testing.T) {
		m := New(Config{})
		m.Apply(high, t0, live)
		m.Apply(crit, t0.Add(20*time.Second), live)
		check(t, m.Stats(t0.Add(30*time.Second)))
	})
	t.Run("first in the snapshot", func(t *testing.T) {
		m := New(Config{})
		m.Apply(high, t0, Options{}) // the feed
		snap, err := DecodeSnapshot([]byte(`{"windows":{"24h":{"total":1,"by_source":{"ssh_bruteforce":1},"by_severity":{"high":1},"by_country":{"DE":1}}}}`))
		if err != nil {
			t.Fatal(err)
		}
		m.Seed(snap, t0)
		m.Apply(crit, t0.Add(20*time.Second), live)
		check(t, m.Stats(t0.Add(30*time.Second)))
	})
	t.Run("update long after the marker left", func(t *testing.T) {
		m := New(Config{})
		m.Apply(high, t0, live)
		late := crit
		late.LastSeen = t0.Add(40 * time.Minute)
		m.Expire(t0.Add(30 * time.Minute))
		if got := m.Apply(late, t0.Add(40*time.Minute), live); got != Updated {
			t.Fatalf("Apply = %v, want Updated", got)
		}
		check(t, m.Stats(t0.Add(40*time.Minute)))
	})
	t.Run("filtered", func(t *testing.T) {
		m := New(Config{})
		m.SetFilter(Filter{Hosts: []string{"web-1"}})
		m.Apply(high, t0, live)
		m.Apply(crit, t0.Add(20*time.Second), live)
		v := m.Stats(t0.Add(30 * time.Second))
		if !v.Filtered {
			t.Fatal("not marked filtered")
		}
		check(t, v)
	})
}

func TestSeedOverCachedIncidentsDoesNotDoubleCount(t *testing.T) {
	// The offline shell: the cached list, then the stored snapshot that
	// already counts it.
	m := New(Config{})
	var cached []incident.Incident
	for i, sev := range []incident.Severity{incident.High, incident.Medium, incident.Low} {
		in := inc(string(rune('a'+i)), sev, 10, 10, t0)
		in.LastSeen = t0
		cached = append(cached, in)
		m.Apply(in, t0.Add(time.Hour), Options{Hidden: true})
	}
	snap, err := DecodeSnapshot([]byte(`{"windows":{"1m":{"total":3},"24h":{"total":3,"by_source":{"ssh_bruteforce":3},
		"by_severity":{"high":1,"medium":1,"low":1},"by_country":{"DE":3}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	stored := t0.Add(time.Minute) // when the snapshot was fetched last time
	m.Seed(snap, stored)
	now := t0.Add(time.Hour)
	if v := m.Stats(now); v.Total != 3 || v.PerMinute != 0 {
		t.Fatalf("seeded over the cache: total %d, rate %d; want 3 and no replayed minute", v.Total, v.PerMinute)
	}
	// Back online: the stream resends a cached incident (a duplicate) and
	// escalates another; neither adds.
	if got := m.Apply(cached[2], now, live); got != Duplicate {
		t.Fatalf("resent cached incident: %v", got)
	}
	up := cached[1]
	up.Severity, up.LastSeen = incident.Critical, now
	m.Apply(up, now, live)
	v := m.Stats(now)
	if v.Total != 3 || v.BySeverity[0] != (KV{"critical", 1}) || v.BySeverity[2] != (KV{"medium", 0}) {
		t.Fatalf("after reconnecting %+v", v)
	}
	// The fresh snapshot counts the escalation already: seeding it keeps
	// the figures.
	fresh, _ := DecodeSnapshot([]byte(`{"windows":{"24h":{"total":3,"by_source":{"ssh_bruteforce":3},
		"by_severity":{"high":1,"critical":1,"low":1}}}}`))
	m.Seed(fresh, now)
	if v := m.Stats(now); v.Total != 3 || v.BySeverity[0] != (KV{"critical", 1}) {
		t.Fatalf("after the fresh snapshot %+v", v)
	}
}

func TestStatsSurviveGoingOffline(t *testing.T) {
	m := New(Config{})
	snap, _ := DecodeSnapshot([]byte(`{"windows":{"24h":{"total":10,"by_severity":{"low":10}}}}`))
	m.Seed(snap, t0)
	m.Apply(inc("a", incident.High, 10, 10, t0), t0.Add(time.Second), live)
	// Nothing arrives for an hour (the relay is gone): the figures stay.
	later := t0.Add(time.Hour)
	m.Expire(later)
	if v := m.Stats(later); v.Total != 11 || v.BySeverity[1] != (KV{"high", 1}) || !v.Seeded {
		t.Fatalf("offline for an hour: %+v", v)
	}
}
