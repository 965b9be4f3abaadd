package ipapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

// fakeIPAPI speaks ip-api.com's batch API: POST a JSON array of addresses
// (or {"query":...} objects), get an array of answers in the same order.
type fakeIPAPI struct {
	mu       sync.Mutex
	calls    atomic.Int32
	sizes    []int
	rl, ttl  string // X-Rl and X-Ttl to send
	status   int    // non-zero: answer with this status
	body     string // non-empty: answer with this body
	hang     chan struct{}
	lastPath string
}

func (f *fakeIPAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/batch" {
		http.Error(w, "not found", 404)
		return
	}
	f.mu.Lock()
	f.lastPath = r.URL.String()
	rl, ttl, status, body, hang := f.rl, f.ttl, f.status, f.body, f.hang
	f.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	}
	var qs []string
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &qs); err != nil {
		w.WriteHeader(400)
		fmt.Fprint(w, `{"status":"fail","message":"invalid query"}`)
		return
	}
	f.mu.Lock()
	f.sizes = append(f.sizes, len(qs))
	f.mu.Unlock()
	if len(qs) > 100 {
		w.WriteHeader(422)
		return
	}
	if rl != "" {
		w.Header().Set("X-Rl", rl)
		w.Header().Set("X-Ttl", ttl)
	}
	if status != 0 {
		w.WriteHeader(status)
		fmt.Fprint(w, body)
		return
	}
	if body != "" {
		fmt.Fprint(w, body)
		return
	}
	var out []map[string]any
	for _, q := range qs {
		a, _ := netip.ParseAddr(q)
		if a.IsPrivate() || a.IsLoopback() {
			out = append(out, map[string]any{"status": "fail", "message": "private range", "query": q})
			continue
		}
		out = append(out, map[string]any{"status": "success", "countryCode": "DE", "city": "Frankfurt am Main",
			"lat": 50.1109, "lon": 8.68213, "as": "AS205100 F3 Netze e.V.", "org": "F3 Netze", "query": q})
	}
	json.NewEncoder(w).Encode(out)
}

func setup(t *testing.T) (*fakeIPAPI, *Client, *testkit.Clock) {
	t.Helper()
	f := &fakeIPAPI{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	clk := testkit.NewClock(time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC))
	c := New(Options{URL: srv.URL + "/batch", Now: clk.Now, Timeout: 2 * time.Second})
	return f, c, clk
}

func addrs(n int) []netip.Addr {
	var a []netip.Addr
	for i := range n {
		a = append(a, netip.AddrFrom4([4]byte{185, 220, byte(i / 250), byte(i%250 + 1)}))
	}
	return a
}

func TestPlacesAddressesAndCachesAnswers(t *testing.T) {
	f, c, clk := setup(t)
	ips := append(addrs(2), netip.MustParseAddr("10.0.0.1"))
	got := c.Lookup(context.Background(), ips)
	if len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	r := got[ips[0]]
	if r.Country != "DE" || r.City != "Frankfurt am Main" || r.ASN != 205100 || r.Org != "F3 Netze" || !r.HasLocation || r.Source != "ip-api" {
		t.Fatalf("result %+v", r)
	}
	if !strings.Contains(f.lastPath, "fields=status,") {
		t.Errorf("no fields parameter: %s", f.lastPath)
	}
	// Answers (also the "fail" one) are cached for 24 h.
	c.Lookup(context.Background(), ips)
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	clk.Add(24*time.Hour + time.Second)
	c.Lookup(context.Background(), ips)
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("%d requests after a day, want 2", n)
	}
}

func TestSplitsIntoBatchesOfAHundred(t *testing.T) {
	f, c, _ := setup(t)
	got := c.Lookup(context.Background(), addrs(250))
	if len(got) != 250 {
		t.Fatalf("%d placed", len(got))
	}
	if fmt.Sprint(f.sizes) != "[100 100 50]" {
		t.Fatalf("batch sizes %v", f.sizes)
	}
}

