// Package abuseipdb checks attacker addresses against AbuseIPDB's v2 check
// API (GET /api/v2/check?ipAddress=A, header Key: <key>): the abuse
// confidence score (0-100) and tags such as tor-exit. Answers are cached
// for 24 hours in a bounded cache, and requests are counted against a daily
// budget (default 1,000, the free tier's daily limit) that resets at UTC
// midnight. Once the budget, a 429 or the X-RateLimit headers say stop, the
// client answers from its cache only: it never waits, so it never holds up
// delivery.
package abuseipdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/attackmap/attackmap/sensor/enrich/remote"
)

// DefaultURL is the check endpoint.
const DefaultURL = "https://api.abuseipdb.com/api/v2/check"

// maxBody caps an answer: a check answer without verbose reports is under
// 1 KB.
const maxBody = 64 << 10

// Options configure a Client.
type Options struct {
	// Key is the API key (ABUSEIPDB_API_KEY). Required.
	Key string
	// URL of the check endpoint; empty means DefaultURL.
	URL string
	// HTTPClient; nil means a client with Timeout.
	HTTPClient *http.Client
	// Timeout bounds one request; 0 means 3 s.
	Timeout time.Duration
	// DailyBudget is the number of requests allowed per UTC day; 0 means
	// 1,000 (the free tier). Cached answers cost nothing.
	DailyBudget int
	// MaxAgeDays is the report window asked for; 0 means 90 days.
	MaxAgeDays int
	// CacheSize bounds the cache (default 10,000); CacheTTL is how long an
	// answer is kept (default 24 h).
	CacheSize int
	CacheTTL  time.Duration
	// Parallel is how many checks run at once in CheckAll; 0 means 4,
	// enough to check a batch within the enrichment deadline without
	// hammering the service.
	Parallel int
	// ErrorPause is how long the client stays quiet after a failed request
	// (network error, 5xx, garbage); 0 means 30 s. A rejected key (401,
	// 403) pauses for an hour.
	ErrorPause time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Report is what AbuseIPDB said about an address.
type Report struct {
	// Score is the abuse confidence score, 0-100.
	Score int
	// Tags derived from the answer: "tor-exit", "hosting".
	Tags []string
}

// Client checks addresses. It is safe for concurrent use.
type Client struct {
	opts Options
	svc  remote.Base[Report]

	mu   sync.Mutex
	day  string // UTC date the budget counts
	used int
}

// New returns a client; it fails without a key.
func New(opts Options) (*Client, error) {
	if strings.TrimSpace(opts.Key) == "" {
		return nil, errors.New("abuseipdb: no API key (set ABUSEIPDB_API_KEY)")
	}
	if opts.URL == "" {
		opts.URL = DefaultURL
	}
	if opts.DailyBudget <= 0 {
		opts.DailyBudget = 1000
	}
	if opts.MaxAgeDays <= 0 {
		opts.MaxAgeDays = 90
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	c := &Client{opts: opts}
	c.svc = remote.New[Report](remote.Options{Name: "abuseipdb", HTTPClient: opts.HTTPClient, Timeout: opts.Timeout,
		CacheSize: opts.CacheSize, CacheTTL: opts.CacheTTL, ErrorPause: opts.ErrorPause, Logger: opts.Logger, Now: opts.Now})
	return c, nil
}

// Used returns the requests spent today and the failures so far.
func (c *Client) Used() (today int, failures uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rollDayLocked()
	return c.used, c.svc.Quiet.Failures()
}

// CheckAll checks the addresses (from the cache, else with up to Parallel
// requests at once) and returns the reports it got. It returns when ctx
// ends, at the latest.
func (c *Client) CheckAll(ctx context.Context, ips []netip.Addr) map[netip.Addr]Report {
	out := map[netip.Addr]Report{}
	var mu sync.Mutex
	sem := make(chan struct{}, c.opts.Parallel)
	var wg sync.WaitGroup
	hit := func(ip netip.Addr, r Report) {
		mu.Lock()
		out[ip] = r
		mu.Unlock()
	}
	for ip := range c.svc.Uncached(ips, hit) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return out
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := c.check(ctx, ip)
			if err != nil {
				c.svc.Log.Debug("abuseipdb: check", "err", err)
				return
			}
			hit(ip, r)
		}()
	}
	wg.Wait()
	return out
}

// Check checks one address.
func (c *Client) Check(ctx context.Context, ip netip.Addr) (Report, error) {
	ip = ip.Unmap()
	if r, ok := c.svc.Cache.Get(ip); ok {
		return r, nil
	}
	return c.check(ctx, ip)
}

var (
	errPaused = errors.New("abuseipdb: paused by the rate limit or an earlier error")
	errBudget = errors.New("abuseipdb: daily budget spent")
)

func (c *Client) rollDayLocked() {
	if day := c.svc.Now().UTC().Format(time.DateOnly); day != c.day {
		c.day, c.used = day, 0
	}
}

