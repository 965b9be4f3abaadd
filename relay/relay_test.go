package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/attackmap/attackmap/incident"
)

const wait = 10 * time.Second

// Both ways of serving: httptest, and Relay.Serve on a real listener.
var servers = []struct {
	name  string
	start func(t *testing.T, cfg Config) *testRelay
}{
	{"httptest", startRelay},
	{"serve", func(t *testing.T, cfg Config) *testRelay {
		tr, _, _ := serveRelay(t, cfg)
		return tr
	}},
}

func TestIngestReachesSubscribersStamped(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			tr := srv.start(t, Config{})
			st := openStream(t, tr.url, streamOpts{})
			if st.status != 200 {
				t.Fatalf("status %d", st.status)
			}
			for k, want := range map[string]string{
				"Content-Type": "text/event-stream; charset=utf-8", "X-Accel-Buffering": "no",
			} {
				if got := st.header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if !strings.Contains(st.header.Get("Cache-Control"), "no-cache") {
				t.Errorf("Cache-Control %q", st.header.Get("Cache-Control"))
			}
			waitFor(t, "subscriber", func() bool { return tr.hub.Len() == 1 })
			s := dialSensor(t, tr.url, tr.tok)
			ack := s.send(inc("a", map[string]any{"host": "liar", "target": map[string]any{"lat": 1, "lon": 2}}), inc("b", nil), inc("c", nil))
			if ack.Accepted != 3 || len(ack.Rejected) != 0 {
				t.Fatalf("ack %+v", ack)
			}
			for i, id := range []string{"a", "b", "c"} {
				ev, in := st.nextIncident(wait)
				if ev.id != strconv.Itoa(i+1) || in.ID != id {
					t.Fatalf("event %d: id %s incident %s", i, ev.id, in.ID)
				}
				if in.Host != "web-1" || in.Target == nil || in.Target.Lat != 50.11 || in.Target.Lon != 8.68 {
					t.Fatalf("not stamped from the token: host %q target %+v", in.Host, in.Target)
				}
			}
		})
	}
}

func TestBadTokenClosesWith1008(t *testing.T) {
	tr := startRelay(t, Config{})
	for _, tc := range []struct{ name, tok, reason string }{
		{"wrong", "not-the-token", "bad token"},
		{"missing", "", "missing token"},
		{"almost", tr.tok[:len(tr.tok)-1], "bad token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialIngest(tr.url, tc.tok)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			_, _, err = c.Read(context.Background())
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, tc.reason) {
				t.Fatalf("got %v, want 1008 %q", err, tc.reason)
			}
		})
	}
}

func TestOversizeClosesWith1009(t *testing.T) {
	tr := startRelay(t, Config{})
	big := `{"type":"incidents","batch":1,"incidents":[{"id":"x","summary":"` + strings.Repeat("a", incident.MaxMessageBytes) + `"}]}`
	many := make([]json.RawMessage, incident.MaxBatchIncidents+1)
	for i := range many {
		many[i] = inc(fmt.Sprint("m", i), nil)
	}
	manyMsg, _ := json.Marshal(incident.Batch{Type: "incidents", Batch: 1, Incidents: many})
	for _, tc := range []struct {
		name string
		msg  []byte
	}{{"256KiB", []byte(big)}, {"101 incidents", manyMsg}} {
		t.Run(tc.name, func(t *testing.T) {
			s := dialSensor(t, tr.url, tr.tok)
			_, err := s.sendRaw(websocket.MessageText, tc.msg)
			if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
				t.Fatalf("got %v, want close 1009", err)
			}
		})
	}
	if n := tr.store.seq; n != 0 {
		t.Fatalf("%d incidents entered from refused messages", n)
	}
}

func TestMalformedIncidentRejectedByIndex(t *testing.T) {
	tr := startRelay(t, Config{})
	st := openStream(t, tr.url, streamOpts{})
	waitFor(t, "subscriber", func() bool { return tr.hub.Len() == 1 })
	s := dialSensor(t, tr.url, tr.tok)
	ack := s.send(
		inc("good-1", nil),
		inc("bad-sev", map[string]any{"severity": "hgih"}),
		json.RawMessage(`"just a string"`),
		inc("bad-ip", map[string]any{"ip": "999.1.1.1"}),
		inc("crlf", map[string]any{"title": "a\r\nevent: hack\r\ndata: x"}),
		inc("huge", map[string]any{"lat": json.Number("1e400")}),
		inc("good-2", nil),
	)
	if ack.Accepted != 2 {
		t.Fatalf("accepted %d, want 2: %+v", ack.Accepted, ack)
	}
	wantIdx := []int{1, 2, 3, 4, 5}
	if len(ack.Rejected) != len(wantIdx) {
		t.Fatalf("rejected %+v", ack.Rejected)
	}
	for i, rj := range ack.Rejected {
		if rj.Index != wantIdx[i] || rj.Error == "" || strings.ContainsAny(rj.Error, "\r\n") {
			t.Errorf("rejection %d: %+v", i, rj)
		}
	}
	if !strings.Contains(ack.Rejected[0].Error, `severity: unknown value "hgih"`) {
		t.Errorf("severity error %q", ack.Rejected[0].Error)
	}
	for _, want := range []string{"good-1", "good-2"} {
		if _, in := st.nextIncident(wait); in.ID != want {
			t.Fatalf("got %s, want %s", in.ID, want)
		}
	}
	st.expectQuiet(100 * time.Millisecond)
}

