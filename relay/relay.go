// Package relay is attackmap's edge relay: sensors push incidents over an
// authenticated WebSocket (/api/ingest), the relay validates, de-duplicates,
// stamps and re-encodes them, keeps a ring of recent incidents and a daily
// JSONL history, and fans them out to browsers as Server-Sent Events
// (/api/live-feed/stream), with JSON, GeoJSON and stats endpoints beside.
//
// The same code runs as the attackmap-relay binary and inside the sensor for
// a one-machine setup (Relay.Publish is the in-process ingest):
//
//	r, err := relay.New(relay.Config{DataDir: "data/relay", TokenFile: "tokens"})
//	if err != nil { ... }
//	defer r.Close()
//	err = r.Serve(ctx, ln) // returns when ctx ends, after a graceful shutdown
//
// The HTTP surface and the wire formats are fixed by shared/DESIGN.md.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay/hub"
	"github.com/attackmap/attackmap/relay/token"
)

// Config configures a Relay. Only the zero values noted below need thought;
// every limit has a documented default and a way to switch it off.
type Config struct {
	// DataDir holds the history (history-YYYY-MM-DD.jsonl, one
	// {"seq","at","incident"} object per line), the sequence state and the
	// IP-mask key. Empty keeps everything in memory (nothing survives a
	// restart).
	DataDir string
	// TokenFile holds one "NAME SHA256-HEX [LAT LON]" line per sensor
	// host (see package token). It is re-read when it changes. Empty
	// disables /api/ingest (Publish still works).
	TokenFile string
	// AllowOrigins is the CORS allow list for the public GET endpoints,
	// as exact origins ("https://map.example.org"). "*" allows any origin
	// and is only honoured when listed explicitly. Empty: no CORS headers.
	AllowOrigins []string
	// MaskIP truncates attacker addresses before anything leaves the relay:
	// IPv4 to /24, IPv6 to /48. Incident ids (which usually embed the
	// address) are replaced by a keyed hash, and the address is masked in
	// title, summary and evidence text.
	MaskIP bool
	// CoarseTarget rounds target coordinates to whole degrees.
	CoarseTarget bool
	// RingSize is how many recent incidents are kept in memory for
	// /api/live-feed, GeoJSON, de-duplication and Last-Event-ID resume.
	// Default 10,000.
	RingSize int
	// RetentionDays removes history files older than this. Default 7;
	// negative keeps them forever.
	RetentionDays int
	// Site serves /live and the map's assets (every path the relay does
	// not own). nil serves a short placeholder page at /live.
	Site http.Handler
	// Logger receives warnings and lifecycle messages; nothing is logged per
	// incident at info level. nil discards.
	Logger *slog.Logger
	// Registry receives the relay's metrics. nil creates a private registry
	// (with Go and process collectors) served at /metrics; a registry that
	// also implements prometheus.Gatherer is served at /metrics too.
	Registry prometheus.Registerer

	// MaxSubscribers caps SSE streams in total; over it the relay answers
	// 503 with Retry-After. Default 20,000 (twice the 10,000 the relay is
	// sized for); negative means no cap.
	MaxSubscribers int
	// MaxSubscribersPerAddr caps SSE streams per client address (IPv6
	// grouped by /64); over it the relay answers 429 with Retry-After.
	// Default 32: a household or office behind one NAT with many tabs
	// open, but not one script holding thousands. Negative means no cap.
	MaxSubscribersPerAddr int
	// ClientIPHeader names a header set by a trusted reverse proxy
	// ("X-Forwarded-For", "X-Real-IP") to take the client address from, for
	// the per-address cap; the last address in it is used. Empty uses the
	// connection's address. Set it only behind a proxy that overwrites it.
	ClientIPHeader string
	// IngestRate is each token's sustained ingest rate, in incidents per
	// second, and IngestBurst its bucket size. A sensor over its rate is
	// slowed down (the relay waits before reading its next message), never
	// refused, so nothing is lost. Defaults 100/s and 1,000 (a sensor
	// catching up after an outage sends 1,000 at once, then 100/s); negative
	// IngestRate switches the limit off. The burst is at least one full
	// batch (100).
	IngestRate  float64
	IngestBurst int

	// SubscriberQueue, WriteTimeout and Heartbeat tune the SSE fan-out; see
	// hub.Options (defaults 1,024 frames, 5 s, 15 s).
	SubscriberQueue int
	WriteTimeout    time.Duration
	Heartbeat       time.Duration
	// SendBuffer, when positive, sets each SSE socket's kernel send buffer
	// (SO_SNDBUF). 0 leaves the kernel's autotuning alone.
	SendBuffer int
	// Writers is the number of fan-out writer goroutines; see hub.Options.
	Writers int

	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Defaults documented on Config.
const (
	DefaultRingSize              = 10000
	DefaultRetentionDays         = 7
	DefaultMaxSubscribers        = 20000
	DefaultMaxSubscribersPerAddr = 32
	DefaultIngestRate            = 100
	DefaultIngestBurst           = 1000
)

// retryMillis is the SSE retry: line: browsers reconnect 2 s after a drop,
// soon enough to look live, slow enough not to hammer a restarting relay.
const retryMillis = 2000

// Host is who published a batch: the token's name and optional location,
// stamped on every incident as host and target.
type Host struct {
	Name   string
	Target *incident.Location
}

// Relay is one relay instance. Create it with New; it is safe for concurrent
// use.
type Relay struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	tokens *token.File
	origin originPolicy
	maskK  []byte // key for masked incident ids

	store *store
	stats *stats
	hub   *hub.Hub
	m     *metrics
	gath  prometheus.Gatherer

	limits *subLimits
	rates  *rateLimits

	ctx    context.Context // canceled at shutdown: ends ingest loops
	cancel context.CancelFunc

	mu        sync.Mutex
	ingest    map[*websocket.Conn]struct{}
	closed    bool
	streamsUp bool // hub still open

	handler http.Handler
}

