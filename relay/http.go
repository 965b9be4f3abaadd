package relay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/attackmap/attackmap/relay/hub"
)

// Feed limits (docs/DESIGN.md): 50 by default, 500 at most. GeoJSON: 1,000 by
// default, 2,000 at most (and never more than the ring): at up to 16 KiB
// per incident that is 32 MiB, already a lot for anyone on the internet to
// ask for as often as they like; the whole ring would be 160 MiB.
const (
	feedDefault    = 50
	feedMax        = 500
	geojsonDefault = 1000
	geojsonMax     = 2000
)

// Budgets for every answer that is not a stream or the ingest socket.
const (
	// chunkTimeout is how long one write of an answer (answerBuffer
	// bytes or one incident, at most 16 KiB, for feed and GeoJSON; 32 KiB
	// for files) may wait for the client to take it: a client slower
	// than that per chunkTimeout (a few KiB/s) or not reading at all is
	// cut off, and its connection reset so the kernel drops
	// what was queued for it (see trackedConn).
	chunkTimeout = 10 * time.Second
	// answerBudget bounds a whole answer, however steadily it is read:
	// two minutes move the map's largest asset (a few MiB, compressed)
	// over a poor mobile link, and cap what a client that reads one byte
	// just in time can hold a connection for.
	answerBudget = 2 * time.Minute
	// answerBuffer is the buffer feed and GeoJSON answers are written
	// through: answers are streamed from the ring, never built whole, so a
	// client that does not read costs the relay this much and the kernel's
	// socket buffer, not the answer's size. It only gathers the small
	// pieces between incidents (commas, GeoJSON geometry): an incident's
	// encoded JSON, shared with the ring, larger than what is left of it
	// goes to the socket without a copy, so a bigger buffer saves few
	// system calls and costs its size for every stalled reader (it was
	// 32 KiB: 100 non-reading feed clients held 3 MiB live, and twice that
	// before a collection).
	answerBuffer = 4 << 10
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
		mux.HandleFunc("OPTIONS "+pattern, r.bounded(r.preflight))
	}
	public("/api/live-feed", r.bounded(r.serveFeed))
	public("/api/live-feed/stream", longLived(r.serveStream))
	public("/api/live-feed.geojson", r.bounded(r.serveGeoJSON))
	public("/api/stats", r.bounded(r.serveStats))
	public("/api/history", r.bounded(r.serveHistory))
	mux.HandleFunc("GET /api/ingest", longLived(r.serveIngest))
	mux.HandleFunc("GET /healthz", r.bounded(r.serveHealth))
	// Metrics are served on their own listener (ServeMetrics); here the
	// path is claimed so that the site's handler cannot answer it.
	mux.HandleFunc("/metrics", r.bounded(http.NotFound))
	mux.HandleFunc("/", r.bounded(r.serveSite))
	return r.guard(mux)
}

// guard runs before any route. It refuses requests that carry a body (no
// endpoint takes one) and, behind a proxy, applies the per-address
// connection cap to requests by their forwarded address.
func (r *Relay) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.ContentLength != 0 { // declared (> 0) or chunked (-1)
			r.m.bodies.Inc()
			rc := http.NewResponseController(w)
			_ = rc.SetWriteDeadline(time.Now().Add(chunkTimeout))
			// After the handler net/http reads up to 256 KiB of an unread
			// body to keep the connection, without a deadline: a client
			// that trickles it would hold the connection for ever. An
			// expired read deadline makes that read fail at once, and
			// Connection: close stops it from being tried at all.
			_ = rc.SetReadDeadline(time.Now())
			w.Header().Set("Connection", "close")
			http.Error(w, "request bodies are not accepted", http.StatusRequestEntityTooLarge)
			return
		}
		if r.cfg.ClientIPHeader != "" {
			a := clientAddr(req, r.cfg.ClientIPHeader)
			if lim := r.reqs.acquire(a); lim != "" {
				r.m.connRefused.WithLabelValues(lim).Inc()
				_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(chunkTimeout))
				w.Header().Set("Retry-After", retryPerAddr)
				http.Error(w, "too many requests in progress from your address, retry later", http.StatusTooManyRequests)
				return
			}
			defer r.reqs.release(a)
		}
		next.ServeHTTP(w, req)
	})
}

// bounded gives an answer a write deadline per chunk (chunkTimeout, never
// past answerBudget from the start): a client that stops reading is cut
// off, whatever the handler writes.
func (r *Relay) bounded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), end: time.Now().Add(answerBudget)}
		dw.arm()
		h(dw, req)
	}
}

// longLived clears deadlines a previous request on the same keep-alive
// connection may have left, before a handler that takes the connection
// over for hours (a stream or the ingest socket) and sets its own.
func longLived(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
		h(w, req)
	}
}

// deadlineWriter sets the connection's write deadline before each write:
// writes are buffered, and whichever write reaches the socket runs under a
// deadline set no longer than chunkTimeout before.
type deadlineWriter struct {
	http.ResponseWriter
	rc  *http.ResponseController
	end time.Time
}

func (d *deadlineWriter) arm() {
	dl := time.Now().Add(chunkTimeout)
	if dl.After(d.end) {
		dl = d.end
	}
	_ = d.rc.SetWriteDeadline(dl)
}

func (d *deadlineWriter) WriteHeader(code int) {
	d.arm()
	d.ResponseWriter.WriteHeader(code)
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	d.arm()
	return d.ResponseWriter.Write(b)
}

// Flush keeps http.Flusher for handlers that check for it.
func (d *deadlineWriter) Flush() {
	d.arm()
	_ = d.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// answerWriters pools the answerBuffer-sized writers of feed and GeoJSON
// answers.
var answerWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(io.Discard, answerBuffer) }}

