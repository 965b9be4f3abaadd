// Package ipapi is the fallback geolocation for addresses the local
// databases do not know: ip-api.com's batch endpoint (POST /batch, a JSON
// array of up to 100 addresses per request). Answers, including "fail"
// answers for private or reserved ranges, are cached for 24 hours in a
// bounded cache. The client honours the service's rate-limit headers (X-Rl:
// requests left in the window, X-Ttl: seconds until it resets) and its 429
// answer by answering from the cache only until the window resets: it never
// waits, so it never holds up delivery.
//
// It is off unless configured: the free service is for non-commercial use
// and sends the attacker's address to a third party.
package ipapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/attackmap/attackmap/sensor/enrich/remote"
	"github.com/attackmap/attackmap/sensor/geoip"
)

// DefaultURL is the free batch endpoint (HTTP only on the free tier; the pro
// endpoint is https://pro.ip-api.com/batch?key=KEY).
const DefaultURL = "http://ip-api.com/batch"

// Source is the geo_source of incidents placed by ip-api.
const Source = "ip-api"

// MaxBatch is the service's limit of addresses per request.
const MaxBatch = 100

// fields asks only for what an incident carries, which also keeps answers
// small.
const fields = "status,message,countryCode,city,lat,lon,as,org,query"

// maxBody caps an answer: 100 entries of about 200 bytes is 20 KB, so 1 MiB
// means a broken or hostile server cannot make us buffer much.
const maxBody = 1 << 20