func TestDuplicatesDroppedUpdatesBroadcast(t *testing.T) {
	tr := startRelay(t, Config{})
	st := openStream(t, tr.url, streamOpts{})
	waitFor(t, "subscriber", func() bool { return tr.hub.Len() == 1 })
	s := dialSensor(t, tr.url, tr.tok)
	first := inc("dup", nil)
	if ack := s.send(first, first); ack.Accepted != 2 {
		t.Fatalf("ack %+v: exact repeats count as accepted", ack)
	}
	if ack := s.send(first); ack.Accepted != 1 {
		t.Fatalf("redelivery ack %+v", ack)
	}
	update := inc("dup", map[string]any{"count": 40, "last_seen": incTS(time.Minute)})
	if ack := s.send(update); ack.Accepted != 1 {
		t.Fatalf("update ack %+v", ack)
	}
	ev1, in1 := st.nextIncident(wait)
	ev2, in2 := st.nextIncident(wait)
	if in1.Count != 23 || in2.Count != 40 || ev1.id != "1" || ev2.id != "2" {
		t.Fatalf("got %s/%d and %s/%d", ev1.id, in1.Count, ev2.id, in2.Count)
	}
	st.expectQuiet(100 * time.Millisecond)
	var feed []incident.Incident
	getJSON(t, tr.url+"/api/live-feed", &feed)
	if len(feed) != 1 || feed[0].Count != 40 {
		t.Fatalf("feed %+v, want the updated copy once", feed)
	}
}

// A client that disconnects and reconnects with Last-Event-ID while a sensor
// keeps publishing receives every sequence number exactly once.
func TestResumeAcrossReconnectNoGapNoDuplicate(t *testing.T) {
	tr := startRelay(t, Config{})
	const total = 300
	s := dialSensor(t, tr.url, tr.tok)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 0; i < total; i += 3 {
			s.send(inc(fmt.Sprint("r", i), nil), inc(fmt.Sprint("r", i+1), nil), inc(fmt.Sprint("r", i+2), nil))
		}
	}()
	var got []uint64
	last := ""
	for conn := 0; len(got) < total; conn++ {
		o := streamOpts{header: http.Header{}}
		switch {
		case conn == 0:
			o.query = "?lastEventId=0" // everything from the start
		case conn%2 == 1:
			o.header.Set("Last-Event-ID", last)
		default:
			o.query = "?lastEventId=" + last
		}
		st := openStream(t, tr.url, o)
		for k := 0; k < 37 && len(got) < total; k++ {
			ev, _ := st.nextIncident(wait)
			n, _ := strconv.ParseUint(ev.id, 10, 64)
			got = append(got, n)
			last = ev.id
		}
		st.conn.Close()
	}
	<-pubDone
	for i, n := range got {
		if n != uint64(i+1) {
			t.Fatalf("event %d has id %d: gap or duplicate (ids %v...)", i, n, got[max(0, i-3):i+1])
		}
	}
}

