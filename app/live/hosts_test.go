package live

import (
	"testing"
	"time"

	"github.com/attackmap/attackmap/app/geo"
	"github.com/attackmap/attackmap/incident"
	"github.com/paulmach/orb"
)

func TestHostsFromIncidents(t *testing.T) {
	m := New(Config{})
	at := func(id, host string, ts time.Time, target *incident.Location) incident.Incident {
		in := inc(id, incident.High, 10, 10, ts)
		in.Host, in.Target = host, target
		return in
	}
	fra := &incident.Location{Lat: 50.11, Lon: 8.68, Country: "DE"}
	m.Apply(at("a", "web-1", t0, fra), t0, live)
	m.Apply(at("b", "web-1", t0.Add(time.Minute), fra), t0.Add(time.Minute), live)
	m.Apply(at("c", "db", t0.Add(2*time.Minute), nil), t0.Add(2*time.Minute), live)
	m.Apply(at("d", "", t0, nil), t0, live) // no host: not a sensor of its own

	now := t0.Add(5 * time.Minute)
	hosts := m.Hosts(now)
	if len(hosts) != 2 || hosts[0].Name != "db" || hosts[1].Name != "web-1" {
		t.Fatalf("hosts %+v, want db and web-1 by name", hosts)
	}
	p := geo.Project(orb.Point{8.68, 50.11})
	web := hosts[1]
	if !web.HasLoc || web.X != round1(p[0]) || web.Y != round1(p[1]) || web.Count != 2 ||
		!web.LastSeen.Equal(t0.Add(time.Minute)) || web.Silent {
		t.Fatalf("web-1 %+v", web)
	}
	if db := hosts[0]; db.HasLoc || db.Count != 1 || !db.LastSeen.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("db %+v", db)
	}
}

func TestHostGoesSilentAfterTenMinutes(t *testing.T) {
	m := New(Config{})
	in := inc("a", incident.Low, 10, 10, t0)
	in.Host = "web-1"
	m.Apply(in, t0, live)
	tests := []struct {
		after  time.Duration
		silent bool
	}{
		{0, false},
		{SilentAfter - time.Second, false},
		{SilentAfter, true},
		{time.Hour, true},
	}
	for _, tc := range tests {
		t.Run(tc.after.String(), func(t *testing.T) {
			if got := m.Hosts(t0.Add(tc.after))[0].Silent; got != tc.silent {
				t.Fatalf("silent %v after %v", got, tc.after)
			}
		})
	}
	// A new incident wakes it up.
	up := in
	up.LastSeen, up.Count = t0.Add(time.Hour), 2
	m.Apply(up, t0.Add(time.Hour), live)
	if h := m.Hosts(t0.Add(time.Hour + time.Minute))[0]; h.Silent {
		t.Fatalf("still silent after an update: %+v", h)
	}
}

func TestHostLastSeenIsOnTheBrowsersClock(t *testing.T) {
	m := New(Config{})
	// The sensor's clock is two minutes behind the browser's: an incident
	// it stamps t0 arrives at t0+2m. Its host is not "silent for two
	// minutes" then.
	for i := range 5 {
		in := inc(string(rune('a'+i)), incident.Low, 10, 10, t0.Add(time.Duration(i)*time.Second))
		in.Host = "web-1"
		m.Apply(in, t0.Add(2*time.Minute+time.Duration(i)*time.Second), live)
	}
	h := m.Hosts(t0.Add(2*time.Minute + 4*time.Second))[0]
	if d := t0.Add(2*time.Minute + 4*time.Second).Sub(h.LastSeen); d < 0 || d > time.Second {
		t.Fatalf("last seen %v before now, want about 0", d)
	}
	// An incident stamped in the future does not keep a host fresh.
	f := inc("future", incident.Low, 10, 10, t0.Add(time.Hour))
	f.Host = "db"
	m.Apply(f, t0, Options{})
	if h := m.Hosts(t0)[0]; !h.LastSeen.Equal(t0) {
		t.Fatalf("future incident: last seen %v, want the arrival %v", h.LastSeen, t0)
	}
}

func TestHostCountFollowsTheHeldIncidents(t *testing.T) {
	m := New(Config{MaxIncidents: 8})
	for i := range 20 {
		in := inc(string(rune('a'+i)), incident.Low, 10, 10, t0)
		in.Host = "web-1"
		m.Apply(in, t0, live)
	}
	if h := m.Hosts(t0)[0]; h.Count != m.Len() || m.Len() > 8 {
		t.Fatalf("host count %d, held %d (cap 8)", h.Count, m.Len())
	}
}
