package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay/token"
)

// The tests in this file are the data side of the relay's hardening: what
// a sensor with a valid token can make the relay store, count and show.

func TestIncidentTimesAndCountsCheckedAgainstTheRelayClock(t *testing.T) {
	now := incTime.Add(time.Minute)
	tr := startRelay(t, Config{Now: func() time.Time { return now }})
	st := openStream(t, tr.url, streamOpts{})
	waitFor(t, "subscriber", func() bool { return tr.hub.Len() == 1 })
	s := dialSensor(t, tr.url, tr.tok)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	batch := []struct {
		name string
		raw  json.RawMessage
		want string // substring of the rejection; "" accepted
	}{
		{"a fresh incident", inc("ok", nil), ""},
		{"a clock two minutes fast", inc("fast", map[string]any{"ts": at(2 * time.Minute), "last_seen": at(2 * time.Minute)}), ""},
		{"ts an hour ahead", inc("hour", map[string]any{"ts": at(time.Hour), "last_seen": nil}), "ts: " + at(time.Hour) + " is 1h0m0s ahead of the relay's clock"},
		{"last_seen an hour ahead", inc("last", map[string]any{"last_seen": at(time.Hour)}), "last_seen:"},
		{"year 9999", inc("y9999", map[string]any{"ts": "9999-12-31T23:59:59Z", "last_seen": nil}), "ahead of the relay's clock"},
		{"year 0001", inc("y0001", map[string]any{"ts": "0001-01-02T00:00:00Z", "last_seen": nil}), "older than the relay keeps (7 days)"},
		{"older than the retention", inc("old", map[string]any{"ts": at(-8 * 24 * time.Hour), "last_seen": nil}), "8 days old"},
		{"count MaxInt64", inc("huge", map[string]any{"count": int64(math.MaxInt64)}), "count:"},
		{"count over 10^9", inc("big", map[string]any{"count": 1_000_000_001}), "count:"},
	}
	raws := make([]json.RawMessage, len(batch))
	for i, b := range batch {
		raws[i] = b.raw
	}
	ack := s.send(raws...)
	rejected := map[int]string{}
	for _, r := range ack.Rejected {
		rejected[r.Index] = r.Error
	}
	for i, b := range batch {
		t.Run(b.name, func(t *testing.T) {
			got, refused := rejected[i]
			switch {
			case b.want == "" && refused:
				t.Fatalf("rejected: %s", got)
			case b.want != "" && !refused:
				t.Fatal("accepted")
			case b.want != "" && !strings.Contains(got, b.want):
				t.Fatalf("error %q does not say %q", got, b.want)
			}
		})
	}
	if ack.Accepted != 2 {
		t.Fatalf("ack %+v", ack)
	}
	for _, want := range []string{"ok", "fast"} {
		if _, in := st.nextIncident(wait); in.ID != want {
			t.Fatalf("stream got %s, want %s", in.ID, want)
		}
	}
	st.expectQuiet(100 * time.Millisecond)
	if v := metricValue(t, tr, `attackmap_relay_incidents_bad_time_total{host="web-1",reason="ahead"}`); v != 3 {
		t.Errorf("clock-ahead metric %v, want 3", v)
	}
	if v := metricValue(t, tr, `attackmap_relay_incidents_bad_time_total{host="web-1",reason="too_old"}`); v != 2 {
		t.Errorf("too-old metric %v, want 2", v)
	}
}