func TestResumeFromFutureOrGarbageID(t *testing.T) {
	tr := startRelay(t, Config{})
	s := dialSensor(t, tr.url, tr.tok)
	s.send(inc("a", nil))
	st := openStream(t, tr.url, streamOpts{header: http.Header{"Last-Event-Id": {"99999"}}})
	waitFor(t, "subscriber", func() bool { return tr.hub.Len() == 1 })
	s.send(inc("b", nil))
	if ev, in := st.nextIncident(wait); in.ID != "b" || ev.id != "2" {
		t.Fatalf("future id: got %s %s, want live from 2", ev.id, in.ID)
	}
	bad, err := tryStream(tr.url, streamOpts{header: http.Header{"Last-Event-Id": {"abc\x01"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.conn.Close()
	if bad.status != 400 {
		t.Fatalf("garbage Last-Event-ID: status %d, want 400", bad.status)
	}
}

// A subscriber that stops reading is cut off once its queue is full, while
// the one beside it keeps receiving every incident promptly.
func TestSlowSubscriberCutOffOthersUnaffected(t *testing.T) {
	tr := startRelay(t, Config{SubscriberQueue: 16, SendBuffer: 8 << 10, WriteTimeout: 30 * time.Second})
	slow := openStream(t, tr.url, streamOpts{rcvBuf: 4 << 10, local: "127.0.0.2"})
	fast := openStream(t, tr.url, streamOpts{local: "127.0.0.3"})
	waitFor(t, "subscribers", func() bool { return tr.hub.Len() == 2 })
	s := dialSensor(t, tr.url, tr.tok)
	pad := strings.Repeat("x", 900)
	const total = 200
	sent := make([]time.Time, total)
	var mu sync.Mutex
	pubDone := make(chan struct{})
	defer func() { <-pubDone }() // the last acks may come after the events
	go func() {
		defer close(pubDone)
		for i := 0; i < total; i += 10 {
			batch := make([]json.RawMessage, 10)
			for j := range batch {
				batch[j] = inc(fmt.Sprint("s", i+j), map[string]any{"summary": pad})
			}
			mu.Lock()
			for j := range batch {
				sent[i+j] = time.Now()
			}
			mu.Unlock()
			s.send(batch...)
		}
	}()
	var worst time.Duration
	for i := range total {
		ev, _ := fast.nextIncident(wait)
		if ev.id != strconv.Itoa(i+1) {
			t.Fatalf("fast subscriber: id %s, want %d", ev.id, i+1)
		}
		mu.Lock()
		worst = max(worst, ev.at.Sub(sent[i]))
		mu.Unlock()
	}
	// The write timeout is 30 s: if the relay waited on the slow socket,
	// the fast one would have stalled for that long.
	if worst > 5*time.Second {
		t.Errorf("fast subscriber's worst latency %v: it was held up", worst)
	}
	waitFor(t, "slow subscriber cut off", func() bool { return tr.hub.Len() == 1 })
	// The slow client sees its stream end after what fit in the buffers.
	n := 0
	for {
		ev, err := slow.read(wait)
		if err != nil {
			if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("slow stream ended with %v, want EOF", err)
			}
			break
		}
		if ev.comment == "" {
			n++
		}
	}
	if n >= total {
		t.Fatalf("slow subscriber got all %d events; it was not cut off", n)
	}
	if got := metricValue(t, tr, `attackmap_relay_subscriber_disconnects_total{reason="slow"}`); got != 1 {
		t.Fatalf("slow disconnects metric %v, want 1", got)
	}
}

func TestCORS(t *testing.T) {
	tr := startRelay(t, Config{AllowOrigins: []string{"https://map.example.org"}})
	get := func(method, path, origin string, h map[string]string) *http.Response {
		req, _ := http.NewRequest(method, tr.url+path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, path := range []string{"/api/live-feed", "/api/live-feed.geojson", "/api/stats"} {
		t.Run(path, func(t *testing.T) {
			resp := get("GET", path, "https://map.example.org", nil)
			if resp.Header.Get("Access-Control-Allow-Origin") != "https://map.example.org" || !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("allowed origin: %v", resp.Header)
			}
			resp = get("GET", path, "https://evil.example", nil)
			if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" || resp.Header.Get("Vary") == "" {
				t.Errorf("refused origin got ACAO %q, Vary %q", v, resp.Header.Get("Vary"))
			}
			resp = get("OPTIONS", path, "https://map.example.org", map[string]string{"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "last-event-id"})
			if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://map.example.org" ||
				!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") ||
				!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID") {
				t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
			}
			resp = get("OPTIONS", path, "https://evil.example", map[string]string{"Access-Control-Request-Method": "GET"})
			if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("refused preflight: %d %v", resp.StatusCode, resp.Header)
			}
			resp = get("OPTIONS", path, "https://map.example.org", map[string]string{"Access-Control-Request-Method": "POST"})
			if resp.StatusCode != 403 {
				t.Errorf("POST preflight: %d", resp.StatusCode)
			}
		})
	}
	t.Run("stream", func(t *testing.T) {
		st := openStream(t, tr.url, streamOpts{header: http.Header{"Origin": {"https://map.example.org"}}})
		if st.header.Get("Access-Control-Allow-Origin") != "https://map.example.org" {
			t.Errorf("stream ACAO %q", st.header.Get("Access-Control-Allow-Origin"))
		}
		st2 := openStream(t, tr.url, streamOpts{header: http.Header{"Origin": {"https://evil.example"}}})
		if v := st2.header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("stream ACAO for refused origin %q", v)
		}
	})
	t.Run("ingest has no CORS", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		h := http.Header{"Authorization": {"Bearer " + tr.tok}, "Origin": {"https://map.example.org"}}
		c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(tr.url, "http")+"/api/ingest", &websocket.DialOptions{HTTPHeader: h})
		if err == nil {
			c.CloseNow()
			t.Fatal("cross-origin browser upgrade accepted")
		}
		if resp == nil || resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("got %v %v", resp, err)
		}
	})
	t.Run("star only when configured", func(t *testing.T) {
		star := startRelay(t, Config{AllowOrigins: []string{"*"}})
		req, _ := http.NewRequest("GET", star.url+"/api/stats", nil)
		req.Header.Set("Origin", "https://anyone.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("ACAO %q, want *", resp.Header.Get("Access-Control-Allow-Origin"))
		}
		none := get("GET", "/api/stats", "https://anyone.example", nil)
		if none.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatal("ACAO sent without configuration")
		}
	})
	if _, err := New(Config{AllowOrigins: []string{"https://x.example/path"}}); err == nil {
		t.Fatal("origin with a path accepted")
	}
}

func TestHistoryKeptAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	tr := startRelay(t, Config{DataDir: dir})
	s := dialSensor(t, tr.url, tr.tok)
	s.send(inc("h1", nil), inc("h2", map[string]any{"source": "web_scan", "country": "US", "lat": nil, "lon": nil}), inc("h3", nil))
	s.send(inc("h1", map[string]any{"count": 50})) // update: seq 4
	var before []json.RawMessage
	getJSON(t, tr.url+"/api/live-feed", &before)
	var statsBefore Stats
	getJSON(t, tr.url+"/api/stats", &statsBefore)
	tok := tr.tok
	s.c.CloseNow()
	tr.close()

	tr2 := startRelay(t, Config{DataDir: dir, TokenFile: dir + "/tokens"})
	tr2.tok = tok
	var after []json.RawMessage
	h := getJSON(t, tr2.url+"/api/live-feed", &after)
	if fmt.Sprintf("%s", after) != fmt.Sprintf("%s", before) || len(after) != 3 {
		t.Fatalf("feed after restart:\n%v\nbefore:\n%v", after, before)
	}
	if h.Get("Last-Event-ID") != "4" {
		t.Fatalf("feed Last-Event-ID %q, want 4", h.Get("Last-Event-ID"))
	}
	var statsAfter Stats
	getJSON(t, tr2.url+"/api/stats", &statsAfter)
	// The incidents are from 2026-03-22; stats count by ts, so compare
	// the windows as a whole.
	statsBefore.GeneratedAt, statsAfter.GeneratedAt = time.Time{}, time.Time{}
	if fmt.Sprint(statsAfter) != fmt.Sprint(statsBefore) {
		t.Fatalf("stats after restart %+v, before %+v", statsAfter, statsBefore)
	}
	// Resume from before the restart, through the history.
	st := openStream(t, tr2.url, streamOpts{header: http.Header{"Last-Event-Id": {"1"}}})
	for _, want := range []string{"2", "3", "4"} {
		if ev, _ := st.nextIncident(wait); ev.id != want {
			t.Fatalf("resume after restart: id %s, want %s", ev.id, want)
		}
	}
	// New incidents continue the sequence; a redelivery is still a repeat.
	s2 := dialSensor(t, tr2.url, tr2.tok)
	s2.send(inc("h3", nil), inc("h5", nil))
	if ev, in := st.nextIncident(wait); ev.id != "5" || in.ID != "h5" {
		t.Fatalf("after restart got %s %s, want 5 h5", ev.id, in.ID)
	}
}

func TestStatsCountRecentIncidents(t *testing.T) {
	now := incTime
	tr := startRelay(t, Config{Now: func() time.Time { return now }})
	s := dialSensor(t, tr.url, tr.tok)
	ts := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }
	s.send(
		inc("s1", map[string]any{"ts": ts(10 * time.Second)}),
		inc("s2", map[string]any{"ts": ts(30 * time.Minute), "source": "port_scan", "severity": "low", "country": "US", "geo_source": "maxmind"}),
		inc("s3", map[string]any{"ts": ts(5 * time.Hour), "country": nil, "lat": nil, "lon": nil, "geo_source": nil}),
		inc("s4", map[string]any{"ts": ts(30 * time.Hour)}),
		inc("s1", map[string]any{"ts": ts(10 * time.Second), "count": 99}), // update: counted once
	)
	var st Stats
	getJSON(t, tr.url+"/api/stats", &st)
	check := func(w string, total int, src map[string]int) {
		got := st.Windows[w]
		if got.Total != total || fmt.Sprint(got.BySource) != fmt.Sprint(src) {
			t.Errorf("%s: %+v, want total %d by_source %v", w, got, total, src)
		}
	}
	check("1m", 1, map[string]int{"ssh_bruteforce": 1})
	check("1h", 2, map[string]int{"ssh_bruteforce": 1, "port_scan": 1})
	check("24h", 3, map[string]int{"ssh_bruteforce": 2, "port_scan": 1})
	if c := st.Windows["24h"].ByCountry; c["DE"] != 1 || c["US"] != 1 || len(c) != 2 {
		t.Errorf("by_country %v", c)
	}
	if sv := st.Windows["1h"].BySeverity; sv["high"] != 1 || sv["low"] != 1 {
		t.Errorf("by_severity %v", sv)
	}
	if fmt.Sprint(st.GeoSources) != "[dbip maxmind]" {
		t.Errorf("geo_sources %v", st.GeoSources)
	}
}

