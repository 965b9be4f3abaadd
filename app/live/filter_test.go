package live

import (
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

func TestFilterURLRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    Filter
		raw  string // the encoded query
	}{
		{"zero", Filter{}, ""},
		{"severities", Filter{Severities: []incident.Severity{incident.Critical, incident.High}}, "sev=critical%2Chigh"},
		{"everything", Filter{
			Severities: []incident.Severity{incident.Low}, Types: []string{"ssh_bruteforce", "web_scan"},
			Hosts: []string{"web-1", "db.example.org"}, Countries: []string{"CN", "RU"},
			Query: "203.0.113.0/24", BlockedOnly: true,
		}, "blocked=1&cc=CN%2CRU&host=web-1%2Cdb.example.org&q=203.0.113.0%2F24&sev=low&type=ssh_bruteforce%2Cweb_scan"},
		{"text search", Filter{Query: "wp-login.php"}, "q=wp-login.php"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"view": {"1,2,3"}}
			tc.f.Encode(q)
			if q.Get("view") != "1,2,3" {
				t.Fatal("Encode touched another part's key")
			}
			q.Del("view")
			if got := q.Encode(); got != tc.raw {
				t.Fatalf("Encode = %q, want %q", got, tc.raw)
			}
			back, err := ParseFilter(q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(norm(back), norm(tc.f)) {
				t.Fatalf("ParseFilter(Encode(f)) = %+v, want %+v", back, tc.f)
			}
		})
	}
}

// names returns n distinct detector-like names.
func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("t%d", i)
	}
	return out
}

// norm makes nil and empty lists compare equal.
func norm(f Filter) Filter {
	for _, l := range []*[]string{&f.Types, &f.Hosts, &f.Countries} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if len(f.Severities) == 0 {
		f.Severities = nil
	}
	return f
}

func TestEncodeRemovesFieldsThatWereCleared(t *testing.T) {
	q := url.Values{}
	Filter{Severities: []incident.Severity{incident.High}, Query: "x", BlockedOnly: true, Countries: []string{"de"}}.Encode(q)
	if q.Get("cc") != "DE" {
		t.Fatalf("country encoded as %q, want DE", q.Get("cc"))
	}
	Filter{}.Encode(q)
	if len(q) != 0 {
		t.Fatalf("a cleared filter left %v in the URL", q)
	}
}

