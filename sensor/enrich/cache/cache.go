// Package cache is a small bounded cache with a time to live, shared by the
// enrichment clients (ip-api, AbuseIPDB): answers are kept 24 hours so that
// a busy attacker costs one request a day, and the entry count is capped so
// that a scan from a million addresses cannot grow the sensor's memory.
package cache

import (
	"sync"
	"time"
)

// Cache maps keys to values for a fixed time. It is safe for concurrent use.
// When full, an expired entry is evicted if one is found among a few, else
// an arbitrary one (Go's map iteration order): O(1), bounded, and good enough
// for a cache whose misses only cost an extra request.
type Cache[K comparable, V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[K]entry[V]
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// New returns a cache of at most max entries living ttl each. now is the
// clock (nil: time.Now).
func New[K comparable, V any](max int, ttl time.Duration, now func() time.Time) *Cache[K, V] {
	if max <= 0 {
		max = 1
	}
	if now == nil {
		now = time.Now
	}
	return &Cache[K, V]{ttl: ttl, max: max, now: now, m: make(map[K]entry[V])}
}

// Get returns the value for k if present and not expired.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	if !c.now().Before(e.expires) {
		delete(c.m, k)
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put stores v for k.
func (c *Cache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		// Look at a few entries for an expired one; else evict the first.
		var victim K
		n := 0
		for key, e := range c.m {
			if n == 0 {
				victim = key
			}
			if !now.Before(e.expires) {
				victim = key
				break
			}
			if n++; n >= 8 {
				break
			}
		}
		delete(c.m, victim)
	}
	c.m[k] = entry[V]{v: v, expires: now.Add(c.ttl)}
}

// Len returns the number of entries, expired ones included.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
