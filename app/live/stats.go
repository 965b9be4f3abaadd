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

// stats combine the relay's 24 h snapshot with what arrived live since it
// was taken. Each incident counts once, at its latest severity, type and
// country, as the relay counts it: the entry remembers what it is
// counted as (entry.counted, cSource, cSev, cCountry), and a live update
// moves it between keys instead of adding it again. The snapshot already
// counts the incidents the model held when it was seeded, so those are
// moved, never added; only new incidents from the live stream add.
type stats struct {
	seed    Counts
	seedMin int // the snapshot's 1 min total
	seedAt  time.Time
	seeded  bool
	// delta is what changed since the seed: new live incidents add one,
	// a live update moves one between keys (so a key of delta may go
	// below zero: the incident it moved away was in the seed).
	delta    Counts
	arrivals []time.Time // live arrivals in the last minute, oldest first
}

func newStats() stats {
	return stats{delta: emptyCounts()}
}

func emptyCounts() Counts {
	return Counts{BySource: map[string]int{}, BySeverity: map[string]int{}, ByCountry: map[string]int{}}
}

// rateWindow is the span the per-minute rate counts over.
const rateWindow = time.Minute

// StatsWindow is the span of the totals: the relay's longest window. An
// incident raised (ts) longer ago is not counted, by the relay or here.
const StatsWindow = 24 * time.Hour

// inWindow reports whether the relay counts in at now (it counts by ts,
// clamped to its clock).
func inWindow(in *incident.Incident, now time.Time) bool {
	return now.Sub(in.TS) < StatsWindow
}

// add counts a new incident. From the initial feed and the offline cache
// (not live) it is in the relay's snapshot already, or will be in the
// next one: it is remembered as counted but adds nothing.
func (s *stats) add(e *entry, now time.Time, live bool) {
	e.counted = inWindow(&e.in, now)
	e.cSource, e.cSev, e.cCountry = e.in.Source, string(e.in.Severity), e.in.Country
	if !live || !e.counted {
		return
	}
	s.arrivals = append(s.arrivals, now)
	s.delta.Total++
	s.delta.BySource[e.cSource]++
	s.delta.BySeverity[e.cSev]++
	if e.cCountry != "" {
		s.delta.ByCountry[e.cCountry]++
	}
}

// update moves a counted incident to its latest severity, type and
// country. A copy that did not come live (a feed reloaded after a
// reconnect, the offline cache) is what the next snapshot counts: it is
// remembered at its new keys without moving counts, and the next Seed
// makes the totals exact.
func (s *stats) update(e *entry, live bool) {
	src, sev, cc := e.in.Source, string(e.in.Severity), e.in.Country
	if e.counted && live {
		move(s.delta.BySource, e.cSource, src)
		move(s.delta.BySeverity, e.cSev, sev)
		move(s.delta.ByCountry, e.cCountry, cc)
	}
	e.cSource, e.cSev, e.cCountry = src, sev, cc
}

// move takes one count from key from and gives it to key to ("" is no
// key: an incident without a country).
func move(m map[string]int, from, to string) {
	if from == to {
		return
	}
	if from != "" {
		m[from]--
	}
	if to != "" {
		m[to]++
	}
}

func (s *stats) expire(now time.Time) {
	i := 0
	for i < len(s.arrivals) && now.Sub(s.arrivals[i]) >= rateWindow {
		i++
	}
	s.arrivals = s.arrivals[i:]
}

// Seed replaces the statistics' base with a relay snapshot taken at at
// (the browser's clock when the answer came; for a snapshot stored for
// the offline shell, when it was fetched, so the per-minute rate does not
// replay an old minute). Live counting restarts from there: the snapshot
// counts every incident the model holds (at its current keys), so a later
// live update of one moves it and a cached incident is never added on
// top of the snapshot.
func (m *Model) Seed(snap Snapshot, at time.Time) {
	s := &m.stats
	s.seed = snap.Windows["24h"]
	s.seedMin = snap.Windows["1m"].Total
	s.seedAt, s.seeded = at, true
	s.delta = emptyCounts()
	for _, e := range m.entries {
		e.counted = inWindow(&e.in, at)
		e.cSource, e.cSev, e.cCountry = e.in.Source, string(e.in.Severity), e.in.Country
	}
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
	// Filtered is set when a filter is on: the figures then count the
	// incidents the map holds that the filter keeps (the relay's
	// snapshot cannot be filtered), out of Held incidents held, and
	// PerMinute counts the kept ones that arrived live in the last
	// minute.
	Filtered bool
	Held     int
}

// Stats computes the panel's figures at now. Each incident counts once,
// at its latest severity and type, with or without a filter.
func (m *Model) Stats(now time.Time) StatsView {
	s := &m.stats
	s.expire(now)
	if !m.matcher.all {
		return m.filteredStats(now)
	}
	v := StatsView{Seeded: s.seeded, Held: len(m.entries)}
	v.PerMinute = len(s.arrivals)
	if s.seeded {
		if age := now.Sub(s.seedAt); age >= 0 && age < rateWindow {
			v.PerMinute += int(math.Round(float64(s.seedMin) * float64(rateWindow-age) / float64(rateWindow)))
		}
	}
	v.Total = max(0, s.seed.Total+s.delta.Total)
	for _, sev := range severities {
		v.BySeverity = append(v.BySeverity, KV{string(sev), max(0, s.seed.BySeverity[string(sev)]+s.delta.BySeverity[string(sev)])})
	}
	v.ByType = merged(s.seed.BySource, s.delta.BySource, 0)
	v.Countries = merged(s.seed.ByCountry, s.delta.ByCountry, 5)
	return v
}

// severities lists the scale highest first, as the panel shows it.
var severities = [...]incident.Severity{incident.Critical, incident.High, incident.Medium, incident.Low, incident.Info}

func (m *Model) filteredStats(now time.Time) StatsView {
	v := StatsView{Seeded: m.stats.seeded, Filtered: true, Held: len(m.entries)}
	c := emptyCounts()
	for _, e := range m.entries {
		if !e.match || !inWindow(&e.in, now) {
			continue
		}
		c.Total++
		c.BySource[e.in.Source]++
		c.BySeverity[string(e.in.Severity)]++
		if e.in.Country != "" {
			c.ByCountry[e.in.Country]++
		}
		if !e.arrived.IsZero() && now.Sub(e.arrived) < rateWindow {
			v.PerMinute++
		}
	}
	v.Total = c.Total
	for _, sev := range severities {
		v.BySeverity = append(v.BySeverity, KV{string(sev), c.BySeverity[string(sev)]})
	}
	v.ByType = merged(c.BySource, nil, 0)
	v.Countries = merged(c.ByCountry, nil, 5)
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