func TestParseFilterKeepsTheValidRestAndSaysWhatItIgnored(t *testing.T) {
	tests := []struct {
		name, raw string
		want      Filter
		errHas    string
	}{
		{"unknown severity", "sev=high,hgih", Filter{Severities: []incident.Severity{incident.High}}, `unknown severity "hgih"`},
		{"case and spaces", "sev=+CRITICAL+,%20high&cc=cn", Filter{Severities: []incident.Severity{incident.Critical, incident.High}, Countries: []string{"CN"}}, ""},
		{"repeats and repeated keys", "sev=high&sev=high,low&type=web_scan,web_scan", Filter{Severities: []incident.Severity{incident.High, incident.Low}, Types: []string{"web_scan"}}, ""},
		{"bad country", "cc=CHN,de", Filter{Countries: []string{"DE"}}, "two-letter"},
		{"markup in a host", "host=web-1,%3Cscript%3E", Filter{Hosts: []string{"web-1"}}, "not a host name"},
		{"detector names are lower case", "type=Web_Scan", Filter{}, "not a detector name"},
		{"control characters in the search", "q=a%0Ab", Filter{}, "control characters"},
		{"search too long", "q=" + strings.Repeat("a", MaxQuery+1), Filter{}, "byte limit"},
		{"blocked words", "blocked=true", Filter{BlockedOnly: true}, ""},
		{"blocked nonsense", "blocked=maybe", Filter{}, "not 1 or 0"},
		{"too many values", "type=" + strings.Join(names(MaxFilterValues+1), ","), Filter{Types: names(MaxFilterValues)}, "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseFilter(q)
			if tc.errHas == "" && err != nil || tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)) {
				t.Fatalf("error %v, want one containing %q", err, tc.errHas)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			if !reflect.DeepEqual(norm(got), norm(tc.want)) {
				t.Fatalf("ParseFilter = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	base := func() incident.Incident {
		in := inc("a", incident.High, 10, 10, t0)
		in.Host, in.IP, in.Country = "web-1", "203.0.113.7", "CN"
		in.Tags = []string{"cve-2021-41773"}
		in.Evidence = &incident.Evidence{Users: []string{"Administrator"}, Paths: []string{"/wp-login.php"},
			UserAgents: []string{"Mozilla/5.0 (compatible; Nmap Scripting Engine)"}}
		return in
	}
	v6 := base()
	v6.IP = "2001:db8::7"
	blocked := base()
	blocked.Action = "blocked 1h"
	dry := base()
	dry.Action = "would block (dry run)"
	tests := []struct {
		name string
		f    Filter
		in   incident.Incident
		want bool
	}{
		{"zero keeps all", Filter{}, base(), true},
		{"severity kept", Filter{Severities: []incident.Severity{incident.Critical, incident.High}}, base(), true},
		{"severity dropped", Filter{Severities: []incident.Severity{incident.Critical}}, base(), false},
		{"type kept", Filter{Types: []string{"ssh_bruteforce"}}, base(), true},
		{"type dropped", Filter{Types: []string{"web_scan"}}, base(), false},
		{"host kept", Filter{Hosts: []string{"db", "web-1"}}, base(), true},
		{"host dropped", Filter{Hosts: []string{"web-2"}}, base(), false},
		{"country any case", Filter{Countries: []string{"cn"}}, base(), true},
		{"country dropped", Filter{Countries: []string{"RU"}}, base(), false},
		{"address equal", Filter{Query: "203.0.113.7"}, base(), true},
		{"address differs", Filter{Query: "203.0.113.70"}, base(), false},
		{"mapped address", Filter{Query: "::ffff:203.0.113.7"}, base(), true},
		{"cidr contains", Filter{Query: "203.0.113.0/24"}, base(), true},
		{"cidr not masked", Filter{Query: "203.0.113.99/24"}, base(), true},
		{"cidr excludes", Filter{Query: "198.51.100.0/24"}, base(), false},
		{"ipv6 cidr", Filter{Query: "2001:db8::/32"}, v6, true},
		{"ipv4 cidr never holds ipv6", Filter{Query: "0.0.0.0/0"}, v6, false},
		{"text in a user name", Filter{Query: "administrator"}, base(), true},
		{"text in a path", Filter{Query: "WP-LOGIN"}, base(), true},
		{"text in a user agent", Filter{Query: "nmap"}, base(), true},
		{"text in a tag", Filter{Query: "CVE-2021"}, base(), true},
		{"text in the address", Filter{Query: "113.7"}, base(), true},
		{"text nowhere", Filter{Query: "sqlmap"}, base(), false},
		{"blocked only keeps blocked", Filter{BlockedOnly: true}, blocked, true},
		{"blocked only drops a dry run", Filter{BlockedOnly: true}, dry, false},
		{"blocked only drops logged", Filter{BlockedOnly: true}, base(), false},
		{"fields combine", Filter{Severities: []incident.Severity{incident.High}, Countries: []string{"RU"}}, base(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Match(&tc.in); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

// filterModel holds a critical incident in Berlin and a low one in Sydney,
// both with arcs to Frankfurt, plus a medium one that already expired.
func filterModel(t *testing.T) *Model {
	t.Helper()
	m := New(Config{})
	add := func(id string, sev incident.Severity, lat, lon float64, at time.Time) {
		in := inc(id, sev, lat, lon, at)
		in.Target = &incident.Location{Lat: 50.11, Lon: 8.68}
		if m.Apply(in, at, live) != Added {
			t.Fatalf("%s not added", id)
		}
	}
	add("old", incident.Medium, 40.7, -74, t0.Add(-time.Hour))
	add("crit", incident.Critical, 52.52, 13.40, t0)
	add("low", incident.Low, -33.87, 151.21, t0.Add(time.Second))
	m.Expire(t0.Add(2 * time.Second))
	return m
}

func sidebarIDs(m *Model) string {
	var ids []string
	for _, in := range m.Sidebar() {
		ids = append(ids, in.ID)
	}
	return strings.Join(ids, ",")
}

func usedArcs(m *Model) int {
	n := 0
	for _, a := range m.Arcs {
		if a.Used {
			n++
		}
	}
	return n
}

func TestSetFilterRebuildsMarkersArcsSidebarAndStats(t *testing.T) {
	m := filterModel(t)
	now := t0.Add(2 * time.Second)
	if usedMarkers(m) != 2 || usedArcs(m) != 2 || sidebarIDs(m) != "low,crit,old" {
		t.Fatalf("before: %d markers, %d arcs, sidebar %s", usedMarkers(m), usedArcs(m), sidebarIDs(m))
	}
	slot := slices.IndexFunc(m.Markers, func(mk Marker) bool { return mk.Latest == "crit" })
	crit := m.Markers[slot]
	gen := m.Gen()
	m.SetFilter(Filter{Severities: []incident.Severity{incident.Critical, incident.Medium}})
	if m.Gen() == gen {
		t.Fatal("SetFilter did not mark the model changed")
	}
	if usedMarkers(m) != 1 || !m.Markers[slot].Used || m.Markers[slot].X != crit.X || usedArcs(m) != 1 {
		t.Fatalf("filtered: %d markers (slot %d %+v), %d arcs; want the critical one in its slot", usedMarkers(m), slot, m.Markers[slot], usedArcs(m))
	}
	// The expired medium incident is listed, not placed.
	if got := sidebarIDs(m); got != "crit,old" {
		t.Fatalf("sidebar %s, want crit,old", got)
	}
	v := m.Stats(now)
	if !v.Filtered || v.Held != 3 || v.Total != 2 || v.BySeverity[0] != (KV{"critical", 1}) || v.BySeverity[2] != (KV{"medium", 1}) || v.BySeverity[3].Count != 0 {
		t.Fatalf("filtered stats %+v", v)
	}
	if v.PerMinute != 1 { // crit arrived live in the last minute, old an hour ago
		t.Fatalf("filtered rate %d, want 1", v.PerMinute)
	}
	if got := m.Filter(); len(got.Severities) != 2 {
		t.Fatalf("Filter() = %+v", got)
	}

	m.SetFilter(Filter{})
	if usedMarkers(m) != 2 || usedArcs(m) != 2 || sidebarIDs(m) != "low,crit,old" {
		t.Fatalf("cleared: %d markers, %d arcs, sidebar %s", usedMarkers(m), usedArcs(m), sidebarIDs(m))
	}
	if m.Markers[slot].X != crit.X || m.Markers[slot].Latest != "crit" {
		t.Fatal("the marker that stayed moved slots")
	}
	for _, mk := range m.Markers {
		if mk.Used && mk.Latest == "low" && !mk.Still {
			t.Fatal("a marker put back by a filter change pulses as if new")
		}
	}
	if v := m.Stats(now); v.Filtered || v.Total != 3 {
		t.Fatalf("unfiltered stats %+v", v)
	}
}

func TestNewIncidentsFollowTheFilter(t *testing.T) {
	m := New(Config{})
	m.SetFilter(Filter{Countries: []string{"CN"}})
	de := inc("de", incident.Critical, 52.52, 13.40, t0)
	cn := inc("cn", incident.Low, 39.9, 116.4, t0)
	cn.Country = "CN"
	m.Apply(de, t0, live)
	m.Apply(cn, t0, live)
	if usedMarkers(m) != 1 || m.Markers[0].Latest != "cn" || sidebarIDs(m) != "cn" {
		t.Fatalf("%d markers, sidebar %s; want only the CN incident", usedMarkers(m), sidebarIDs(m))
	}
	if m.AnnounceGen != 0 {
		t.Fatal("announced an incident the filter hides")
	}
	if v := m.Stats(t0); v.Total != 1 || v.Countries[0] != (KV{"CN", 1}) {
		t.Fatalf("stats %+v", v)
	}
	// Unfiltered, the hidden one appears: it was held all along.
	m.SetFilter(Filter{})
	if usedMarkers(m) != 2 || sidebarIDs(m) != "cn,de" {
		t.Fatalf("%d markers, sidebar %s", usedMarkers(m), sidebarIDs(m))
	}
}

func TestAnUpdateTheFilterNoLongerKeepsLeavesTheMapAndTheList(t *testing.T) {
	m := New(Config{SidebarRows: 2})
	m.SetFilter(Filter{Severities: []incident.Severity{incident.High}})
	m.Apply(inc("a", incident.High, 10, 10, t0), t0, live)
	m.Apply(inc("b", incident.High, 20, 20, t0), t0, live)
	m.Apply(inc("c", incident.High, 30, 30, t0), t0, live)
	if sidebarIDs(m) != "c,b" {
		t.Fatalf("sidebar %s", sidebarIDs(m))
	}
	down := inc("c", incident.Medium, 30, 30, t0)
	down.LastSeen = t0.Add(time.Minute)
	if got := m.Apply(down, t0.Add(time.Minute), live); got != Updated {
		t.Fatalf("Apply = %v", got)
	}
	if usedMarkers(m) != 2 || sidebarIDs(m) != "b,a" {
		t.Fatalf("%d markers, sidebar %s; want c gone and a listed again", usedMarkers(m), sidebarIDs(m))
	}
	// And back up: it returns, newest first.
	up := inc("c", incident.High, 30, 30, t0)
	up.LastSeen = t0.Add(2 * time.Minute)
	m.Apply(up, t0.Add(2*time.Minute), live)
	if usedMarkers(m) != 3 || sidebarIDs(m) != "c,b" {
		t.Fatalf("%d markers, sidebar %s", usedMarkers(m), sidebarIDs(m))
	}
}

func TestBlockedOnlyListsTheBlocked(t *testing.T) {
	m := New(Config{})
	a := inc("a", incident.High, 10, 10, t0)
	m.Apply(a, t0, live)
	m.Apply(inc("b", incident.High, 20, 20, t0), t0, live)
	m.SetFilter(Filter{BlockedOnly: true})
	if sidebarIDs(m) != "" || usedMarkers(m) != 0 {
		t.Fatalf("sidebar %q, %d markers before any block", sidebarIDs(m), usedMarkers(m))
	}
	// The responder's decision comes as an update of the same incident.
	a.Action, a.LastSeen = "blocked 1h", t0.Add(time.Second)
	m.Apply(a, t0.Add(time.Second), live)
	if sidebarIDs(m) != "a" || usedMarkers(m) != 1 {
		t.Fatalf("sidebar %q, %d markers after the block", sidebarIDs(m), usedMarkers(m))
	}
}

func FuzzParseFilter(f *testing.F) {
	// More seeds in testdata/fuzz/FuzzParseFilter.
	f.Add("sev=critical,high&type=ssh_bruteforce&host=web-1&cc=cn&q=203.0.113.0/24&blocked=1")
	f.Add("q=wp-login")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		got, err := ParseFilter(q)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
		if len(got.Query) > MaxQuery || len(got.Types) > MaxFilterValues || len(got.Hosts) > MaxFilterValues ||
			len(got.Countries) > MaxFilterValues || len(got.Severities) > 5 {
			t.Fatalf("over the caps: %+v", got)
		}
		// What ParseFilter accepts, Encode writes and ParseFilter reads
		// back the same, without complaint.
		enc := url.Values{}
		got.Encode(enc)
		again, err := ParseFilter(enc)
		if err != nil {
			t.Fatalf("re-parsing %q: %v", enc.Encode(), err)
		}
		if !reflect.DeepEqual(norm(again), norm(got)) {
			t.Fatalf("round trip %+v -> %q -> %+v", got, enc.Encode(), again)
		}
		in := inc("x", incident.High, 1, 1, t0)
		got.Match(&in)
	})
}

func BenchmarkSetFilter(b *testing.B) {
	m := New(Config{})
	cfg := m.Config()
	sevs := Severities()
	for i := range cfg.MaxIncidents {
		in := inc(fmt.Sprint(i), sevs[i%len(sevs)], float64(i%170-85), float64(i%360-180), t0)
		in.Target = &incident.Location{Lat: 50, Lon: 8}
		in.Country = [...]string{"CN", "US", "RU", "DE"}[i%4]
		m.Apply(in, t0, live)
	}
	filters := []Filter{
		{Severities: []incident.Severity{incident.Critical, incident.High}},
		{Countries: []string{"CN"}, Query: "203.0.113.0/24"},
		{},
	}
	i := 0
	for b.Loop() {
		m.SetFilter(filters[i%len(filters)])
		i++
	}
	if m.Len() != cfg.MaxIncidents || !slices.ContainsFunc(m.Markers, func(mk Marker) bool { return mk.Used }) {
		b.Fatalf("%d held", m.Len())
	}
}
