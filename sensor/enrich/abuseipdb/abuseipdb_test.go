package abuseipdb

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/testkit"
)

// fakeAbuseIPDB speaks the v2 check API: GET /api/v2/check?ipAddress=A with
// the key in the Key header; errors as {"errors":[{"detail":..,"status":N}]}.
type fakeAbuseIPDB struct {
	calls   atomic.Int32
	mu      sync.Mutex
	mode    string // "", "429", "401", "500", "garbage", "noscore", "remaining0"
	lastKey string
}

func (f *fakeAbuseIPDB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	f.mu.Lock()
	mode := f.mode
	f.lastKey = r.Header.Get("Key")
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/api/v2/check" || r.Method != http.MethodGet {
		w.WriteHeader(404)
		return
	}
	if r.Header.Get("Key") != "secret" || mode == "401" {
		w.WriteHeader(401)
		fmt.Fprint(w, `{"errors":[{"detail":"Authentication failed. Your API key is either missing, incorrect, or revoked.","status":401}]}`)
		return
	}
	ip := r.URL.Query().Get("ipAddress")
	if _, err := netip.ParseAddr(ip); err != nil || r.URL.Query().Get("maxAgeInDays") == "" {
		w.WriteHeader(422)
		fmt.Fprint(w, `{"errors":[{"detail":"The ip address must be a valid IPv4 or IPv6 address.","status":422,"source":{"parameter":"ipAddress"}}]}`)
		return
	}
	switch mode {
	case "429":
		w.Header().Set("Retry-After", "120")
		w.Header().Set("X-RateLimit-Limit", "1000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.WriteHeader(429)
		fmt.Fprint(w, `{"errors":[{"detail":"Daily rate limit of 1000 requests exceeded for this API endpoint.","status":429}]}`)
		return
	case "500":
		w.WriteHeader(500)
		fmt.Fprint(w, "<html>upstream error</html>")
		return
	case "garbage":
		fmt.Fprint(w, `{"data":`)
		return
	case "noscore":
		fmt.Fprint(w, `{"data":{"ipAddress":"`+ip+`"}}`)
		return
	}
	score, tor := 100, true
	if strings.HasPrefix(ip, "9.") {
		score, tor = 0, false
	}
	fmt.Fprintf(w, `{"data":{"ipAddress":%q,"isPublic":true,"ipVersion":4,"isWhitelisted":false,"abuseConfidenceScore":%d,`+
		`"countryCode":"DE","usageType":"Data Center/Web Hosting/Transit","isp":"x","domain":"x.org","hostnames":[],`+
		`"isTor":%v,"totalReports":57,"numDistinctUsers":20,"lastReportedAt":"2026-03-22T14:00:00+00:00"}}`, ip, score, tor)
}

func setup(t *testing.T, opts Options) (*fakeAbuseIPDB, *Client, *testkit.Clock) {
	t.Helper()
	f := &fakeAbuseIPDB{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	clk := testkit.NewClock(time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC))
	opts.URL = srv.URL + "/api/v2/check"
	opts.Now = clk.Now
	if opts.Key == "" {
		opts.Key = "secret"
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return f, c, clk
}

var (
	bad  = netip.MustParseAddr("185.220.101.34")
	good = netip.MustParseAddr("9.9.9.9")
)

func TestScoresAndTagsAndCaches(t *testing.T) {
	f, c, clk := setup(t, Options{})
	got := c.CheckAll(context.Background(), []netip.Addr{bad, good, bad})
	if r := got[bad]; r.Score != 100 || strings.Join(r.Tags, ",") != "tor-exit,hosting" {
		t.Fatalf("bad: %+v", r)
	}
	if r, ok := got[good]; !ok || r.Score != 0 {
		t.Fatalf("good: %+v %v", r, ok)
	}
	if f.calls.Load() != 2 || f.lastKey != "secret" {
		t.Fatalf("%d calls, key %q", f.calls.Load(), f.lastKey)
	}
	c.CheckAll(context.Background(), []netip.Addr{bad, good})
	if f.calls.Load() != 2 {
		t.Fatal("cached answers asked again")
	}
	clk.Add(25 * time.Hour)
	c.CheckAll(context.Background(), []netip.Addr{bad})
	if f.calls.Load() != 3 {
		t.Fatal("not asked again after 24 h")
	}
}

func TestKeepsToTheDailyBudget(t *testing.T) {
	f, c, clk := setup(t, Options{DailyBudget: 3})
	var ips []netip.Addr
	for i := range 10 {
		ips = append(ips, netip.AddrFrom4([4]byte{185, 1, 1, byte(i + 1)}))
	}
	if got := c.CheckAll(context.Background(), ips); len(got) != 3 || f.calls.Load() != 3 {
		t.Fatalf("%d reports, %d calls; budget 3", len(got), f.calls.Load())
	}
	// A new UTC day, a new budget.
	clk.Add(12 * time.Hour)
	if got := c.CheckAll(context.Background(), ips); len(got) != 6 || f.calls.Load() != 6 {
		t.Fatalf("next day: %d reports, %d calls", len(got), f.calls.Load())
	}
}

func TestErrorAnswersPauseTheClient(t *testing.T) {
	for _, c := range []struct {
		mode  string
		pause time.Duration
	}{
		{"429", 120 * time.Second},
		{"401", time.Hour},
		{"500", 30 * time.Second},
		{"garbage", 30 * time.Second},
		{"noscore", 30 * time.Second},
	} {
		t.Run(c.mode, func(t *testing.T) {
			f, cl, clk := setup(t, Options{})
			f.mode = c.mode
			if got := cl.CheckAll(context.Background(), []netip.Addr{bad}); len(got) != 0 {
				t.Fatalf("got %v", got)
			}
			f.mode = ""
			clk.Add(c.pause - time.Second)
			if got := cl.CheckAll(context.Background(), []netip.Addr{bad}); len(got) != 0 || f.calls.Load() != 1 {
				t.Fatalf("during the pause: %v, %d calls", got, f.calls.Load())
			}
			clk.Add(2 * time.Second)
			if got := cl.CheckAll(context.Background(), []netip.Addr{bad}); len(got) != 1 {
				t.Fatalf("after the pause: %v", got)
			}
		})
	}
}

func TestNeedsAKey(t *testing.T) {
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "ABUSEIPDB_API_KEY") {
		t.Fatalf("err = %v", err)
	}
}

func TestAHangingServiceCostsOnlyTheDeadline(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	c, _ := New(Options{Key: "k", URL: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if got := c.CheckAll(ctx, []netip.Addr{bad, good}); len(got) != 0 {
		t.Fatalf("got %v", got)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
}

func FuzzParseCheck(f *testing.F) {
	f.Add([]byte(`{"data":{"abuseConfidenceScore":100,"isTor":true,"usageType":"Data Center/Web Hosting/Transit"}}`))
	f.Add([]byte(`{"data":{"abuseConfidenceScore":-1}}`))
	f.Add([]byte(`{"errors":[{"detail":"x","status":429}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseCheck(data)
		if err != nil {
			return
		}
		if r.Score < 0 || r.Score > 100 || len(r.Tags) > 2 {
			t.Fatalf("bad report %+v", r)
		}
	})
}