// New builds a relay: it loads the token file and the history (rebuilding
// the ring, the stats and the sequence number) and starts the fan-out
// writers. Call Close when done.
func New(cfg Config) (*Relay, error) {
	if cfg.RingSize <= 0 {
		cfg.RingSize = DefaultRingSize
	}
	if cfg.RetentionDays == 0 {
		cfg.RetentionDays = DefaultRetentionDays
	}
	if cfg.MaxSubscribers == 0 {
		cfg.MaxSubscribers = DefaultMaxSubscribers
	}
	if cfg.MaxSubscribersPerAddr == 0 {
		cfg.MaxSubscribersPerAddr = DefaultMaxSubscribersPerAddr
	}
	if cfg.IngestRate == 0 {
		cfg.IngestRate = DefaultIngestRate
	}
	if cfg.IngestBurst <= 0 {
		cfg.IngestBurst = DefaultIngestBurst
	}
	if cfg.IngestBurst < incident.MaxBatchIncidents {
		cfg.IngestBurst = incident.MaxBatchIncidents
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	origin, err := newOriginPolicy(cfg.AllowOrigins)
	if err != nil {
		return nil, err
	}
	r := &Relay{
		cfg:    cfg,
		log:    log,
		now:    cfg.Now,
		origin: origin,
		ingest: map[*websocket.Conn]struct{}{},
		limits: newSubLimits(cfg.MaxSubscribers, cfg.MaxSubscribersPerAddr),
		rates:  newRateLimits(cfg.IngestRate, cfg.IngestBurst, cfg.Now),
	}
	if cfg.TokenFile != "" {
		if r.tokens, err = token.Open(cfg.TokenFile); err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
	}
	if cfg.MaskIP {
		if r.maskK, err = loadMaskKey(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	reg := cfg.Registry
	if reg == nil {
		pr := prometheus.NewRegistry()
		registerProcessCollectors(pr)
		reg, r.gath = pr, pr
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		r.gath = g
	}
	r.m = newMetrics(reg)
	r.stats = newStats()
	r.hub = hub.New(hub.Options{
		RingSize:          cfg.RingSize,
		Writers:           cfg.Writers,
		MaxQueue:          cfg.SubscriberQueue,
		WriteTimeout:      cfg.WriteTimeout,
		HeartbeatInterval: cfg.Heartbeat,
		OnSent:            func(n int) { r.m.sent.Add(float64(n)) },
		OnFanout:          func(d time.Duration) { r.m.fanout.Observe(d.Seconds()) },
	})
	r.streamsUp = true
	if err := r.openHistory(); err != nil {
		r.hub.Close()
		return nil, err
	}
	r.m.register(reg, r)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.handler = r.routes()
	return r, nil
}

// Handler returns the whole HTTP surface of DESIGN.md.
func (r *Relay) Handler() http.Handler { return r.handler }

// Serve answers HTTP on ln until ctx ends, then shuts down gracefully: it
// stops accepting, lets plain requests finish (up to 5 s), closes ingest
// sockets with 1001 and ends the SSE streams. It does not close the history;
// call Close after Serve returns. Serve returns nil after a shutdown caused
// by ctx.
func (r *Relay) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler: r.handler,
		// A client gets 10 s to send its request head: long enough for
		// any real network, short enough that slow-header (slowloris)
		// connections do not pile up. There is no server-wide write
		// timeout: streams live for hours and each SSE write has its own
		// deadline in the hub.
		ReadHeaderTimeout: 10 * time.Second,
		// Idle keep-alive connections between API polls are closed after
		// 60 s so idle browsers do not hold sockets for ever.
		IdleTimeout: 60 * time.Second,
		// Request heads are small (a GET with a few headers); 16 KiB
		// leaves room for cookies of a shared domain.
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		r.shutdownStreams()
		return fmt.Errorf("relay: serving: %w", err)
	case <-ctx.Done():
	}
	r.log.Info("relay shutting down")
	// Five seconds for in-flight API requests to finish; streams and
	// ingest sockets are hijacked connections that Shutdown does not wait
	// for, they are closed right after.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	r.shutdownStreams()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("relay: shutting down: %w", err)
	}
	<-errc
	return nil
}