func TestHonoursTheRateLimitHeaders(t *testing.T) {
	f, c, clk := setup(t)
	f.rl, f.ttl = "0", "30"
	if got := c.Lookup(context.Background(), addrs(1)); len(got) != 1 {
		t.Fatalf("the answer that spent the window is still used: %v", got)
	}
	// Window spent: no request for 30 s, answers from the cache only.
	more := addrs(3)[1:]
	if got := c.Lookup(context.Background(), more); len(got) != 0 || f.calls.Load() != 1 {
		t.Fatalf("asked during a spent window: %v, %d calls", got, f.calls.Load())
	}
	clk.Add(31 * time.Second)
	f.rl = "14"
	if got := c.Lookup(context.Background(), more); len(got) != 2 || f.calls.Load() != 2 {
		t.Fatalf("after the window: %v, %d calls", got, f.calls.Load())
	}
}

func TestErrorsLeaveAddressesUnplacedAndPause(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		rl     string
		body   string
		pause  time.Duration
	}{
		{"429", 429, "0", "", 60 * time.Second},
		{"500", 500, "", "oops", 30 * time.Second},
		{"not JSON", 0, "", "<html>", 30 * time.Second},
		{"wrong count", 0, "", `[{"status":"success","countryCode":"DE","query":"185.220.0.1"}]`, 30 * time.Second},
		{"wrong types", 0, "", `[{"status":"success","lat":"north"},{"status":"success"}]`, 30 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, cl, clk := setup(t)
			f.status, f.body, f.rl, f.ttl = c.status, c.body, c.rl, "60"
			if got := cl.Lookup(context.Background(), addrs(2)); len(got) != 0 {
				t.Fatalf("got %v", got)
			}
			f.status, f.body, f.rl = 0, "", ""
			clk.Add(c.pause - time.Second)
			cl.Lookup(context.Background(), addrs(2))
			if n := f.calls.Load(); n != 1 {
				t.Fatalf("%d calls during the pause", n)
			}
			clk.Add(2 * time.Second)
			if got := cl.Lookup(context.Background(), addrs(2)); len(got) != 2 {
				t.Fatalf("after the pause: %v", got)
			}
		})
	}
}

func TestGarbageValuesAreDropped(t *testing.T) {
	f, c, _ := setup(t)
	f.body = `[{"status":"success","countryCode":"<b>","lat":999,"lon":8,"as":"ASxyz","city":"Ok","query":"185.220.0.1"},
	{"status":"success","countryCode":"FR","lat":48.8,"lon":2.3,"query":"9.9.9.9"}]`
	got := c.Lookup(context.Background(), addrs(2))
	r := got[addrs(1)[0]]
	if r.Country != "" || r.HasLocation || r.ASN != 0 {
		t.Fatalf("garbage accepted: %+v", r)
	}
	if _, ok := got[addrs(2)[1]]; ok {
		t.Fatal("an answer for another address was used")
	}
}

func TestAHangingServiceCostsOnlyTheTimeout(t *testing.T) {
	f, c, _ := setup(t)
	f.hang = make(chan struct{})
	defer close(f.hang)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if got := c.Lookup(ctx, addrs(1)); len(got) != 0 {
		t.Fatalf("got %v", got)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
}

func FuzzParseBatch(f *testing.F) {
	f.Add([]byte(`[{"status":"success","countryCode":"DE","city":"Berlin","lat":52.5,"lon":13.4,"as":"AS3320 DTAG","org":"DT","query":"1.2.3.4"}]`))
	f.Add([]byte(`[{"status":"fail","message":"private range","query":"10.0.0.1"}]`))
	f.Add([]byte(`[{"as":"AS"},{"as":"AS99999999999 x"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		answers, err := ParseBatch(data, 1)
		if err != nil {
			return
		}
		r := answers[0].result()
		if r.HasLocation && (r.Lat < -90 || r.Lat > 90 || r.Lon < -180 || r.Lon > 180) {
			t.Fatalf("bad location %+v", r)
		}
		if r.Country != "" && len(r.Country) != 2 {
			t.Fatalf("bad country %q", r.Country)
		}
	})
}
