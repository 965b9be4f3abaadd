package relay

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// seen is the de-duplication index that outlives the ring: for every
// history day still within retention, the 64-bit hashes of the incident
// versions stored that day, where a version is (host, id, last_seen, count,
// severity, action). A copy whose version is in the index is a redelivery
// from any age (a sensor replaying a day after losing its cursor) and is
// acknowledged and dropped; an update (same id, anything of the version
// changed) is not in it and is stored and broadcast.
//
// It is exact up to 64-bit hash collisions: with n versions held, the chance
// that a new one collides with any of them is about n/2^64 (5.4e-13 for the
// 10 million of a full week at the default history budgets), and the seed
// is random per process, so a sensor cannot craft ids that collide. It is
// rebuilt from the history files at start, so it covers exactly what the
// history holds.
//
// Memory: today's day is a map (about 40 bytes a version in Go); days
// before today are sorted slices, 8 bytes a version, searched by bisection.
// Its size is bounded by the retention and the daily history budgets
// (HistoryCapTotal / ~1 KiB per incident per day). Not safe for concurrent
// use: the store's mutex guards it.
type seen struct {
	seed   maphash.Seed
	days   map[string]*seenDay // by UTC date, YYYY-MM-DD
	newest string              // the day with a map
	n      int
}

type seenDay struct {
	set    map[uint64]struct{} // the newest day, and any day while loading
	sorted []uint64            // a compacted older day
}

func newSeen() *seen {
	return &seen{seed: maphash.MakeSeed(), days: map[string]*seenDay{}}
}

// hash returns the version hash of in (after stamping and masking).
func (x *seen) hash(in *incident.Incident) uint64 {
	var h maphash.Hash
	h.SetSeed(x.seed)
	var b [8]byte
	str := func(s string) {
		binary.LittleEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.WriteString(s)
	}
	num := func(v uint64) {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	str(in.Host)
	str(in.ID)
	num(uint64(in.LastSeen.UnixNano()))
	num(uint64(in.Count))
	str(string(in.Severity))
	str(in.Action)
	return h.Sum64()
}

// has reports whether version hash v was stored on any day held.
func (x *seen) has(v uint64) bool {
	for _, d := range x.days {
		if d.set != nil {
			if _, ok := d.set[v]; ok {
				return true
			}
			continue
		}
		if _, ok := slices.BinarySearch(d.sorted, v); ok {
			return true
		}
	}
	return false
}

// add records v under day.
func (x *seen) add(day string, v uint64) {
	d := x.days[day]
	if d == nil {
		d = &seenDay{set: map[uint64]struct{}{}}
		x.days[day] = d
	}
	if d.set == nil { // an older day written again (a clock stepped back)
		d.set = make(map[uint64]struct{}, len(d.sorted)+1)
		for _, s := range d.sorted {
			d.set[s] = struct{}{}
		}
		d.sorted = nil
	}
	if _, ok := d.set[v]; !ok {
		d.set[v] = struct{}{}
		x.n++
	}
	if day > x.newest {
		x.newest = day
		x.compact()
	}
}

// remove forgets v (a version whose history line may not have reached the
// disk: its resend must be stored, not dropped).
func (x *seen) remove(v uint64) {
	for _, d := range x.days {
		if d.set == nil {
			continue
		}
		if _, ok := d.set[v]; ok {
			delete(d.set, v)
			x.n--
		}
	}
}

// compact turns every day but the newest into a sorted slice.
func (x *seen) compact() {
	for day, d := range x.days {
		if day == x.newest || d.set == nil {
			continue
		}
		s := make([]uint64, 0, len(d.set))
		for v := range d.set {
			s = append(s, v)
		}
		slices.Sort(s)
		d.sorted, d.set = s, nil
	}
}

// expire drops the days before the first day kept, a UTC date.
func (x *seen) expire(keepFrom time.Time) {
	k := keepFrom.UTC().Format(time.DateOnly)
	for day, d := range x.days {
		if day < k {
			x.n -= len(d.set) + len(d.sorted)
			delete(x.days, day)
		}
	}
}

// len returns how many versions the index holds.
func (x *seen) len() int { return x.n }