func TestGeoJSON(t *testing.T) {
	tr := startRelay(t, Config{})
	s := dialSensor(t, tr.url, tr.tok)
	s.send(inc("g1", map[string]any{"lat": -33.9, "lon": 151.2}), inc("g2", map[string]any{"lat": nil, "lon": nil}), inc("g3", map[string]any{"lat": 0, "lon": 0}))
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Type     string `json:"type"`
			ID       int    `json:"id"`
			Geometry struct {
				Type        string    `json:"type"`
				Coordinates []float64 `json:"coordinates"`
			} `json:"geometry"`
			Properties incident.Incident `json:"properties"`
		} `json:"features"`
	}
	resp, err := http.Get(tr.url + "/api/live-feed.geojson")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/geo+json" {
		t.Errorf("content type %q", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&fc); err != nil {
		t.Fatal(err)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != 2 {
		t.Fatalf("%+v", fc)
	}
	f := fc.Features[0]
	if f.Type != "Feature" || f.Geometry.Type != "Point" || fmt.Sprint(f.Geometry.Coordinates) != "[151.2 -33.9]" || f.Properties.ID != "g1" || f.ID != 1 {
		t.Fatalf("feature %+v", f)
	}
	if g := fc.Features[1]; g.Properties.ID != "g3" || fmt.Sprint(g.Geometry.Coordinates) != "[0 0]" {
		t.Fatalf("0,0 is a real place: %+v", g)
	}
}

func TestMaskingApplied(t *testing.T) {
	tr := startRelay(t, Config{MaskIP: true, CoarseTarget: true})
	st := openStream(t, tr.url, streamOpts{})
	waitFor(t, "subscriber", func() bool { return tr.hub.Len() == 1 })
	s := dialSensor(t, tr.url, tr.tok)
	s.send(
		inc("ssh_bruteforce:185.220.101.34:2026-03-22T14:32Z", nil),
		inc("v6:2001:db8:abcd:12::1", map[string]any{"ip": "2001:db8:abcd:12::1", "summary": "from 2001:db8:abcd:12::1"}),
	)
	_, a := st.nextIncident(wait)
	_, b := st.nextIncident(wait)
	if a.IP != "185.220.101.0" || b.IP != "2001:db8:abcd::" {
		t.Fatalf("ips %q %q", a.IP, b.IP)
	}
	if strings.Contains(a.ID, "185.220") || strings.Contains(a.Summary, "185.220.101.34") || strings.Contains(b.Summary, "12::1") {
		t.Fatalf("address leaked: %q %q %q", a.ID, a.Summary, b.Summary)
	}
	if a.Target.Lat != 50 || a.Target.Lon != 9 {
		t.Fatalf("target %+v, want 50, 9", a.Target)
	}
	// An update of the same incident keeps the same masked id.
	s.send(inc("ssh_bruteforce:185.220.101.34:2026-03-22T14:32Z", map[string]any{"count": 99}))
	_, a2 := st.nextIncident(wait)
	if a2.ID != a.ID {
		t.Fatalf("masked id changed: %q then %q", a.ID, a2.ID)
	}
	var feed []incident.Incident
	getJSON(t, tr.url+"/api/live-feed", &feed)
	if len(feed) != 2 || feed[1].IP != "185.220.101.0" {
		t.Fatalf("feed %+v", feed)
	}
}