func (c *Client) check(ctx context.Context, ip netip.Addr) (Report, error) {
	c.mu.Lock()
	c.rollDayLocked()
	switch {
	case c.svc.Quiet.Active():
		c.mu.Unlock()
		return Report{}, errPaused
	case c.used >= c.opts.DailyBudget:
		c.mu.Unlock()
		return Report{}, errBudget
	}
	c.used++
	c.mu.Unlock()

	q := url.Values{"ipAddress": {ip.String()}, "maxAgeInDays": {strconv.Itoa(c.opts.MaxAgeDays)}}
	ctx, cancel := context.WithTimeout(ctx, c.svc.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.opts.URL+"?"+q.Encode(), nil)
	if err != nil {
		return Report{}, c.fail(fmt.Errorf("abuseipdb: %w", err), 0)
	}
	req.Header.Set("Key", c.opts.Key)
	req.Header.Set("Accept", "application/json")
	resp, err := c.svc.HTTP.Do(req)
	if err != nil {
		return Report{}, c.fail(fmt.Errorf("abuseipdb: %w", err), 0)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return Report{}, c.fail(fmt.Errorf("abuseipdb: reading answer: %w", err), 0)
	}
	c.honourRateLimit(resp.Header)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		wait := retryAfter(resp.Header)
		return Report{}, c.fail(fmt.Errorf("abuseipdb: 429: %s", errorDetail(body)), wait)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return Report{}, c.fail(fmt.Errorf("abuseipdb: key refused (HTTP %d): %s", resp.StatusCode, errorDetail(body)), time.Hour)
	case resp.StatusCode != http.StatusOK:
		return Report{}, c.fail(fmt.Errorf("abuseipdb: HTTP %d: %s", resp.StatusCode, errorDetail(body)), 0)
	}
	if len(body) > maxBody {
		return Report{}, c.fail(errors.New("abuseipdb: answer over 64 KiB"), 0)
	}
	r, err := ParseCheck(body)
	if err != nil {
		return Report{}, c.fail(err, 0)
	}
	c.svc.Cache.Put(ip, r)
	return r, nil
}

// ParseCheck decodes a check answer: {"data":{"abuseConfidenceScore":N,
// "isTor":B,"usageType":S,...}}.
func ParseCheck(body []byte) (Report, error) {
	var a struct {
		Data *struct {
			Score     *int   `json:"abuseConfidenceScore"`
			IsTor     bool   `json:"isTor"`
			UsageType string `json:"usageType"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return Report{}, fmt.Errorf("abuseipdb: malformed answer: %w", err)
	}
	if a.Data == nil || a.Data.Score == nil {
		return Report{}, errors.New("abuseipdb: answer without data.abuseConfidenceScore")
	}
	s := *a.Data.Score
	if s < 0 || s > 100 {
		return Report{}, fmt.Errorf("abuseipdb: score %d is not between 0 and 100", s)
	}
	r := Report{Score: s}
	if a.Data.IsTor {
		r.Tags = append(r.Tags, "tor-exit")
	}
	if strings.Contains(a.Data.UsageType, "Data Center") || strings.Contains(a.Data.UsageType, "Hosting") {
		r.Tags = append(r.Tags, "hosting")
	}
	return r, nil
}

// errorDetail pulls the first error detail out of {"errors":[{"detail":..}]},
// cut short: it is the service's text, shown in one log line.
func errorDetail(body []byte) string {
	var e struct {
		Errors []struct {
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		return shorten(e.Errors[0].Detail)
	}
	return shorten(string(body))
}

func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return strconv.Quote(s)
}

// honourRateLimit pauses the client until X-RateLimit-Reset (epoch seconds)
// when X-RateLimit-Remaining reaches 0.
func (c *Client) honourRateLimit(h http.Header) {
	rem := h.Get("X-RateLimit-Remaining")
	if rem == "" {
		return
	}
	if n, err := strconv.Atoi(rem); err != nil || n > 0 {
		return
	}
	// Without a usable reset time: Retry-After when given, else an hour.
	until := c.svc.Now().Add(time.Hour)
	if h.Get("Retry-After") != "" {
		until = c.svc.Now().Add(retryAfter(h))
	}
	if reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		if t := time.Unix(reset, 0); t.After(c.svc.Now()) && t.Before(c.svc.Now().Add(25*time.Hour)) {
			until = t
		}
	}
	c.svc.Quiet.Until(until)
}

// retryAfter reads Retry-After (seconds), defaulting to a minute and capped
// at a day.
func retryAfter(h http.Header) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && s > 0 {
		return min(time.Duration(s)*time.Second, 24*time.Hour)
	}
	return time.Minute
}

// fail counts a failure and pauses the client for pause (or ErrorPause).
func (c *Client) fail(err error, pause time.Duration) error { return c.svc.Quiet.Fail(err, pause) }
