package relay

import (
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// stats counts incidents by source, severity, country and geo source in
// time buckets: 60 one-second buckets for the last minute and 1,440
// one-minute buckets for the last hour and day. An incident (host, id)
// counts once, in the buckets of its first copy's ts (clamped to now: a
// sensor clock ahead of ours does not push counts into the future), at
// its latest severity, source, country and geo source: an update moves
// it between keys in every bucket it is counted in, and never adds it
// again. The 1 h and 24 h windows are exact to the minute.
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

	// counted remembers where and as what each incident of the window is
	// counted, by a keyed hash of host and id (the seed is random per
	// process, so no sensor can aim two ids at one key; by chance two
	// of the 131,072 ids collide about once in 10^9 answers). recent
	// orders the keys by their latest copy, oldest first; an entry whose
	// gen is not the record's is stale (the incident was updated since).
	counted map[uint64]countedAs
	recent  []recentKey
	seed    maphash.Seed
}

// maxCounted caps the incidents stats remember for updates: about 17 MB
// at the cap (a record and its queue entries are about 130 bytes). It
// holds a day at 1.5 new incidents a second, or the last 20 minutes of a
// flood of 100 a second; an incident updated in that time stays
// remembered, since every copy makes it the newest. An update of an
// incident forgotten under a flood counts it once more: the price of a
// fixed memory.
const maxCounted = 1 << 17

// countedAs is where an incident is counted (its second bucket, 0 when it
// was not in the last minute, and its minute bucket) and under which keys.
type countedAs struct {
	sec  int64
	min  int64
	gen  uint32
	keys statKeys
}

type recentKey struct {
	key uint64
	gen uint32
}

// statKeys are the keys an incident counts under, bounded as the type
// comment says.
type statKeys struct{ source, severity, country, geo string }

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

// keysFor returns the keys in counts under in this bucket.
func (c *counts) keysFor(in *incident.Incident) statKeys {
	k := statKeys{source: in.Source, severity: string(in.Severity), country: in.Country, geo: in.GeoSource}
	if !incident.KnownSource(k.source) {
		k.source = incident.Other
	}
	if k.country != "" {
		if _, ok := c.country[k.country]; !ok && len(c.country) >= maxCountries {
			k.country = incident.Other
		}
	}
	if k.geo != "" && !incident.KnownGeoSource(k.geo) {
		k.geo = incident.Other
	}
	return k
}

func (c *counts) add(k statKeys) {
	if c.source == nil {
		c.source, c.severity, c.country, c.geoSource = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	}
	c.total++
	c.source[k.source]++
	c.severity[k.severity]++
	if k.country != "" {
		c.country[k.country]++
	}
	if k.geo != "" {
		c.geoSource[k.geo]++
	}
}

// move recounts one incident of c from keys from to keys to.
func (c *counts) move(from, to statKeys) {
	if c.total == 0 {
		return
	}
	for _, p := range [...]struct {
		m        map[string]int
		old, new string
	}{{c.source, from.source, to.source}, {c.severity, from.severity, to.severity}, {c.country, from.country, to.country}, {c.geoSource, from.geo, to.geo}} {
		if p.old == p.new {
			continue
		}
		if p.old != "" {
			if p.m[p.old]--; p.m[p.old] <= 0 {
				delete(p.m, p.old)
			}
		}
		if p.new != "" {
			p.m[p.new]++
		}
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

func newStats() *stats {
	return &stats{counted: make(map[uint64]countedAs), seed: maphash.MakeSeed()}
}

// add counts an accepted incident: a new one, or an update of one it
// counted, which it moves to the update's keys.
func (s *stats) add(in *incident.Incident, now time.Time) {
	ts := in.TS
	if ts.After(now) {
		ts = now
	}
	if now.Sub(ts) >= 24*time.Hour {
		return
	}
	key := s.key(in.Host, in.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget(now)
	if c, ok := s.counted[key]; ok {
		mb := &s.mins[c.min%int64(len(s.mins))]
		if mb.at == c.min {
			// An unchanged country keeps its key: it is in the bucket, or
			// the bucket was full and it is still counted under "other".
			k := mb.c.keysFor(in)
			mb.c.move(c.keys, k)
			if sb := &s.secs[c.sec%int64(len(s.secs))]; c.sec != 0 && sb.at == c.sec {
				sb.c.move(c.keys, k)
			}
			c.keys = k
			c.gen++
			s.counted[key] = c
			s.recent = append(s.recent, recentKey{key, c.gen})
			return
		}
		delete(s.counted, key) // its minute left the window: counted anew below
	}
	m := ts.Unix() / 60
	mb := &s.mins[m%int64(len(s.mins))]
	if mb.at != m {
		*mb = bucket{at: m}
	}
	c := countedAs{min: m, keys: mb.c.keysFor(in)}
	mb.c.add(c.keys)
	if now.Sub(ts) < time.Minute {
		sec := ts.Unix()
		sb := &s.secs[sec%int64(len(s.secs))]
		if sb.at != sec {
			*sb = bucket{at: sec}
		}
		sb.c.add(c.keys)
		c.sec = sec
	}
	s.counted[key] = c
	s.recent = append(s.recent, recentKey{key, c.gen})
}

// key is the keyed hash counted remembers an incident by.
func (s *stats) key(host, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(host)
	h.WriteByte(0)
	h.WriteString(id)
	return h.Sum64()
}

// forget drops the memory of incidents whose minute left the 24 h window,
// and of the ones updated longest ago until there is room for one more
// under maxCounted. Called with s.mu held.
func (s *stats) forget(now time.Time) {
	oldest := now.Unix()/60 - int64(len(s.mins))
	i := 0
	for ; i < len(s.recent); i++ {
		r := s.recent[i]
		c, ok := s.counted[r.key]
		if !ok || c.gen != r.gen {
			continue // stale: a later copy is further back
		}
		if c.min > oldest && len(s.counted) < maxCounted {
			break
		}
		delete(s.counted, r.key)
	}
	s.recent = s.recent[i:]
	// Updates leave stale entries behind the front: compact when they
	// are half the queue, so it stays within twice the records.
	if len(s.recent) > 2*len(s.counted)+1024 {
		live := s.recent[:0]
		for _, r := range s.recent {
			if c, ok := s.counted[r.key]; ok && c.gen == r.gen {
				live = append(live, r)
			}
		}
		clear(s.recent[len(live):])
		s.recent = live
	}
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
