package relay

import (
	"maps"
	"slices"
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

func (c *counts) add(in *incident.Incident) {
	if c.source == nil {
		c.source, c.severity, c.country, c.geoSource = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	}
	c.total++
	c.source[in.Source]++
	c.severity[string(in.Severity)]++
	if in.Country != "" {
		c.country[in.Country]++
	}
	if in.GeoSource != "" {
		c.geoSource[in.GeoSource]++
	}
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
		w := WindowStats{Total: c.total, BySource: c.source, BySeverity: c.severity, ByCountry: c.country}
		if w.BySource == nil {
			w.BySource, w.BySeverity, w.ByCountry = map[string]int{}, map[string]int{}, map[string]int{}
		}
		return w
	}
	geo := []string{}
	if d1.geoSource != nil {
		geo = slices.Sorted(maps.Keys(d1.geoSource))
	}
	return Stats{
		GeneratedAt: now.UTC(),
		Windows:     map[string]WindowStats{"1m": win(&m1), "1h": win(&h1), "24h": win(&d1)},
		GeoSources:  geo,
	}
}
