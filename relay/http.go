package relay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attackmap/attackmap/relay/hub"
)

// Feed limits (DESIGN.md): 50 by default, 500 at most.
const (
	feedDefault    = 50
	feedMax        = 500
	geojsonDefault = 1000
)

// Retry-After values: a full relay (503) frees slots as viewers leave, so
// 10 s; an address over its share (429) needs one of its own streams to
// close, so 30 s.
const (
	retryFull    = "10"
	retryPerAddr = "30"
)

func (r *Relay) routes() http.Handler {
	mux := http.NewServeMux()
	public := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc("GET "+pattern, r.cors(h))
		mux.HandleFunc("OPTIONS "+pattern, r.preflight)
	}
	public("/api/live-feed", r.serveFeed)
	public("/api/live-feed/stream", r.serveStream)
	public("/api/live-feed.geojson", r.serveGeoJSON)
	public("/api/stats", r.serveStats)
	mux.HandleFunc("GET /api/ingest", r.serveIngest)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "ok\n")
	})
	if r.gath != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(r.gath, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("/", r.serveSite)
	return mux
}

// originPolicy is the CORS allow list.
type originPolicy struct {
	any bool
	set map[string]bool
}

func newOriginPolicy(list []string) (originPolicy, error) {
	p := originPolicy{set: map[string]bool{}}
	for _, o := range list {
		if o == "*" {
			p.any = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return p, fmt.Errorf("relay: allow-origin %q: want scheme://host[:port], e.g. https://map.example.org", o)
		}
		p.set[strings.ToLower(o)] = true
	}
	return p, nil
}

// allow returns the Access-Control-Allow-Origin value for origin.
func (p originPolicy) allow(origin string) (string, bool) {
	if origin == "" {
		return "", false
	}
	if p.set[strings.ToLower(origin)] {
		return origin, true
	}
	if p.any {
		return "*", true
	}
	return "", false
}

// cors adds Access-Control-Allow-Origin for allowed origins, always with
// Vary: Origin so caches keep answers for different origins apart.
func (r *Relay) cors(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("X-Content-Type-Options", "nosniff")
		if v, ok := r.origin.allow(req.Header.Get("Origin")); ok {
			h.Set("Access-Control-Allow-Origin", v)
			h.Set("Access-Control-Expose-Headers", "Last-Event-ID")
		}
		next(w, req)
	}
}

// preflight answers OPTIONS for the public GET endpoints.
func (r *Relay) preflight(w http.ResponseWriter, req *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Allow", "GET, HEAD, OPTIONS")
	origin := req.Header.Get("Origin")
	if origin == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	v, ok := r.origin.allow(origin)
	if !ok {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if m := req.Header.Get("Access-Control-Request-Method"); m != "" && m != http.MethodGet && m != http.MethodHead {
		http.Error(w, "method not allowed: the public endpoints are read-only", http.StatusForbidden)
		return
	}
	h.Set("Access-Control-Allow-Origin", v)
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Last-Event-ID, Cache-Control, Accept")
	// Browsers cache the preflight for 10 minutes (Chrome's cap).
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

func parseLimit(req *http.Request, def, max int) (int, error) {
	s := req.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("limit: want a number from 1 to %d", max)
	}
	return n, nil
}

func (r *Relay) recent(limit int, withLoc bool) ([]*entry, uint64) {
	s := r.store
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recent(limit, withLoc), s.seq
}

func apiHeaders(w http.ResponseWriter, contentType string, seq uint64) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-cache")
	// The sequence of the newest incident: open the stream with
	// ?lastEventId=<this> to continue right after this answer, no gap.
	h.Set("Last-Event-ID", strconv.FormatUint(seq, 10))
}

// serveFeed answers /api/live-feed: the newest incidents, oldest first.
func (r *Relay) serveFeed(w http.ResponseWriter, req *http.Request) {
	limit, err := parseLimit(req, feedDefault, feedMax)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	es, seq := r.recent(limit, false)
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range es {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e.json)
	}
	b.WriteString("]\n")
	apiHeaders(w, "application/json; charset=utf-8", seq)
	_, _ = w.Write(b.Bytes())
}