func TestGarbageNeverCrashesNorReachesSubscribers(t *testing.T) {
	tr := startRelay(t, Config{})
	st := openStream(t, tr.url, streamOpts{})
	waitFor(t, "subscriber", func() bool { return tr.hub.Len() == 1 })
	deep := `{"type":"incidents","batch":1,"incidents":[` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `]}`
	for _, tc := range []struct {
		name string
		typ  websocket.MessageType
		msg  string
		code websocket.StatusCode
	}{
		{"binary", websocket.MessageBinary, `{"type":"incidents"}`, websocket.StatusUnsupportedData},
		{"not json", websocket.MessageText, "\x00\x01garbage", websocket.StatusInvalidFramePayloadData},
		{"deep json", websocket.MessageText, deep, websocket.StatusInvalidFramePayloadData},
		{"huge batch number", websocket.MessageText, `{"type":"incidents","batch":1e999,"incidents":[]}`, websocket.StatusInvalidFramePayloadData},
		{"wrong type", websocket.MessageText, `{"type":"ack","batch":1}`, websocket.StatusInvalidFramePayloadData},
		{"truncated", websocket.MessageText, `{"type":"incidents","batch":1,"incidents":[{"id":"a"`, websocket.StatusInvalidFramePayloadData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dialSensor(t, tr.url, tr.tok)
			_, err := s.sendRaw(tc.typ, []byte(tc.msg))
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != tc.code || ce.Reason == "" {
				t.Fatalf("got %v, want close %v with a reason", err, tc.code)
			}
		})
	}
	// Invalid UTF-8 inside one incident rejects that incident by index; the
	// rest of the batch goes on (one bad line must not block a sensor).
	s := dialSensor(t, tr.url, tr.tok)
	good := string(inc("utf8-neighbour", nil))
	ack, err := s.sendRaw(websocket.MessageText, []byte("{\"type\":\"incidents\",\"batch\":7,\"incidents\":[{\"id\":\"\xff\xfe\"},"+good+"]}"))
	if err != nil || ack.Accepted != 1 || len(ack.Rejected) != 1 || ack.Rejected[0].Index != 0 ||
		!strings.Contains(ack.Rejected[0].Error, "UTF-8") {
		t.Fatalf("invalid UTF-8 in one incident: ack %+v, err %v", ack, err)
	}
	if _, in := st.nextIncident(wait); in.ID != "utf8-neighbour" {
		t.Fatalf("got %s", in.ID)
	}
	// Per-incident garbage inside a well-formed batch.
	ack = s.send(
		json.RawMessage(`{"id":"x","severity":"high","ip":"1.2.3.4","ts":"2026-03-22T14:32:01Z","source":"a","lat":1e308,"lon":1e308}`),
		json.RawMessage(`{"id":"y\u0000","source":"a","severity":"high","ip":"1.2.3.4","ts":"2026-03-22T14:32:01Z"}`),
		json.RawMessage(`{"id":"z","source":"a","severity":"high","ip":"1.2.3.4","ts":"2026-03-22T14:32:01Z","count":99999999999999999999999}`),
		json.RawMessage(`{"id":"w","source":"a","severity":"high","ip":"1.2.3.4","ts":"2026-03-22T14:32:01Z","evidence":{"users":[[[[[[["deep"]]]]]]]}}`),
		json.RawMessage(`[]`),
		json.RawMessage(`null`),
	)
	if ack.Accepted != 0 || len(ack.Rejected) != 6 {
		t.Fatalf("ack %+v", ack)
	}
	st.expectQuiet(100 * time.Millisecond)
	// Still alive and serving.
	s.send(inc("after", nil))
	if _, in := st.nextIncident(wait); in.ID != "after" {
		t.Fatalf("got %s", in.ID)
	}
}

func TestSubscriberLimits(t *testing.T) {
	t.Run("per address 429", func(t *testing.T) {
		tr := startRelay(t, Config{MaxSubscribersPerAddr: 2})
		for range 2 {
			if st := openStream(t, tr.url, streamOpts{local: "127.0.0.7"}); st.status != 200 {
				t.Fatalf("status %d", st.status)
			}
		}
		st := openStream(t, tr.url, streamOpts{local: "127.0.0.7"})
		if st.status != 429 || st.header.Get("Retry-After") == "" {
			t.Fatalf("third from one address: %d Retry-After %q", st.status, st.header.Get("Retry-After"))
		}
		if st := openStream(t, tr.url, streamOpts{local: "127.0.0.8"}); st.status != 200 {
			t.Fatalf("other address: %d", st.status)
		}
	})
	t.Run("total 503", func(t *testing.T) {
		tr := startRelay(t, Config{MaxSubscribers: 3, MaxSubscribersPerAddr: -1})
		var first *stream
		for i := range 3 {
			st := openStream(t, tr.url, streamOpts{local: fmt.Sprintf("127.0.1.%d", i+1)})
			if st.status != 200 {
				t.Fatalf("status %d", st.status)
			}
			first = st
		}
		st := openStream(t, tr.url, streamOpts{local: "127.0.1.9"})
		if st.status != 503 || st.header.Get("Retry-After") == "" {
			t.Fatalf("over the total: %d Retry-After %q", st.status, st.header.Get("Retry-After"))
		}
		// A slot frees when a subscriber leaves (found by a write error:
		// heartbeats would do it; a publish does it now).
		first.conn.Close()
		s := dialSensor(t, tr.url, tr.tok)
		waitFor(t, "slot freed", func() bool {
			s.send(inc(fmt.Sprint("free", time.Now().UnixNano()), nil))
			return tr.hub.Len() == 2
		})
		if st := openStream(t, tr.url, streamOpts{local: "127.0.1.9"}); st.status != 200 {
			t.Fatalf("after a slot freed: %d", st.status)
		}
	})
}

