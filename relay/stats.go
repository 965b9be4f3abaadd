package relay

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// stats counts incidents by source, severity, country and geo source in
// time buckets: 60 one-second buckets for the last minute and 1,440
// one-minute buckets for the last hour and day. An incident counts once, on
// its first copy, at its ts (clamped to now: a sensor clock ahead of ours
// does not push counts into the future). The 1 h and 24 h windows are exact
// to the minute.
//
// Every key is bounded, whatever sensors send, so /api/stats stays a few
// KiB (under 64 KiB in the worst case) and its memory stays fixed: a source
// is a known detector name (incident.KnownSource) or "other"; a geo source
// likewise; a severity is one of five (validated); a country is an ISO
// alpha-2 code (validated, so at most 676), at most maxCountries per bucket
// and per answer window with the rest under "other".
type stats struct {
	mu   sync.Mutex
	secs [60]bucket
	mins [1440]bucket
}

type bucket struct {
	at int64 // unix second or minute this bucket holds; 0 = unused
	c  counts
}

type counts struct {
	total     int
	source    map[string]int
	severity  map[string]int
	country   map[string]int
	geoSource map[string]int
}

// maxCountries caps the country keys of one bucket and of one window of
// the answer. ISO 3166 has 249 codes, so real traffic never reaches it;
// a sensor sending all 676 two-letter codes gets the rest counted as
// "other". Worst case memory: 1,500 buckets x 256 keys, about 20 MB.
const maxCountries = 256

func (c *counts) add(in *incident.Incident) {
	if c.source == nil {
		c.source, c.severity, c.country, c.geoSource = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	}
	c.total++
	src := in.Source
	if !incident.KnownSource(src) {
		src = incident.Other
	}
	c.source[src]++
	c.severity[string(in.Severity)]++
	if k := in.Country; k != "" {
		if _, ok := c.country[k]; !ok && len(c.country) >= maxCountries {
			k = incident.Other
		}
		c.country[k]++
	}
	if k := in.GeoSource; k != "" {
		if !incident.KnownGeoSource(k) {
			k = incident.Other
		}
		c.geoSource[k]++
	}
}

// capKeys folds the smallest counts of m into "other" until it has at
// most n keys (ties broken by name, so the answer is stable).
func capKeys(m map[string]int, n int) map[string]int {
	if len(m) <= n {
		return m
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if a == incident.Other || b == incident.Other {
			return cmpBool(b == incident.Other, a == incident.Other)
		}
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	out := make(map[string]int, n)
	for i, k := range keys {
		if i < n-1 && k != incident.Other {
			out[k] = m[k]
		} else {
			out[incident.Other] += m[k]
		}
	}
	return out
}

// cmpBool orders true before false.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

func (c *counts) merge(o *counts) {
	if o.total == 0 {
		return
	}
	if c.source == nil {
		c.source, c.severity, c.country, c.geoSource = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	}
	c.total += o.total
	for _, p := range [][2]map[string]int{{c.source, o.source}, {c.severity, o.severity}, {c.country, o.country}, {c.geoSource, o.geoSource}} {
		for k, v := range p[1] {
			p[0][k] += v
		}
	}
}

func newStats() *stats { return &stats{} }

func (s *stats) add(in *incident.Incident, now time.Time) {
	ts := in.TS
	if ts.After(now) {
		ts = now
	}
	if now.Sub(ts) >= 24*time.Hour {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(ts) < time.Minute {
		sec := ts.Unix()
		b := &s.secs[sec%int64(len(s.secs))]
		if b.at != sec {
			*b = bucket{at: sec}
		}
		b.c.add(in)
	}
	m := ts.Unix() / 60
	b := &s.mins[m%int64(len(s.mins))]
	if b.at != m {
		*b = bucket{at: m}
	}
	b.c.add(in)
}

// WindowStats is one window of the /api/stats answer.
type WindowStats struct {
	Total      int            `json:"total"`
	BySource   map[string]int `json:"by_source"`
	BySeverity map[string]int `json:"by_severity"`
	ByCountry  map[string]int `json:"by_country"`
}

// Stats is the /api/stats answer. GeoSources lists the distinct geo_source
// values of the last 24 h, sorted, so the map can show the attribution the
// GeoIP data's licence requires ("IP Geolocation by DB-IP").
type Stats struct {
	GeneratedAt time.Time              `json:"generated_at"`
	Windows     map[string]WindowStats `json:"windows"`
	GeoSources  []string               `json:"geo_sources"`
	Subscribers int                    `json:"subscribers"`
}

func (s *stats) snapshot(now time.Time) Stats {
	var m1, h1, d1 counts
	sec, min := now.Unix(), now.Unix()/60
	s.mu.Lock()
	for i := range s.secs {
		if b := &s.secs[i]; b.at > sec-60 && b.at <= sec {
			m1.merge(&b.c)
		}
	}
	for i := range s.mins {
		b := &s.mins[i]
		if b.at <= min-1440 || b.at > min {
			continue
		}
		if b.at > min-60 {
			h1.merge(&b.c)
		}
		d1.merge(&b.c)
	}
	s.mu.Unlock()
	win := func(c *counts) WindowStats {
		w := WindowStats{Total: c.total, BySource: c.source, BySeverity: c.severity, ByCountry: capKeys(c.country, maxCountries)}
		if w.BySource == nil {
			w.BySource, w.BySeverity, w.ByCountry = map[string]int{}, map[string]int{}, map[string]int{}
		}
		return w
	}
	geo := []string{}
	for k := range d1.geoSource {
		if k != incident.Other {
			geo = append(geo, k)
		}
	}
	slices.Sort(geo)
	return Stats{
		GeneratedAt: now.UTC(),
		Windows:     map[string]WindowStats{"1m": win(&m1), "1h": win(&h1), "24h": win(&d1)},
		GeoSources:  geo,
	}
}