func TestStatsStayUnder64KiBWhateverSensorsSend(t *testing.T) {
	// In memory (no history) and in process: the same path as the socket,
	// without 1,200 fsyncs.
	now := time.Now().UTC()
	r, err := New(Config{Now: func() time.Time { return now }, IngestRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	host := Host{Name: "web-1"}
	const distinct = 120000
	batch := make([]json.RawMessage, 0, incident.MaxBatchIncidents)
	flush := func() {
		ack := r.Publish(host, batch)
		if len(ack.Rejected) != 0 {
			t.Fatalf("rejected: %+v", ack.Rejected[0])
		}
		batch = batch[:0]
	}
	for i := range distinct {
		country := string(rune('A'+i%26)) + string(rune('A'+i/26%26))
		batch = append(batch, inc("s"+strconv.Itoa(i), map[string]any{
			"source":     "made_up_" + strconv.Itoa(i),
			"geo_source": "geo-" + strconv.Itoa(i),
			"country":    country,
			"ts":         now.Add(-time.Duration(i%3600) * time.Second).Format(time.RFC3339),
			"last_seen":  nil,
		}))
		if len(batch) == incident.MaxBatchIncidents {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	// Real detectors still count by name.
	r.Publish(host, []json.RawMessage{inc("real", map[string]any{"ts": now.Format(time.RFC3339), "last_seen": nil})})

	rec := httptest.NewRecorder()
	start := time.Now()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/stats", nil))
	took := time.Since(start)
	body := rec.Body.Bytes()
	if rec.Code != 200 || len(body) >= 64<<10 {
		t.Fatalf("/api/stats: status %d, %d bytes (want under 64 KiB)", rec.Code, len(body))
	}
	t.Logf("/api/stats after %d distinct sources, geo sources and all 676 country codes: %d bytes in %v", distinct, len(body), took)
	var st Stats
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	day := st.Windows["24h"]
	if day.Total != distinct+1 {
		t.Fatalf("24h total %d, want %d", day.Total, distinct+1)
	}
	if len(day.BySource) != 2 || day.BySource[incident.Other] != distinct || day.BySource["ssh_bruteforce"] != 1 {
		t.Fatalf("by_source %v: unknown sources must count as other", day.BySource)
	}
	if len(day.ByCountry) > maxCountries {
		t.Fatalf("by_country has %d keys, over %d", len(day.ByCountry), maxCountries)
	}
	sum := 0
	for _, n := range day.ByCountry {
		sum += n
	}
	if sum != distinct+1 {
		t.Fatalf("by_country sums to %d, want %d: nothing may be lost in other", sum, distinct+1)
	}
	if fmt.Sprint(st.GeoSources) != "[dbip]" {
		t.Fatalf("geo_sources %v: unknown values are not listed", st.GeoSources)
	}
}

// readClose reads from a sensor socket until it is closed and returns the
// close status, reason, any error message and whether an ack came.
func readClose(t *testing.T, c *websocket.Conn, timeout time.Duration) (websocket.StatusCode, string, []incident.BatchError, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []incident.BatchError
	acked := false
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason, errs, acked
			}
			t.Fatalf("socket not closed with a status within %v: %v", timeout, err)
		}
		var msg struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(data, &msg)
		switch msg.Type {
		case incident.TypeAck:
			acked = true
		case incident.TypeError:
			var be incident.BatchError
			_ = json.Unmarshal(data, &be)
			errs = append(errs, be)
		}
	}
}

func TestRemovedTokenClosesItsConnectionsWithinASecond(t *testing.T) {
	tr := startRelay(t, Config{})
	tok2, err := token.Add(tr.cfg.TokenFile, "web-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	s1 := dialSensor(t, tr.url, tr.tok)
	s2 := dialSensor(t, tr.url, tok2)
	s1.send(inc("before", nil))
	s2.send(inc("other", nil))
	start := time.Now()
	if err := token.Remove(tr.cfg.TokenFile, "web-1"); err != nil {
		t.Fatal(err)
	}
	code, reason, _, acked := readClose(t, s1.c, 5*time.Second)
	took := time.Since(start)
	if code != websocket.StatusPolicyViolation || reason != "token revoked" || acked {
		t.Fatalf("closed with %d %q (acked %v), want 1008 \"token revoked\"", code, reason, acked)
	}
	if took > time.Second {
		t.Fatalf("closed %v after the removal, want within a second", took)
	}
	if _, err := dialIngestExpectClose(tr.url, tr.tok); err == nil || !strings.Contains(err.Error(), "bad token") {
		t.Fatalf("removed token reconnecting: %v", err)
	}
	// The other sensor is untouched.
	if ack := s2.send(inc("after", nil)); ack.Accepted != 1 {
		t.Fatalf("other sensor: %+v", ack)
	}
	if v := metricValue(t, tr, "attackmap_relay_ingest_revoked_total"); v != 1 {
		t.Errorf("revoked metric %v", v)
	}
}

// dialIngestExpectClose connects and reads once: the close a refused
// connection gets.
func dialIngestExpectClose(base, tok string) (websocket.CloseError, error) {
	c, err := dialIngest(base, tok)
	if err != nil {
		return websocket.CloseError{}, err
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce, fmt.Errorf("closed %d %s", ce.Code, ce.Reason)
	}
	return ce, fmt.Errorf("not closed: %v", err)
}

func TestUnusableTokenFileRefusesAllIngestButNotTheMap(t *testing.T) {
	for _, tt := range []struct {
		name   string
		break_ func(path string) error
	}{
		{"deleted", os.Remove},
		{"unparsable", func(path string) error {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteString("not a token line\n")
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := startRelay(t, Config{})
			good, err := os.ReadFile(tr.cfg.TokenFile)
			if err != nil {
				t.Fatal(err)
			}
			s := dialSensor(t, tr.url, tr.tok)
			s.send(inc("before", nil))
			if err := tt.break_(tr.cfg.TokenFile); err != nil {
				t.Fatal(err)
			}
			code, reason, _, acked := readClose(t, s.c, 5*time.Second)
			if code != websocket.StatusTryAgainLater || !strings.Contains(reason, "token file") || acked {
				t.Fatalf("connected sensor: closed %d %q (acked %v), want 1013 naming the token file", code, reason, acked)
			}
			ce, err := dialIngestExpectClose(tr.url, tr.tok)
			if ce.Code != websocket.StatusTryAgainLater {
				t.Fatalf("new connection: %v, want refused with 1013", err)
			}
			if v := metricValue(t, tr, "attackmap_relay_token_file_ok"); v != 0 {
				t.Errorf("token_file_ok %v, want 0", v)
			}
			if v := metricValue(t, tr, `attackmap_relay_ingest_refused_total{reason="token_file"}`); v != 1 {
				t.Errorf("refused metric %v, want 1", v)
			}
			// The public side keeps serving.
			var feed []incident.Incident
			getJSON(t, tr.url+"/api/live-feed", &feed)
			if len(feed) != 1 || feed[0].ID != "before" {
				t.Fatalf("feed %+v", feed)
			}
			// Fixed: ingest works again.
			if err := os.WriteFile(tr.cfg.TokenFile, good, 0o600); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "token file reloaded", func() bool { return tr.tokens.Err() == nil })
			s2 := dialSensor(t, tr.url, tr.tok)
			if ack := s2.send(inc("after", nil)); ack.Accepted != 1 {
				t.Fatalf("after the fix: %+v", ack)
			}
		})
	}
}

func TestIngestConnectionsCappedPerToken(t *testing.T) {
	tr := startRelay(t, Config{MaxIngestPerToken: 2})
	tok2, err := token.Add(tr.cfg.TokenFile, "web-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := dialSensor(t, tr.url, tr.tok)
	b := dialSensor(t, tr.url, tr.tok)
	a.send(inc("a", nil))
	b.send(inc("b", nil))
	ce, err := dialIngestExpectClose(tr.url, tr.tok)
	if ce.Code != websocket.StatusTryAgainLater || !strings.Contains(ce.Reason, "web-1 already has 2 ingest connections") {
		t.Fatalf("third connection: %v", err)
	}
	// Another token is not affected, and a freed slot can be used again.
	dialSensor(t, tr.url, tok2).send(inc("c", nil))
	a.c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "slot freed", func() bool {
		tr.sensors.mu.Lock()
		defer tr.sensors.mu.Unlock()
		return tr.sensors.byName["web-1"] == 1
	})
	dialSensor(t, tr.url, tr.tok).send(inc("d", nil))
	if v := metricValue(t, tr, `attackmap_relay_ingest_refused_total{reason="per_token"}`); v != 1 {
		t.Errorf("refused metric %v, want 1", v)
	}
}

func TestHistoryDailyBudgetRefusesBatchesWithoutAck(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	dir := t.TempDir()
	// About ten incidents a day per token, thirty in all.
	one := int64(len(inc("x", nil))) + historyOverhead
	cfg := Config{DataDir: dir, Now: now, HistoryCapPerToken: 10 * one, HistoryCapTotal: 15 * one}
	tr := startRelay(t, cfg)
	tok2, err := token.Add(tr.cfg.TokenFile, "web-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := dialSensor(t, tr.url, tr.tok)
	batch := func(prefix string, n int) []json.RawMessage {
		out := make([]json.RawMessage, n)
		for i := range out {
			out[i] = inc(prefix+strconv.Itoa(i), map[string]any{"ts": now().UTC().Format(time.RFC3339), "last_seen": nil})
		}
		return out
	}
	if ack := s.send(batch("a", 8)...); ack.Accepted != 8 {
		t.Fatalf("within the budget: %+v", ack)
	}
	// Repeats write nothing and still fit.
	if ack := s.send(batch("a", 8)...); ack.Accepted != 8 {
		t.Fatalf("repeats: %+v", ack)
	}
	refuse := func(s *sensor, raws []json.RawMessage, wantLimit string) {
		t.Helper()
		s.batch++
		msg, _ := json.Marshal(incident.Batch{Type: incident.TypeIncidents, Batch: s.batch, Incidents: raws})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.c.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		code, reason, errs, acked := readClose(t, s.c, 10*time.Second)
		if acked || code != websocket.StatusTryAgainLater || !strings.HasPrefix(reason, "history full") {
			t.Fatalf("over the budget: closed %d %q, acked %v; want no ack and 1013 \"history full...\"", code, reason, acked)
		}
		if len(errs) != 1 || errs[0].Batch != s.batch || !strings.Contains(errs[0].Error, wantLimit) {
			t.Fatalf("error messages %+v, want one for batch %d naming %s", errs, s.batch, wantLimit)
		}
	}
	refuse(s, batch("b", 3), "--history-cap-per-token")
	var feed []incident.Incident
	getJSON(t, tr.url+"/api/live-feed?limit=500", &feed)
	if len(feed) != 8 {
		t.Fatalf("feed has %d incidents: a refused batch must not be broadcast", len(feed))
	}
	// Another token has its own budget, until the total runs out.
	s2 := dialSensor(t, tr.url, tok2)
	if ack := s2.send(batch("c", 6)...); ack.Accepted != 6 {
		t.Fatalf("second token: %+v", ack)
	}
	refuse(s2, batch("d", 3), "--history-cap")
	if v := metricValue(t, tr, `attackmap_relay_batches_history_full_total{host="web-1",limit="per_token"}`); v != 1 {
		t.Errorf("per-token metric %v", v)
	}
	if v := metricValue(t, tr, `attackmap_relay_batches_history_full_total{host="web-2",limit="total"}`); v != 1 {
		t.Errorf("total metric %v", v)
	}
	// A restart does not renew the budget.
	tr.close()
	cfg.TokenFile = tr.cfg.TokenFile
	tr2 := startRelay(t, cfg)
	refuse(dialSensor(t, tr2.url, tr.tok), batch("b", 3), "--history-cap-per-token")
	// The next UTC day does, and the same batch is stored.
	clock.Add(int64(24 * time.Hour))
	if ack := dialSensor(t, tr2.url, tr.tok).send(batch("b", 3)...); ack.Accepted != 3 {
		t.Fatalf("next day: %+v", ack)
	}
}

func TestMaskIPLeaksNoAddressAnywhere(t *testing.T) {
	tr := startRelay(t, Config{MaskIP: true})
	st := openStream(t, tr.url, streamOpts{})
	waitFor(t, "subscriber", func() bool { return tr.hub.Len() == 1 })
	s := dialSensor(t, tr.url, tr.tok)
	// Every raw spelling pushed, and the canonical forms it must not
	// show in either.
	pushed := []string{
		"::ffff:203.0.113.78", "198.51.100.23", "2001:DB8:0:0:1::5",
		"2001:0db8:0001:0002:0000:0000:0000:0009", "2001:db8:3:4::7", "192.0.2.45",
		"fe80::1234", "100.64.1.2", "203.0.113.99", "203.000.113.078", "::ffff:c633:6417",
		"2001:db8:5:6::abcd",
	}
	ack := s.send(
		inc("ssh_bruteforce:::ffff:203.0.113.78:x", map[string]any{
			"ip":      "::ffff:203.0.113.78",
			"city":    "near 198.51.100.23",
			"org":     "AS64500 2001:DB8:0:0:1::5 hosting",
			"title":   "probe from 2001:0db8:0001:0002:0000:0000:0000:0009",
			"summary": "from [2001:db8:3:4::7]:22, then 192.0.2.45:2222 and ::ffff:c633:6417.",
			"tags":    []string{"100.64.1.2", "tor-exit"},
			"action":  "not blocked: 198.51.100.23",
			"evidence": map[string]any{
				"users": []string{"root@fe80::1234%eth0"}, "paths": []string{"/x?ip=203.000.113.078"},
				"user_agents": []string{"curl (203.0.113.99)"}, "argv": []string{"ssh", "2001:db8:5:6::abcd"},
				"dst": "192.0.2.45:443",
			},
		}),
		inc("v6", map[string]any{"ip": "2001:DB8:0:0:1::5"}),
	)
	if ack.Accepted != 2 {
		t.Fatalf("ack %+v", ack)
	}
	var frames strings.Builder
	ev, in := st.nextIncident(wait)
	frames.WriteString(ev.data)
	ev, _ = st.nextIncident(wait)
	frames.WriteString(ev.data)
	if in.IP != "203.0.113.0" {
		t.Errorf("mapped address masked to %q, want 203.0.113.0 (as IPv4)", in.IP)
	}
	if !strings.Contains(in.Summary, "[2001:db8:3::]:22") || !strings.Contains(in.Summary, "192.0.2.0:2222") {
		t.Errorf("masked summary %q keeps the masked addresses in place", in.Summary)
	}

	get := func(path string) string {
		resp, err := http.Get(tr.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	rec := httptest.NewRecorder()
	tr.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	// The stream's file store, every file of it (message blocks are
	// written uncompressed, and fsynced before the ack).
	var history strings.Builder
	_ = filepath.WalkDir(filepath.Join(tr.dir, "nats"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			history.Write(b)
		}
		return nil
	})
	if !strings.Contains(history.String(), "203.0.113.0") {
		t.Fatal("the stream's store does not hold the masked incident")
	}
	published := map[string]string{
		"stream": frames.String(), "feed": get("/api/live-feed"), "geojson": get("/api/live-feed.geojson"),
		"stats": get("/api/stats"), "history": history.String(), "metrics": rec.Body.String(),
	}
	var forbidden []string
	for _, p := range pushed {
		forbidden = append(forbidden, p, strings.ToLower(p))
		if a, err := netip.ParseAddr(strings.ReplaceAll(p, ".000.", ".0.")); err == nil {
			forbidden = append(forbidden, a.String(), a.Unmap().String(), a.StringExpanded())
		}
	}
	forbidden = append(forbidden, "203.0.113.78", "113.78", "198.51.100.23", "1:0:0:5", "2:0:0:0:0:9", "1:2::9", "3:4::7", "fe80::1234", "c633:6417", "198.51.100.23")
	for where, text := range published {
		low := strings.ToLower(text)
		for _, f := range forbidden {
			if strings.Contains(low, strings.ToLower(f)) {
				t.Errorf("%s shows %q", where, f)
			}
		}
	}
}

func TestBidiAndZeroWidthCleanedOnIngest(t *testing.T) {
	tr := startRelay(t, Config{})
	st := openStream(t, tr.url, streamOpts{})
	waitFor(t, "subscriber", func() bool { return tr.hub.Len() == 1 })
	s := dialSensor(t, tr.url, tr.tok)
	s.send(inc("bidi\u200b", map[string]any{
		"summary":  "invoice\u202egpj.exe",
		"city":     "\ufeffBerlin",
		"evidence": map[string]any{"users": []string{"ad\u200dmin"}, "paths": []string{"/\u2066x\u2069"}},
	}))
	ev, in := st.nextIncident(wait)
	for _, r := range ev.data {
		if incidentFormatChar(r) {
			t.Fatalf("stream carries %U: %s", r, ev.data)
		}
	}
	if in.Summary != `invoice\u202egpj.exe` || in.City != `\ufeffBerlin` || in.ID != `bidi\u200b` ||
		in.Evidence.Users[0] != `ad\u200dmin` || in.Evidence.Paths[0] != `/\u2066x\u2069` {
		t.Fatalf("not shown as escapes: %+v %+v", in, in.Evidence)
	}
}

func incidentFormatChar(r rune) bool {
	return r == 0x61c || r == 0xfeff || r == 0x2060 || r >= 0x200b && r <= 0x200f ||
		r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

func TestMaskAddrs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"no address here", "no address here"},
		{"from 203.0.113.78", "from 203.0.113.0"},
		{"203.0.113.78:22", "203.0.113.0:22"},
		{"leading zeros 203.000.113.078.", "leading zeros 203.0.113.0."},
		{"::ffff:203.0.113.78", "203.0.113.0"},
		{"::FFFF:C633:6417", "198.51.100.0"},
		{"2001:DB8:0:0:1::5", "2001:db8::"},
		{"2001:0db8:0001:0002:0000:0000:0000:0009", "2001:db8:1::"},
		{"[2001:db8:3:4::7]:22", "[2001:db8:3::]:22"},
		{"fe80::1%eth0", "fe80::%eth0"},
		{"addr:2001:db8:9:9::1, next", "addr:2001:db8:9::, next"},
		{"end 2001:db8:9:9::1.", "end 2001:db8:9::."},
		{"a 1.2.3.4 b 5.6.7.8", "a 1.2.3.0 b 5.6.7.0"},
		{"version 1.2.3 and 256.1.1.1", "version 1.2.3 and 256.1.1.1"},
		{"time 14:32:01 mac 00:1a:2b:3c:4d:5e", "time 14:32:01 mac 00:1a:2b:3c:4d:5e"},
		{"12345.6.7.8", "12345.6.7.8"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := maskAddrs(tt.in); got != tt.want {
				t.Fatalf("maskAddrs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzMaskAddrs: masking never panics, is idempotent (what it leaves
// holds no address it would still mask), and leaves text without digits
// or colons alone.
func FuzzMaskAddrs(f *testing.F) {
	for _, s := range []string{"from 203.0.113.78:22", "[2001:db8::1]:22", "::ffff:1.2.3.4", "1.2.3.4.5.6.7.8", ":::::1.2.3.4", "fe80::1%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := maskAddrs(s)
		if again := maskAddrs(out); again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, out, again)
		}
		if !strings.ContainsAny(s, "0123456789:") && out != s {
			t.Fatalf("changed text without digits or colons: %q -> %q", s, out)
		}
	})
}