// shutdownStreams closes ingest sockets (1001 going away) and SSE streams.
func (r *Relay) shutdownStreams() {
	r.mu.Lock()
	if !r.streamsUp {
		r.mu.Unlock()
		return
	}
	r.streamsUp = false
	conns := make([]*websocket.Conn, 0, len(r.ingest))
	for c := range r.ingest {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	// Close handshakes first (the read loops answer them), then cancel
	// whatever still waits (a rate-limited batch).
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { _ = c.Close(websocket.StatusGoingAway, "relay shutting down") })
	}
	wg.Wait()
	r.cancel()
	r.hub.Close()
}

// Close ends the streams and ingest sockets if Serve did not, then flushes
// and closes the history.
func (r *Relay) Close() error {
	r.shutdownStreams()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	return r.store.close()
}

// Publish is the in-process ingest used when the relay runs inside the
// sensor: the same path as a batch on the socket (decode, validate, stamp
// host and target from host, mask, de-duplicate, persist, broadcast), with
// no rate limit. The ack's Batch is 0. When it returns, accepted incidents
// are in the history (written and fsynced) and queued for every subscriber.
// A failure to store them is logged and counted but not returned: use
// PublishDurable where the caller can resend.
func (r *Relay) Publish(host Host, incidents []json.RawMessage) incident.Ack {
	ack, _ := r.PublishDurable(host, incidents)
	return ack
}

// PublishDurable is Publish for a caller that keeps its own queue (the
// sensor's cursor): a non-nil error means the batch could not be stored,
// must not count as acknowledged, and should be sent again later; the
// resent incidents are then stored, not dropped as repeats.
func (r *Relay) PublishDurable(host Host, incidents []json.RawMessage) (incident.Ack, error) {
	ack, err := r.publish(host, incidents)
	r.syncHistory()
	return ack, err
}
