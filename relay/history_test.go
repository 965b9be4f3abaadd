package relay

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// historyIDs GETs /api/history with query and headers and returns the
// status, the content type and the incident ids, in order.
func historyIDs(t *testing.T, base, query string, h http.Header) (int, string, []string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/history?"+query, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	var ids []string
	if strings.HasPrefix(ct, "application/x-ndjson") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var in incident.Incident
			if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
				t.Fatalf("ndjson line %q: %v", sc.Text(), err)
			}
			ids = append(ids, in.ID)
		}
		return resp.StatusCode, ct, ids
	}
	var ins []incident.Incident
	if err := json.NewDecoder(resp.Body).Decode(&ins); err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		ids = append(ids, in.ID)
	}
	return resp.StatusCode, ct, ids
}

func TestHistoryEndpointContract(t *testing.T) {
	tr := startRelay(t, Config{AllowOrigins: []string{"https://map.example.org"}})
	publishN(t, tr.Relay, "a", 3, nil)
	time.Sleep(20 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	publishN(t, tr.Relay, "b", 3, nil)
	publishN(t, tr.Relay, "a", 1, map[string]any{"count": 99}) // an update of a0: a version of its own
	at := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339Nano)) }
	for _, tc := range []struct {
		name, query string
		header      http.Header
		wantCT      string
		want        string
	}{
		{"the last day by default, oldest first, every version", "", nil, "application/json", "a0 a1 a2 b0 b1 b2 a0"},
		{"from an instant", "from=" + at(mid), nil, "application/json", "b0 b1 b2 a0"},
		{"up to an instant", "to=" + at(mid), nil, "application/json", "a0 a1 a2"},
		{"a window with nothing in it", "from=" + at(mid.Add(-time.Hour)) + "&to=" + at(mid.Add(-30*time.Minute)), nil, "application/json", ""},
		{"after the newest", "from=" + at(time.Now().Add(time.Hour)) + "&to=" + at(time.Now().Add(2*time.Hour)), nil, "application/json", ""},
		{"limit keeps the oldest", "limit=2", nil, "application/json", "a0 a1"},
		{"ndjson by parameter", "format=ndjson&limit=4", nil, "application/x-ndjson", "a0 a1 a2 b0"},
		{"ndjson by Accept", "from=" + at(mid), http.Header{"Accept": {"text/html, application/x-ndjson;q=0.9"}}, "application/x-ndjson", "b0 b1 b2 a0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ct, ids := historyIDs(t, tr.url, tc.query, tc.header)
			if code != http.StatusOK || !strings.HasPrefix(ct, tc.wantCT) {
				t.Fatalf("status %d, %q; want 200 %s", code, ct, tc.wantCT)
			}
			if got := strings.Join(ids, " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, query, want string }{
		{"from is not a time", "from=yesterday", "from: want an RFC 3339 time"},
		{"to is not a time", "to=1700000000", "to: want an RFC 3339 time"},
		{"from after to", "from=" + at(mid) + "&to=" + at(mid.Add(-time.Second)), "from: after to"},
		{"limit zero", "limit=0", "limit: want a number from 1 to 50000"},
		{"limit over the most", "limit=50001", "limit: want a number from 1 to 50000"},
		{"an unknown format", "format=csv", "format: want json or ndjson"},
	} {
		t.Run("400 for "+tc.name, func(t *testing.T) {
			code, body, _ := historyIDs(t, tr.url, tc.query, nil)
			if code != http.StatusBadRequest || !strings.HasPrefix(body, tc.want) || strings.Count(body, "\n") != 1 {
				t.Errorf("got %d %q, want 400 and one line starting %q", code, body, tc.want)
			}
		})
	}
	t.Run("CORS like the other endpoints", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, tr.url+"/api/history?limit=1", nil)
		req.Header.Set("Origin", "https://map.example.org")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "https://map.example.org" {
			t.Errorf("allowed origin: ACAO %q", resp.Header.Get("Access-Control-Allow-Origin"))
		}
		req.Header.Set("Origin", "https://evil.example")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("other origin: ACAO %q", v)
		}
		pre, _ := http.NewRequest(http.MethodOptions, tr.url+"/api/history", nil)
		pre.Header.Set("Origin", "https://map.example.org")
		pre.Header.Set("Access-Control-Request-Method", "GET")
		resp, err = http.DefaultClient.Do(pre)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") == "" {
			t.Errorf("preflight: %d %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
}

func TestHistoryReadsCappedPerAddress(t *testing.T) {
	var l historyLimits
	a := mustAddr(t, "192.0.2.1")
	for i := range historyPerAddr {
		if !l.acquire(a) {
			t.Fatalf("read %d refused", i+1)
		}
	}
	if l.acquire(a) {
		t.Fatal("a read over the per-address cap was let in")
	}
	for i := range historyReads - historyPerAddr {
		if !l.acquire(mustAddr(t, fmt.Sprintf("198.51.100.%d", i+1))) {
			t.Fatalf("another address's read %d refused", i+1)
		}
	}
	if l.acquire(mustAddr(t, "203.0.113.1")) {
		t.Fatal("a read over the total cap was let in")
	}
	l.release(a)
	if !l.acquire(a) {
		t.Fatal("a released slot was not reused")
	}
}

func FuzzParseHistoryQuery(f *testing.F) {
	for _, s := range []string{"", "from=2026-03-22T10:00:00Z", "to=2026-03-22T10:00:00.5%2B02:00&limit=10",
		"format=ndjson", "limit=-1", "from=2026-03-22T10:00:00Z&to=2026-03-21T10:00:00Z", "from=%ff", "limit=99999999999999999999"} {
		f.Add(s, "application/json")
	}
	now := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, query, accept string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		hq, err := parseHistoryQuery(q, accept, now)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error %q is not one line", err)
			}
			return
		}
		if hq.limit < 1 || hq.limit > historyMax || hq.from.After(hq.to) {
			t.Fatalf("accepted %+v", hq)
		}
	})
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestResumeOlderThanTheRingReadsTheStream(t *testing.T) {
	for _, hijack := range []bool{true, false} {
		t.Run(fmt.Sprintf("hijacked %v", hijack), func(t *testing.T) {
			tr := newTestRelay(t, Config{RingSize: 5})
			defer tr.Close()
			var h http.Handler = tr.Handler()
			if !hijack {
				inner := h
				h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { inner.ServeHTTP(plainWriter{w}, req) })
			}
			base := httptestServer(t, h)
			publishN(t, tr.Relay, "r", 20, nil) // sequences 1..20; the ring holds 16..20
			var st *stream
			if hijack {
				st = openStream(t, base, streamOpts{header: http.Header{"Last-Event-Id": {"3"}}})
			} else {
				// Chunked framing: read through net/http.
				req, _ := http.NewRequest(http.MethodGet, base+"/api/live-feed/stream", nil)
				req.Header.Set("Last-Event-ID", "3")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				st = &stream{t: t, br: bufioReader(resp.Body), conn: nopDeadlineConn{}}
			}
			for want := 4; want <= 20; want++ {
				ev, in := st.nextIncident(wait)
				if ev.id != strconv.Itoa(want) || in.ID != fmt.Sprintf("r%d", want-1) {
					t.Fatalf("got id %s (%s), want %d: a reset or a gap", ev.id, in.ID, want)
				}
			}
			publishN(t, tr.Relay, "live", 1, nil)
			if ev, in := st.nextIncident(wait); ev.id != "21" || in.ID != "live0" {
				t.Fatalf("live after the catch-up: %s %s", ev.id, in.ID)
			}
			if hijack {
				st.expectQuiet(100 * time.Millisecond)
			}
		})
	}
}