// Options configure a Client.
type Options struct {
	// URL of the batch endpoint; empty means DefaultURL.
	URL string
	// HTTPClient; nil means a client with Timeout.
	HTTPClient *http.Client
	// Timeout bounds one request. 0 means 3 s: long enough for a transatlantic
	// round trip, short enough that a hanging service costs a batch little.
	Timeout time.Duration
	// CacheSize bounds the cache (default 10,000 addresses, about 2 MB);
	// CacheTTL is how long an answer is kept (default 24 h).
	CacheSize int
	CacheTTL  time.Duration
	// ErrorPause is how long the client stays quiet after a failed request
	// (network error, 5xx, garbage). 0 means 30 s, so a broken service does
	// not add a timeout to every batch.
	ErrorPause time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Client queries ip-api. It is safe for concurrent use.
type Client struct {
	opts Options
	svc  remote.Base[geoip.Result]

	mu       sync.Mutex
	requests uint64
}

// New returns a client.
func New(opts Options) *Client {
	if opts.URL == "" {
		opts.URL = DefaultURL
	}
	c := &Client{opts: opts}
	c.svc = remote.New[geoip.Result](remote.Options{Name: "ipapi", HTTPClient: opts.HTTPClient, Timeout: opts.Timeout,
		CacheSize: opts.CacheSize, CacheTTL: opts.CacheTTL, ErrorPause: opts.ErrorPause, Logger: opts.Logger, Now: opts.Now})
	return c
}

// Stats returns how many requests were made and how many failed.
func (c *Client) Stats() (requests, failures uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests, c.svc.Quiet.Failures()
}

// Lookup places the addresses it can: from the cache, then with one request
// per 100 uncached addresses while the rate limit allows. Addresses it could
// not place are absent from the map. It returns when ctx ends, at the latest.
func (c *Client) Lookup(ctx context.Context, ips []netip.Addr) map[netip.Addr]geoip.Result {
	out := map[netip.Addr]geoip.Result{}
	var todo []netip.Addr
	hit := func(ip netip.Addr, r geoip.Result) {
		if r.Found() {
			out[ip] = r
		}
	}
	for ip := range c.svc.Uncached(ips, hit) {
		todo = append(todo, ip)
	}
	for len(todo) > 0 {
		n := min(len(todo), MaxBatch)
		if err := c.batch(ctx, todo[:n], out); err != nil {
			c.svc.Log.Debug("ipapi: batch", "err", err)
			break
		}
		todo = todo[n:]
	}
	return out
}

// errPaused means the client is waiting out a rate-limit window or an
// error pause.
var errPaused = errors.New("ipapi: paused by the rate limit or an earlier error")

// Answer is one entry of a batch answer.
type Answer struct {
	Status      string   `json:"status"`
	Message     string   `json:"message"`
	CountryCode string   `json:"countryCode"`
	City        string   `json:"city"`
	Lat         *float64 `json:"lat"`
	Lon         *float64 `json:"lon"`
	AS          string   `json:"as"`
	Org         string   `json:"org"`
	Query       string   `json:"query"`
}

func (c *Client) batch(ctx context.Context, ips []netip.Addr, out map[netip.Addr]geoip.Result) error {
	if c.svc.Quiet.Active() {
		return errPaused
	}
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()

	body := make([]string, len(ips))
	for i, ip := range ips {
		body[i] = ip.String()
	}
	b, _ := json.Marshal(body)
	u := c.opts.URL
	if strings.Contains(u, "?") {
		u += "&fields=" + fields
	} else {
		u += "?fields=" + fields
	}
	ctx, cancel := context.WithTimeout(ctx, c.svc.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return c.fail(fmt.Errorf("ipapi: %w", err), 0)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.svc.HTTP.Do(req)
	if err != nil {
		return c.fail(fmt.Errorf("ipapi: %w", err), 0)
	}
	defer resp.Body.Close()
	c.honourRateLimit(resp)
	if resp.StatusCode == http.StatusTooManyRequests {
		ttl := headerInt(resp.Header, "X-Ttl", 60)
		return c.fail(fmt.Errorf("ipapi: 429 rate limited for %d s", ttl), time.Duration(ttl)*time.Second)
	}
	if resp.StatusCode != http.StatusOK {
		return c.fail(fmt.Errorf("ipapi: HTTP %d", resp.StatusCode), 0)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return c.fail(fmt.Errorf("ipapi: reading answer: %w", err), 0)
	}
	if len(data) > maxBody {
		return c.fail(errors.New("ipapi: answer over 1 MiB"), 0)
	}
	answers, err := ParseBatch(data, len(ips))
	if err != nil {
		return c.fail(err, 0)
	}
	for i, a := range answers {
		ip := ips[i]
		// The answer echoes the query; an answer for another address is
		// garbage and is not cached.
		if q, err := netip.ParseAddr(a.Query); a.Query != "" && (err != nil || q.Unmap() != ip) {
			continue
		}
		r := a.result()
		c.svc.Cache.Put(ip, r) // also "fail" answers: no need to ask again today
		if r.Found() {
			out[ip] = r
		}
	}
	return nil
}

// ParseBatch decodes a batch answer of want entries.
func ParseBatch(data []byte, want int) ([]Answer, error) {
	var answers []Answer
	if err := json.Unmarshal(data, &answers); err != nil {
		return nil, fmt.Errorf("ipapi: malformed answer: %w", err)
	}
	if len(answers) != want {
		return nil, fmt.Errorf("ipapi: %d answers for %d addresses", len(answers), want)
	}
	return answers, nil
}

// result turns an answer into a geoip.Result; a "fail" answer or nonsense
// values give an empty (not found) result.
func (a Answer) result() geoip.Result {
	var r geoip.Result
	if a.Status != "success" {
		return r
	}
	if len(a.CountryCode) == 2 && a.CountryCode[0] >= 'A' && a.CountryCode[0] <= 'Z' && a.CountryCode[1] >= 'A' && a.CountryCode[1] <= 'Z' {
		r.Country = a.CountryCode
	}
	if a.Lat != nil && a.Lon != nil && *a.Lat >= -90 && *a.Lat <= 90 && *a.Lon >= -180 && *a.Lon <= 180 &&
		(*a.Lat != 0 || *a.Lon != 0) {
		r.Lat, r.Lon, r.HasLocation = *a.Lat, *a.Lon, true
	}
	r.City = a.City
	// "as" is "AS15169 Google LLC".
	if num, name, ok := strings.Cut(a.AS, " "); ok || strings.HasPrefix(a.AS, "AS") {
		if n, err := strconv.ParseUint(strings.TrimPrefix(num, "AS"), 10, 32); err == nil {
			r.ASN = uint32(n)
			r.Org = name
		}
	}
	if a.Org != "" {
		r.Org = a.Org
	}
	if r.Found() {
		r.Source = Source
	}
	return r
}

// honourRateLimit pauses the client when the window is spent: X-Rl is the
// number of requests left, X-Ttl the seconds until the window resets.
func (c *Client) honourRateLimit(resp *http.Response) {
	if resp.Header.Get("X-Rl") == "" {
		return
	}
	if rl := headerInt(resp.Header, "X-Rl", 1); rl <= 0 {
		ttl := headerInt(resp.Header, "X-Ttl", 60)
		c.svc.Quiet.Until(c.svc.Now().Add(time.Duration(ttl) * time.Second))
	}
}

// fail counts a failure and pauses the client for pause (or ErrorPause).
func (c *Client) fail(err error, pause time.Duration) error { return c.svc.Quiet.Fail(err, pause) }

// headerInt reads a non-negative integer header, capped at a day so that a
// hostile header cannot switch the client off for years.
func headerInt(h http.Header, name string, def int) int {
	v, err := strconv.Atoi(strings.TrimSpace(h.Get(name)))
	if err != nil || v < 0 {
		return def
	}
	return min(v, 86400)
}
