package detect

import (
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"strings"
)

// bucket is a leaky bucket on event time (unix ns). Its level never goes
// above capacity+1, so it drains soon after an attack stops.
type bucket struct {
	level int32
	n     int32 // events added since the bucket was last empty
	since int64 // first event since the bucket was last empty
	last  int64 // leaking is applied up to here
}

// leakTo lets whole units leak out up to now.
func (b *bucket) leakTo(now, leak int64) {
	if b.level == 0 || now <= b.last {
		return
	}
	k := (now - b.last) / leak
	if k >= int64(b.level) {
		*b = bucket{}
		return
	}
	b.level -= int32(k)
	b.last += k * leak
}

// add leaks up to now, adds one unit and reports whether the level went
// above capacity.
func (b *bucket) add(now int64, c Bucket) bool { return b.addN(now, 1, c) }

// addN leaks up to now, adds n units (the level capped at capacity+1, so
// the bucket drains soon after an attack stops) and reports whether the
// level went above capacity.
func (b *bucket) addN(now int64, n int, c Bucket) bool {
	b.leakTo(now, int64(c.Leak))
	if b.level == 0 {
		b.since, b.last, b.n = now, now, 0
	}
	b.n++
	b.level = int32(min(int(b.level)+n, c.Capacity+1))
	return int(b.level) > c.Capacity
}

// empty reports whether the bucket has drained by now.
func (b *bucket) empty(now int64, c Bucket) bool {
	b.leakTo(now, int64(c.Leak))
	return b.level == 0
}

// drainedAt is the event time at which the bucket will be empty.
func (b *bucket) drainedAt(c Bucket) int64 {
	if b.level == 0 {
		return 0
	}
	return b.last + int64(b.level)*int64(c.Leak)
}

// distinct is a small set of value hashes, capped: values past the cap are
// not remembered (by then the detector has fired and escalated).
type distinct struct {
	h []uint64
}

// add reports whether h is new, remembering it while there is room.
func (d *distinct) add(h uint64, max int) bool {
	for _, v := range d.h {
		if v == h {
			return false
		}
	}
	if len(d.h) < max {
		d.h = append(d.h, h)
	}
	return true
}

func (d *distinct) len() int { return len(d.h) }

func (d *distinct) reset() { d.h = d.h[:0] }

// tracker holds per-address state for one detector, at most max keys.
type tracker[S any] struct {
	e      *Engine
	m      map[netip.Addr]*S
	max    int
	expiry func(*S) int64 // event time after which the state may go
}

func newTracker[S any](e *Engine, expiry func(*S) int64) *tracker[S] {
	return &tracker[S]{e: e, m: make(map[netip.Addr]*S), max: e.cfg.MaxKeys, expiry: expiry}
}

// peek returns a's state or nil.
func (t *tracker[S]) peek(a netip.Addr) *S { return t.m[a] }

// get returns a's state, creating it (and making room) when absent.
func (t *tracker[S]) get(a netip.Addr, now int64) *S {
	if s, ok := t.m[a]; ok {
		return s
	}
	if len(t.m) >= t.max {
		t.makeRoom(now)
	}
	s := new(S)
	t.m[a] = s
	return s
}

// makeRoom frees 1/64 of the table: expired keys first, and after
// scanning a sixteenth of the table without finding enough of them, any
// keys (map order is random, so this is random eviction). A flood of new
// addresses thus costs a bounded, amortised few map steps per address.
func (t *tracker[S]) makeRoom(now int64) {
	need := max(1, t.max/64)
	limit := max(need*4, t.max/16)
	freed, scanned := 0, 0
	for k, s := range t.m {
		scanned++
		expired := t.expiry(s) < now
		if expired || scanned > limit {
			delete(t.m, k)
			if !expired {
				t.e.evicted++
			}
			if freed++; freed >= need {
				break
			}
		}
	}
}

// sweep forgets every key whose state expired before now.
func (t *tracker[S]) sweep(now int64) {
	for k, s := range t.m {
		if t.expiry(s) < now {
			delete(t.m, k)
		}
	}
}

func (t *tracker[S]) keys() int { return len(t.m) }

// hash hashes attacker text for the distinct sets, keyed by the engine's
// secret key (random per engine, kept in its snapshots, so that hashes
// taken before a restart still match after it). The key stops an attacker
// from choosing strings that collide to dodge a distinct count. It is a
// 128-bit multiply-and-fold over 8-byte words (the wyhash construction):
// fast, allocation-free, and no collision can be aimed without the key.
func (e *Engine) hash(s string) uint64 {
	const p0, p1 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db
	h := e.hashKey ^ p0 ^ uint64(len(s))*p1
	for len(s) >= 8 {
		v := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = mum(h^p0, v^p1)
		s = s[8:]
	}
	var v uint64
	for i := len(s) - 1; i >= 0; i-- {
		v = v<<8 | uint64(s[i])
	}
	return mum(h^v^p0, uint64(len(s))^p1^e.hashKey)
}

// mum multiplies to 128 bits and folds the halves together.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// newHashKey returns a random key for Engine.hash.
func newHashKey() uint64 { return rand.Uint64() }

// lowerAll lower-cases patterns once, so matching needs no allocation.
func lowerAll(list []string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if s != "" {
			out = append(out, strings.ToLower(s))
		}
	}
	return out
}

// containsFold reports whether s contains the lower-case ASCII pattern p,
// ignoring ASCII case in s.
func containsFold(s, p string) bool {
	if len(p) == 0 {
		return true
	}
	first := p[0]
	for i := 0; i+len(p) <= len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != first {
			continue
		}
		j := 1
		for j < len(p) {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != p[j] {
				break
			}
			j++
		}
		if j == len(p) {
			return true
		}
	}
	return false
}
