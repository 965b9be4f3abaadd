package live

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// Counts are incident totals over one window, as /api/stats reports them.
type Counts struct {
	Total      int            `json:"total"`
	BySource   map[string]int `json:"by_source"`
	BySeverity map[string]int `json:"by_severity"`
	ByCountry  map[string]int `json:"by_country"`
}

// Snapshot is the relay's /api/stats answer.
type Snapshot struct {
	Windows    map[string]Counts `json:"windows"`
	GeoSources []string          `json:"geo_sources"`
}

// MaxStatsBytes caps the /api/stats body the app will parse: the relay's
// answer is a few KiB (country counts dominate: at most ~250 keys per window).
const MaxStatsBytes = 1 << 20

// DecodeSnapshot parses /api/stats. It accepts both the windows object
// ({"windows":{"1m":{...},"1h":{...},"24h":{...}}}) and windows at the top
// level ({"1m":{...},...}); counts that are negative are refused.
func DecodeSnapshot(data []byte) (Snapshot, error) {
	var s Snapshot
	if len(data) > MaxStatsBytes {
		return s, fmt.Errorf("stats: %d bytes, over the %d byte limit", len(data), MaxStatsBytes)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return s, fmt.Errorf("stats: %w", err)
	}
	s.Windows = make(map[string]Counts)
	for k, v := range top {
		switch k {
		case "geo_sources":
			if err := json.Unmarshal(v, &s.GeoSources); err != nil {
				return s, fmt.Errorf("stats: geo_sources: %w", err)
			}
		case "windows":
			var w map[string]Counts
			if err := json.Unmarshal(v, &w); err != nil {
				return s, fmt.Errorf("stats: windows: %w", err)
			}
			for name, c := range w {
				s.Windows[name] = c
			}
		case "1m", "1h", "24h":
			var c Counts
			if err := json.Unmarshal(v, &c); err != nil {
				return s, fmt.Errorf("stats: %s: %w", k, err)
			}
			s.Windows[k] = c
		}
	}
	for name, c := range s.Windows {
		if c.Total < 0 {
			return s, fmt.Errorf("stats: %s: negative total", name)
		}
		for _, m := range []map[string]int{c.BySource, c.BySeverity, c.ByCountry} {
			for k, n := range m {
				if n < 0 {
					return s, fmt.Errorf("stats: %s: negative count for %q", name, k)
				}
			}
		}
	}
	return s, nil
}

// HasDBIP reports whether the relay says DB-IP data placed incidents.
func (s Snapshot) HasDBIP() bool {
	for _, g := range s.GeoSources {
		if g == "dbip" {
			return true
		}
	}
	return false
}

// stats combine the relay's 24 h snapshot with the incidents that arrived
// live since it was taken.
type stats struct {
	seed     Counts
	seedMin  int // the snapshot's 1 min total
	seedAt   time.Time
	seeded   bool
	live     Counts      // new incidents since the seed
	arrivals []time.Time // live arrivals in the last minute, oldest first
}

func newStats() stats {
	return stats{live: emptyCounts()}
}

func emptyCounts() Counts {
	return Counts{BySource: map[string]int{}, BySeverity: map[string]int{}, ByCountry: map[string]int{}}
}

// rateWindow is the span the per-minute rate counts over.
const rateWindow = time.Minute

func (s *stats) add(in *incident.Incident, now time.Time, live bool) {
	if !live {
		return // the initial feed and the offline cache are in the snapshot already
	}
	s.arrivals = append(s.arrivals, now)
	s.live.Total++
	s.live.BySource[in.Source]++
	s.live.BySeverity[string(in.Severity)]++
	if in.Country != "" {
		s.live.ByCountry[in.Country]++
	}
}

func (s *stats) expire(now time.Time) {
	i := 0
	for i < len(s.arrivals) && now.Sub(s.arrivals[i]) >= rateWindow {
		i++
	}
	s.arrivals = s.arrivals[i:]
}

// Seed replaces the statistics' base with a relay snapshot taken at now;
// live counting restarts from there.
func (m *Model) Seed(snap Snapshot, now time.Time) {
	s := &m.stats
	s.seed = snap.Windows["24h"]
	s.seedMin = snap.Windows["1m"].Total
	s.seedAt, s.seeded = now, true
	s.live = emptyCounts()
	if snap.HasDBIP() {
		m.DBIP = true
	}
	m.touch()
}

// KV is one row of a breakdown.
type KV struct {
	Key   string
	Count int
}

// StatsView is what the stats panel shows.
type StatsView struct {
	// PerMinute is the incident rate over the last minute: live arrivals,
	// plus the snapshot's last minute fading out as it ages.
	PerMinute int
	// Total is the 24 h total.
	Total      int
	BySeverity []KV // highest severity first, all five listed
	ByType     []KV // most frequent first
	Countries  []KV // top five
	Seeded     bool
}

// Stats computes the panel's figures at now.
func (m *Model) Stats(now time.Time) StatsView {
	s := &m.stats
	s.expire(now)
	v := StatsView{Seeded: s.seeded}
	v.PerMinute = len(s.arrivals)
	if s.seeded {
		if age := now.Sub(s.seedAt); age < rateWindow {
			v.PerMinute += int(math.Round(float64(s.seedMin) * float64(rateWindow-age) / float64(rateWindow)))
		}
	}
	v.Total = s.seed.Total + s.live.Total
	for _, sev := range []incident.Severity{incident.Critical, incident.High, incident.Medium, incident.Low, incident.Info} {
		v.BySeverity = append(v.BySeverity, KV{string(sev), s.seed.BySeverity[string(sev)] + s.live.BySeverity[string(sev)]})
	}
	v.ByType = merged(s.seed.BySource, s.live.BySource, 0)
	v.Countries = merged(s.seed.ByCountry, s.live.ByCountry, 5)
	return v
}

// merged adds two breakdowns and sorts them by count (then key), keeping
// the first n (all when n is 0).
func merged(a, b map[string]int, n int) []KV {
	sum := make(map[string]int, len(a)+len(b))
	for k, c := range a {
		sum[k] += c
	}
	for k, c := range b {
		sum[k] += c
	}
	out := make([]KV, 0, len(sum))
	for k, c := range sum {
		if c > 0 {
			out = append(out, KV{k, c})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}