func TestHeartbeat(t *testing.T) {
	tr := startRelay(t, Config{Heartbeat: 20 * time.Millisecond})
	st := openStream(t, tr.url, streamOpts{})
	if ev := st.next(wait); ev.comment != "keep-alive" {
		t.Fatalf("got %+v, want a keep-alive comment", ev)
	}
}

// A ResponseWriter that hides http.Hijacker (some middleware, HTTP/2) gets
// the goroutine-backed subscriber, with the same stream.
func TestStreamWithoutHijack(t *testing.T) {
	tr := newTestRelay(t, Config{})
	t.Cleanup(func() { tr.Relay.Close() })
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.Handler().ServeHTTP(plainWriter{w}, r)
	}))
	tr.url = srv
	// The ingest WebSocket needs a hijack too: publish in process.
	publish := func(raw json.RawMessage) {
		if ack := tr.Publish(Host{Name: "web-1"}, []json.RawMessage{raw}); ack.Accepted != 1 {
			t.Fatalf("ack %+v", ack)
		}
	}
	publish(inc("p1", nil))
	st := openStream(t, tr.url, streamOpts{query: "?lastEventId=0"})
	if te := st.header.Get("Transfer-Encoding"); te != "chunked" {
		t.Fatalf("Transfer-Encoding %q: the fallback did not run", te)
	}
	// Chunked framing: strip chunk sizes by reading through net/http.
	st.conn.Close()
	resp, err := (&http.Client{Timeout: wait}).Get(tr.url + "/api/live-feed/stream?lastEventId=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sw := &stream{t: t, br: bufioReader(resp.Body), conn: nopDeadlineConn{}}
	if ev, in := sw.nextIncident(wait); in.ID != "p1" || ev.id != "1" {
		t.Fatalf("got %s %s", ev.id, in.ID)
	}
	publish(inc("p2", nil))
	if _, in := sw.nextIncident(wait); in.ID != "p2" {
		t.Fatalf("got %s", in.ID)
	}
}

func TestPublishInProcess(t *testing.T) {
	tr := startRelay(t, Config{})
	st := openStream(t, tr.url, streamOpts{})
	waitFor(t, "subscriber", func() bool { return tr.hub.Len() == 1 })
	ack := tr.Publish(Host{Name: "local", Target: &incident.Location{Lat: 1.5, Lon: 2.5}}, []json.RawMessage{inc("ip1", nil), json.RawMessage(`{`)})
	if ack.Accepted != 1 || len(ack.Rejected) != 1 || ack.Rejected[0].Index != 1 {
		t.Fatalf("ack %+v", ack)
	}
	if _, in := st.nextIncident(wait); in.Host != "local" || in.Target.Lat != 1.5 {
		t.Fatalf("%+v", in)
	}
}

func TestSiteRoutes(t *testing.T) {
	tr := startRelay(t, Config{})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(tr.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/live" {
		t.Fatalf("/: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, want := range map[string]int{"/live": 200, "/healthz": 200, "/metrics": 404, "/nope": 404} {
		resp, err := http.Get(tr.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	site := startRelay(t, Config{Site: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "map at "+r.URL.Path)
	})})
	resp, err = http.Get(site.url + "/app.js")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "map at /app.js" {
		t.Fatalf("site got %q", b)
	}
}

func TestFeedLimits(t *testing.T) {
	tr := startRelay(t, Config{})
	batch := make([]json.RawMessage, 60)
	for i := range batch {
		batch[i] = inc(fmt.Sprint("f", i), nil)
	}
	dialSensor(t, tr.url, tr.tok).send(batch...)
	var feed []incident.Incident
	getJSON(t, tr.url+"/api/live-feed", &feed)
	if len(feed) != 50 || feed[0].ID != "f10" || feed[49].ID != "f59" {
		t.Fatalf("default feed: %d items from %s", len(feed), feed[0].ID)
	}
	getJSON(t, tr.url+"/api/live-feed?limit=5", &feed)
	if len(feed) != 5 || feed[4].ID != "f59" {
		t.Fatalf("limit=5: %v", feed)
	}
	for _, bad := range []string{"0", "501", "x"} {
		resp, err := http.Get(tr.url + "/api/live-feed?limit=" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("limit=%s: %d", bad, resp.StatusCode)
		}
	}
}

func TestRateLimitSlowsSensorDown(t *testing.T) {
	clock := time.Unix(1e9, 0)
	var mu sync.Mutex
	l := newRateLimits(100, 200, func() time.Time { mu.Lock(); defer mu.Unlock(); return clock })
	if d := l.reserve("a", 200); d != 0 {
		t.Fatalf("burst: wait %v", d)
	}
	if d := l.reserve("a", 50); d != 500*time.Millisecond {
		t.Fatalf("over the burst: wait %v, want 500ms", d)
	}
	if d := l.reserve("b", 100); d != 0 {
		t.Fatalf("buckets are per token: wait %v", d)
	}
	mu.Lock()
	clock = clock.Add(2 * time.Second)
	mu.Unlock()
	if d := l.reserve("a", 100); d != 0 {
		t.Fatalf("after refill: wait %v", d)
	}
}

