package relay

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// subLimits counts SSE subscribers in total and per client address.
type subLimits struct {
	max, perAddr int

	mu     sync.Mutex
	total  int
	byAddr map[netip.Addr]int
}

func newSubLimits(max, perAddr int) *subLimits {
	return &subLimits{max: max, perAddr: perAddr, byAddr: map[netip.Addr]int{}}
}

// acquire reserves a slot for addr. It returns 0 on success, or the HTTP
// status to answer: 503 when the relay is full, 429 when addr holds its
// share.
func (l *subLimits) acquire(addr netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return http.StatusServiceUnavailable
	}
	if l.perAddr > 0 && l.byAddr[addr] >= l.perAddr {
		return http.StatusTooManyRequests
	}
	l.total++
	l.byAddr[addr]++
	return 0
}

func (l *subLimits) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.byAddr[addr] - 1; n > 0 {
		l.byAddr[addr] = n
	} else {
		delete(l.byAddr, addr)
	}
}

// clientAddr returns the address the per-address limit counts: the
// connection's peer, or the last address of the configured proxy header.
// IPv6 addresses are grouped by /64, the block one host usually holds.
func clientAddr(r *http.Request, header string) netip.Addr {
	var a netip.Addr
	if header != "" {
		v := r.Header.Values(header)
		if len(v) > 0 {
			parts := strings.Split(v[len(v)-1], ",")
			a, _ = netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1]))
		}
	}
	if !a.IsValid() {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			a = ap.Addr()
		} else if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			a, _ = netip.ParseAddr(h)
		}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a
}

// rateLimits is a token bucket per sensor token (by name): rate incidents
// per second, up to burst. A batch waits until its incidents are covered.
type rateLimits struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rateBucket
}

type rateBucket struct {
	tokens float64
	last   time.Time
}

func newRateLimits(rate float64, burst int, now func() time.Time) *rateLimits {
	return &rateLimits{rate: rate, burst: float64(burst), now: now, buckets: map[string]*rateBucket{}}
}

// reserve takes n tokens from name's bucket (going into debt if needed) and
// returns how long the caller must wait before using them.
func (l *rateLimits) reserve(name string, n int) time.Duration {
	if l.rate <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[name]
	if b == nil {
		b = &rateBucket{tokens: l.burst, last: now}
		l.buckets[name] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / l.rate * float64(time.Second))
}

// wait reserves n tokens and sleeps until they are covered or ctx ends.
func (l *rateLimits) wait(ctx context.Context, name string, n int) error {
	d := l.reserve(name, n)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