func answerWriter(w io.Writer) *bufio.Writer {
	b := answerWriters.Get().(*bufio.Writer)
	b.Reset(w)
	return b
}

func putAnswerWriter(b *bufio.Writer) {
	b.Reset(io.Discard) // do not keep the ResponseWriter alive
	answerWriters.Put(b)
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

// recentAnswer starts the answer of /api/live-feed and of its GeoJSON
// form: it reads ?limit (def when absent, 1 to max) and answers 400 to a
// bad one, or sets the headers for the newest limit incidents (only
// located ones when withLoc) and returns them, oldest first.
func (r *Relay) recentAnswer(w http.ResponseWriter, req *http.Request, def, max int, withLoc bool, contentType string) ([]*entry, bool) {
	limit, err := parseLimit(req, def, max)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	s := r.store
	s.mu.Lock()
	es, seq := s.recent(limit, withLoc), s.seq
	s.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-cache")
	// The sequence of the newest incident: open the stream with
	// ?lastEventId=<this> to continue right after this answer, no gap.
	h.Set("Last-Event-ID", strconv.FormatUint(seq, 10))
	return es, true
}

// serveFeed answers /api/live-feed: the newest incidents, oldest first.
func (r *Relay) serveFeed(w http.ResponseWriter, req *http.Request) {
	es, ok := r.recentAnswer(w, req, feedDefault, feedMax, false, "application/json; charset=utf-8")
	if !ok {
		return
	}
	// Streamed from the ring entries (shared, already encoded) through a
	// small buffer, never built whole: 500 incidents of 16 KiB are 8 MiB
	// per request, and anyone may ask.
	b := answerWriter(w)
	defer putAnswerWriter(b)
	b.WriteByte('[')
	for i, e := range es {
		if i > 0 {
			b.WriteByte(',')
		}
		if _, err := b.Write(e.json); err != nil {
			return // cut off (chunkTimeout) or gone
		}
	}
	b.WriteString("]\n")
	_ = b.Flush()
}

// serveGeoJSON answers /api/live-feed.geojson: an RFC 7946 FeatureCollection
// of Point features ([lon, lat]) for the newest located incidents, each with
// the incident's fields as properties and the relay sequence as id.
// Incidents without a location are left out.
func (r *Relay) serveGeoJSON(w http.ResponseWriter, req *http.Request) {
	es, ok := r.recentAnswer(w, req, min(geojsonDefault, r.cfg.RingSize), min(geojsonMax, r.cfg.RingSize), true, "application/geo+json")
	if !ok {
		return
	}
	// Written through a small buffer straight to the client rather than
	// built whole (see serveFeed).
	b := answerWriter(w)
	defer putAnswerWriter(b)
	b.WriteString(`{"type":"FeatureCollection","features":[`)
	for i, e := range es {
		if i > 0 {
			if _, err := b.Write(comma); err != nil {
				return // cut off (chunkTimeout) or gone
			}
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

var comma = []byte{','}

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
	switch lim := r.limits.acquire(addr); lim {
	case "":
	case limitTotal:
		r.m.refused.WithLabelValues(lim).Inc()
		refuseStream(w, retryFull, "relay is at its subscriber limit, retry later", http.StatusServiceUnavailable)
		return
	default:
		r.m.refused.WithLabelValues(lim).Inc()
		refuseStream(w, retryPerAddr, "too many streams from your address or network, retry later", http.StatusTooManyRequests)
		return
	}
	onClose := func(reason hub.Reason) {
		r.limits.release(addr)
		r.m.disconnects.WithLabelValues(reason.String()).Inc()
	}
	// A resume point whose next incidents already left the ring (a small
	// ring, or a relay that restarted) is served from the stream up to
	// the ring, then from the ring: no reset while the gap is within
	// ResumeWindow.
	var catch []byte
	if ev := r.hub.Evicted(); resume && after < ev {
		if frames, last, ok := r.catchUp(req.Context(), after, ev, r.cfg.ResumeWindow); ok {
			catch, after = frames, last
		}
	}
	rc := http.NewResponseController(w)
	conn, brw, err := rc.Hijack()
	if err == nil {
		// Whatever the client sent after its request head stays unread:
		// an SSE client sends nothing more. Dropping brw frees net/http's
		// 4 KiB read and write buffers.
		_ = brw
		head := append(responseHead(h), catch...)
		if tc, ok := tcpConn(conn); ok && r.cfg.SendBuffer > 0 {
			_ = tc.SetWriteBuffer(r.cfg.SendBuffer)
		}
		sink := hub.ConnSink(conn, r.writeTimeout())
		if _, err := r.hub.Subscribe(sink, head, resume, after, onClose); err != nil {
			_ = sink.Close()
			r.limits.release(addr)
		}
		return
	}
	r.streamFallback(w, rc, req, resume, after, addr, catch, onClose)
}

// refuseStream answers a stream request over a limit, under a write
// deadline (longLived cleared it).
func refuseStream(w http.ResponseWriter, retry, msg string, code int) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(chunkTimeout))
	w.Header().Set("Retry-After", retry)
	// The stream's content type was already set: the refusal is text.
	w.Header().Del("X-Accel-Buffering")
	http.Error(w, msg, code)
}

func (r *Relay) streamFallback(w http.ResponseWriter, rc *http.ResponseController, req *http.Request, resume bool, after uint64, addr netip.Addr, catch []byte, onClose func(hub.Reason)) {
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Now().Add(r.writeTimeout()))
	_, _ = io.WriteString(w, retryLine)
	_, _ = w.Write(catch)
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
<li><a href="/api/stats">/api/stats</a></li>
<li><a href="/api/history">/api/history</a> (JSON, by time)</li></ul>
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