func TestOneHostCannotDropOrReplaceAnothersIncidents(t *testing.T) {
	tr := startRelay(t, Config{})
	web1, web2, evil := Host{Name: "web-1"}, Host{Name: "web-2"}, Host{Name: "evil"}
	if ack := tr.Publish(web1, []json.RawMessage{inc("same", map[string]any{"count": 10})}); ack.Accepted != 1 {
		t.Fatalf("web-1: %+v", ack)
	}
	// The same scanner hits web-2 in the same minute: same id, its own
	// incident, not a duplicate of web-1's.
	if ack := tr.Publish(web2, []json.RawMessage{inc("same", map[string]any{"count": 5})}); ack.Accepted != 1 {
		t.Fatalf("web-2: %+v", ack)
	}
	// A third sensor reusing the id with a higher count must not replace
	// web-1's copy.
	tr.Publish(evil, []json.RawMessage{inc("same", map[string]any{"count": 999999})})
	var feed []incident.Incident
	getJSON(t, tr.url+"/api/live-feed", &feed)
	counts := map[string]int{}
	for _, in := range feed {
		counts[in.Host] = in.Count
	}
	if len(feed) != 3 || counts["web-1"] != 10 || counts["web-2"] != 5 || counts["evil"] != 999999 {
		t.Fatalf("feed by host: %v (%d items)", counts, len(feed))
	}
	// Updates still match within a host.
	tr.Publish(web1, []json.RawMessage{inc("same", map[string]any{"count": 11})})
	getJSON(t, tr.url+"/api/live-feed", &feed)
	counts = map[string]int{}
	for _, in := range feed {
		counts[in.Host] = in.Count
	}
	if len(feed) != 3 || counts["web-1"] != 11 {
		t.Fatalf("after web-1's update: %v (%d items)", counts, len(feed))
	}
}

// TestUnstoredBatchIsNotAcknowledgedAndIsStoredOnResend breaks the history
// writer (closed, so appends fail): the batch is neither broadcast nor
// acked (an error message, then 1011), and once the history works again
// the sensor's resend is written, acked and broadcast once.
func TestUnstoredBatchIsNotAcknowledgedAndIsStoredOnResend(t *testing.T) {
	tr := startRelay(t, Config{})
	st := openStream(t, tr.url, streamOpts{})
	waitFor(t, "subscriber", func() bool { return tr.hub.Len() == 1 })
	// JetStream refuses every write: no message fits the stream.
	ctx := context.Background()
	sc := tr.nats.stream.CachedInfo().Config
	small := sc
	small.MaxMsgSize = 16
	if _, err := tr.nats.js.UpdateStream(ctx, small); err != nil {
		t.Fatal(err)
	}

	c := dialSensor(t, tr.url, tr.tok)
	msg, _ := json.Marshal(incident.Batch{Type: incident.TypeIncidents, Batch: 1,
		Incidents: []json.RawMessage{inc("unstored", nil)}})
	if err := c.c.Write(context.Background(), websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	code, _, errs, acked := readClose(t, c.c, wait)
	if code != websocket.StatusInternalError || acked || len(errs) != 1 || errs[0].Batch != 1 ||
		!strings.Contains(errs[0].Error, "not stored") {
		t.Fatalf("got close %d, acked %v, errors %+v; want one error for batch 1, no ack, 1011", code, acked, errs)
	}
	if _, err := tr.PublishDurable(Host{Name: "local"}, []json.RawMessage{inc("unstored-2", nil)}); !errors.Is(err, ErrNotStored) {
		t.Fatalf("PublishDurable with a broken history: %v, want ErrNotStored", err)
	}
	st.expectQuiet(100 * time.Millisecond) // nothing unstored is broadcast

	// The stream takes writes again.
	if _, err := tr.nats.js.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	ack := dialSensor(t, tr.url, tr.tok).send(inc("unstored", nil))
	if ack.Accepted != 1 || len(ack.Rejected) != 0 {
		t.Fatalf("resend: ack %+v", ack)
	}
	if n := streamMsgs(t, tr.Relay); n != 1 {
		t.Fatalf("the stream holds %d messages, want the resent incident once", n)
	}
	if _, in := st.nextIncident(wait); in.ID != "unstored" {
		t.Fatalf("broadcast %s", in.ID)
	}
	st.expectQuiet(100 * time.Millisecond) // broadcast once
}