// serveGeoJSON answers /api/live-feed.geojson: an RFC 7946 FeatureCollection
// of Point features ([lon, lat]) for the newest located incidents, each with
// the incident's fields as properties and the relay sequence as id.
// Incidents without a location are left out.
func (r *Relay) serveGeoJSON(w http.ResponseWriter, req *http.Request) {
	limit, err := parseLimit(req, geojsonDefault, r.cfg.RingSize)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	es, seq := r.recent(limit, true)
	apiHeaders(w, "application/geo+json", seq)
	// Written through a small buffer straight to the client rather than
	// built whole: up to the ring size of 16 KiB incidents would be
	// 160 MiB per request, and anyone may ask.
	b := bufio.NewWriterSize(w, 32<<10)
	b.WriteString(`{"type":"FeatureCollection","features":[`)
	for i, e := range es {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"type":"Feature","id":`)
		b.WriteString(strconv.FormatUint(e.seq, 10))
		b.WriteString(`,"geometry":{"type":"Point","coordinates":[`)
		b.WriteString(strconv.FormatFloat(e.lon, 'f', -1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(e.lat, 'f', -1, 64))
		b.WriteString(`]},"properties":`)
		b.Write(e.json)
		b.WriteByte('}')
	}
	b.WriteString("]}\n")
	_ = b.Flush()
}

// serveStats answers /api/stats.
func (r *Relay) serveStats(w http.ResponseWriter, _ *http.Request) {
	st := r.stats.snapshot(r.now())
	st.Subscribers = r.hub.Len()
	b, err := json.Marshal(st)
	if err != nil {
		http.Error(w, "encoding stats", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(append(b, '\n'))
}

// lastEventID reads the resume point from the Last-Event-ID header or the
// lastEventId query parameter.
func lastEventID(req *http.Request) (after uint64, resume bool, err error) {
	v := req.Header.Get("Last-Event-ID")
	if v == "" {
		v = req.URL.Query().Get("lastEventId")
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("Last-Event-ID: %q is not a sequence number", incidentText(v))
	}
	return n, true, nil
}

func incidentText(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.ToValidUTF8(s, "?")
}

func (r *Relay) writeTimeout() time.Duration {
	if r.cfg.WriteTimeout > 0 {
		return r.cfg.WriteTimeout
	}
	return 5 * time.Second
}

// serveStream answers /api/live-feed/stream. After the limits and the
// resume point are checked, the connection is taken over from net/http and
// handed to the hub, which writes the response head, the retry line, the
// catch-up and then live events; no goroutine or buffer stays behind per
// subscriber. A ResponseWriter that cannot be hijacked (HTTP/2, a wrapping
// middleware) gets a goroutine-backed subscriber instead.
func (r *Relay) serveStream(w http.ResponseWriter, req *http.Request) {
	after, resume, err := lastEventID(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	// no-transform: proxies must not compress or rewrite the stream.
	h.Set("Cache-Control", "no-cache, no-store, no-transform")
	// nginx: do not buffer this response.
	h.Set("X-Accel-Buffering", "no")
	if req.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	addr := clientAddr(req, r.cfg.ClientIPHeader)
	switch r.limits.acquire(addr) {
	case http.StatusServiceUnavailable:
		r.m.refused.WithLabelValues("total").Inc()
		w.Header().Set("Retry-After", retryFull)
		http.Error(w, "relay is at its subscriber limit, retry later", http.StatusServiceUnavailable)
		return
	case http.StatusTooManyRequests:
		r.m.refused.WithLabelValues("per_addr").Inc()
		w.Header().Set("Retry-After", retryPerAddr)
		http.Error(w, "too many streams from your address, retry later", http.StatusTooManyRequests)
		return
	}
	onClose := func(reason hub.Reason) {
		r.limits.release(addr)
		r.m.disconnects.WithLabelValues(reason.String()).Inc()
	}
	rc := http.NewResponseController(w)
	conn, brw, err := rc.Hijack()
	if err == nil {
		// Whatever the client sent after its request head stays unread:
		// an SSE client sends nothing more. Dropping brw frees net/http's
		// 4 KiB read and write buffers.
		_ = brw
		head := responseHead(h)
		if tc, ok := conn.(*net.TCPConn); ok && r.cfg.SendBuffer > 0 {
			_ = tc.SetWriteBuffer(r.cfg.SendBuffer)
		}
		sink := hub.ConnSink(conn, r.writeTimeout())
		if _, err := r.hub.Subscribe(sink, head, resume, after, onClose); err != nil {
			_ = sink.Close()
			r.limits.release(addr)
		}
		return
	}
	r.streamFallback(w, rc, req, resume, after, addr, onClose)
}

func (r *Relay) streamFallback(w http.ResponseWriter, rc *http.ResponseController, req *http.Request, resume bool, after uint64, addr netip.Addr, onClose func(hub.Reason)) {
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, retryLine)
	if err := rc.Flush(); err != nil {
		r.limits.release(addr)
		return
	}
	wt := r.writeTimeout()
	q := hub.NewQueueSink(func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(wt))
		_, err := w.Write(b)
		return err
	}, rc.Flush, nil)
	sub, err := r.hub.Subscribe(q, nil, resume, after, onClose)
	if err != nil {
		r.limits.release(addr)
		return
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-req.Context().Done():
		case <-stop:
		}
		sub.Close()
		_ = q.Close()
	}()
	_ = q.Run()
}

var retryLine = "retry: " + strconv.Itoa(retryMillis) + "\n\n"

// responseHead is the raw HTTP response head plus the SSE retry line, for
// a hijacked connection. The body is delimited by closing the connection.
func responseHead(h http.Header) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	h.Set("Connection", "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	_ = h.Write(&b)
	b.WriteString("\r\n")
	b.WriteString(retryLine)
	return b.Bytes()
}

const placeholder = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>attackmap relay</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:sans-serif;background:#0b1020;color:#cbd5e1;max-width:40em;margin:3em auto">
<h1>attackmap relay</h1>
<p>The map is not bundled with this relay. The live feed is here:</p>
<ul><li><a href="/api/live-feed">/api/live-feed</a> (JSON)</li>
<li><a href="/api/live-feed/stream">/api/live-feed/stream</a> (Server-Sent Events)</li>
<li><a href="/api/live-feed.geojson">/api/live-feed.geojson</a> (GeoJSON)</li>
<li><a href="/api/stats">/api/stats</a></li></ul>
</body></html>
`

// serveSite redirects / to /live and hands everything else to the site.
func (r *Relay) serveSite(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/" {
		http.Redirect(w, req, "/live", http.StatusFound)
		return
	}
	if r.cfg.Site != nil {
		r.cfg.Site.ServeHTTP(w, req)
		return
	}
	if req.URL.Path == "/live" && (req.Method == http.MethodGet || req.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, placeholder)
		return
	}
	http.NotFound(w, req)
}
