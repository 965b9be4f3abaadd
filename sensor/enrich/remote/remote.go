// Package remote holds what the clients of outside lookup services
// (AbuseIPDB, ip-api) share: the defaults of their common options, the
// HTTP client, the bounded answer cache keyed by address, and the quiet
// period after a failure or a spent rate limit (package cooldown).
package remote

import (
	"iter"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/attackmap/attackmap/sensor/enrich/cache"
	"github.com/attackmap/attackmap/sensor/enrich/cooldown"
)

// Options are the settings every client has; each client's own Options
// say what they mean to its users. A zero value means its default: no
// HTTPClient a client with Timeout, Timeout 3 s, CacheSize 10,000
// addresses kept CacheTTL 24 h, ErrorPause 30 s, no Logger a discarding
// one, no Now time.Now.
type Options struct {
	Name       string // prefixes the client's log lines ("abuseipdb")
	HTTPClient *http.Client
	Timeout    time.Duration
	CacheSize  int
	CacheTTL   time.Duration
	ErrorPause time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
}

// Base is the shared part of a client whose answers are V. It is safe for
// concurrent use.
type Base[V any] struct {
	// Timeout and Now are Options' with their defaults filled in.
	Timeout time.Duration
	Now     func() time.Time

	HTTP  *http.Client
	Log   *slog.Logger
	Cache *cache.Cache[netip.Addr, V]
	Quiet *cooldown.Cooldown
}

// New fills in the defaults of o and returns the shared part of a client.
func New[V any](o Options) Base[V] {
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 10_000
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 24 * time.Hour
	}
	if o.ErrorPause <= 0 {
		o.ErrorPause = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	b := Base[V]{Timeout: o.Timeout, Now: o.Now, HTTP: o.HTTPClient, Log: o.Logger}
	if b.HTTP == nil {
		b.HTTP = &http.Client{Timeout: o.Timeout}
	}
	if b.Log == nil {
		b.Log = slog.New(slog.DiscardHandler)
	}
	b.Cache = cache.New[netip.Addr, V](o.CacheSize, o.CacheTTL, o.Now)
	b.Quiet = cooldown.New(o.Name, o.ErrorPause, o.Now, b.Log)
	return b
}

// Uncached yields, in order, each valid address of ips (IPv4-mapped ones
// unmapped) that the cache cannot answer, once however often it is listed;
// the cached answers go to hit as the loop passes them.
func (b *Base[V]) Uncached(ips []netip.Addr, hit func(netip.Addr, V)) iter.Seq[netip.Addr] {
	return func(yield func(netip.Addr) bool) {
		seen := map[netip.Addr]bool{}
		for _, ip := range ips {
			ip = ip.Unmap()
			if !ip.IsValid() || seen[ip] {
				continue
			}
			seen[ip] = true
			if r, ok := b.Cache.Get(ip); ok {
				hit(ip, r)
				continue
			}
			if !yield(ip) {
				return
			}
		}
	}
}

// Fail counts a failure and pauses the client for pause (or ErrorPause).
func (b *Base[V]) Fail(err error, pause time.Duration) error { return b.Quiet.Fail(err, pause) }
