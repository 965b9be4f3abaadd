// Package relay is attackmap's edge relay: sensors push incidents over an
// authenticated WebSocket (/api/ingest), the relay validates, de-duplicates,
// stamps and re-encodes them and stores them in a NATS JetStream stream
// (an embedded single-node server by default, or a cluster shared by many
// relays); every relay reads the stream into a ring of recent incidents and
// fans them out to browsers as Server-Sent Events (/api/live-feed/stream),
// with JSON, GeoJSON, stats and history endpoints beside. SSE ids are the
// stream's sequence numbers, so a browser resumes on any relay of a
// cluster.
//
// The same code runs as the attackmap-relay binary and inside the sensor for
// a one-machine setup (Relay.Publish is the in-process ingest):
//
//	r, err := relay.New(relay.Config{DataDir: "data/relay", TokenFile: "tokens"})
//	if err != nil { ... }
//	defer r.Close()
//	err = r.Serve(ctx, ln) // returns when ctx ends, after a graceful shutdown
//
// The HTTP surface and the wire formats are fixed by docs/DESIGN.md.
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
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay/hub"
	"github.com/attackmap/attackmap/relay/token"
)

// Config configures a Relay. Only the zero values noted below need thought;
// every limit has a documented default and a way to switch it off.
type Config struct {
	// DataDir holds the embedded NATS server's file store (DataDir/nats)
	// and the IP-mask key. History files of a relay before the stream
	// (history-YYYY-MM-DD.jsonl) found there are imported into the stream
	// once, then renamed *.imported. Empty keeps everything in memory
	// (nothing survives a restart).
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
	// RetentionDays is the stream's maximum age in days. Default 7;
	// negative keeps incidents forever (within the byte budget).
	RetentionDays int
	// Site serves /live and the map's assets (every path the relay does
	// not own). nil serves a short placeholder page at /live.
	Site http.Handler
	// Logger receives warnings and lifecycle messages; nothing is logged per
	// incident at info level. nil discards.
	Logger *slog.Logger
	// Registry receives the relay's metrics. nil creates a private registry
	// (with Go and process collectors); it, or a Registry that also
	// implements prometheus.Gatherer, is served by MetricsHandler and
	// ServeMetrics, never on the public handler (it tells anyone the open
	// descriptors, the Go version and whether sensors are connected).
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
	// MaxSubscribersPerNet caps SSE streams per network: IPv4 /24, IPv6
	// /48 (what one site is usually given); over it the relay answers
	// 429. Default 256 (eight full addresses): without it the global cap
	// could be filled from one IPv6 /48, which holds 65,536 /64s. Negative
	// means no cap.
	MaxSubscribersPerNet int
	// MaxConns caps open connections of every kind (API, streams, ingest,
	// half-sent requests), counted from accept to close; a connection over
	// it is answered 503 and closed at once. Default: the open file limit
	// (RLIMIT_NOFILE) minus 128 descriptors kept for the stream's store, the
	// token file and the process (half the limit when it is 256 or less),
	// so the relay never runs out of descriptors. Negative means no cap.
	MaxConns int
	// MaxConnsPerAddr caps open connections per client address (IPv6
	// per /64); over it a connection is answered 429 and closed at once.
	// Behind ClientIPHeader it caps requests in progress per forwarded
	// address instead (every connection comes from the proxy). Default
	// 64: the 32 streams of MaxSubscribersPerAddr plus a few browsers'
	// worth of API and asset connections. Keep it above
	// MaxSubscribersPerAddr. Negative means no cap.
	MaxConnsPerAddr int
	// ResumeWindow is the most incidents replayed to a stream resuming from
	// Last-Event-ID; an older resume point gets an "event: reset" and the
	// newest ResumeWindow incidents (see hub.ResetFrame). Default 500, the
	// most /api/live-feed returns.
	ResumeWindow int
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
	// MaxIngestPerToken caps the ingest sockets one sensor token holds at
	// once; a further one is closed with 1013 (try again later). Default
	// 4: a sensor uses one, and a restart may briefly overlap its old
	// socket; more is a leaked token or a loop. Negative means no cap.
	MaxIngestPerToken int
	// HistoryCapPerToken and HistoryCapTotal are the history's daily
	// budget in bytes (per UTC day, counted from the stream, so every
	// relay of a cluster counts every relay's ingest), per sensor token
	// and for all of them. A batch that would go over is refused whole:
	// not stored, not broadcast, not acknowledged, so the sensor keeps it
	// and sends it again later (it gets a {"type":"error"} message and a
	// 1013 close with the reason); never dropped in silence. Defaults 256
	// MiB and 1.5 GiB; the stream's byte limit is HistoryCapTotal for
	// every day kept and today (12 GiB with 7 days' retention), which
	// leaves room on a 20 GB VPS for the system and logs; 256 MiB a day is
	// some 200,000 typical incidents (1.3 KiB) or 18,000 of the largest,
	// far more than a real host raises, so only a broken or hostile
	// sensor meets it, and six of those still leave room for the rest.
	// Negative means no cap.
	HistoryCapPerToken int64
	HistoryCapTotal    int64

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

	// NATSURLs joins an existing NATS cluster (nats://host:port, any
	// number) instead of running an embedded server; NATSCreds is a
	// credentials file, NATSTLSCA/NATSTLSCert/NATSTLSKey PEM files for
	// TLS. Empty: the embedded server.
	NATSURLs    []string
	NATSCreds   string
	NATSTLSCA   string
	NATSTLSCert string
	NATSTLSKey  string
	// NATSListen (host:port) makes the embedded server listen for
	// routes from the other relays' servers, NATSRoutes (nats://host:port)
	// are those servers (listing this one too is fine), and
	// NATSClusterName names the cluster (default "attackmap"). NATSName
	// is this server's name in the cluster, stable across restarts
	// (default: host name and route port). NATSClientListen, when set,
	// also opens the embedded server's client port (for nats CLI tools or
	// other relays connecting with NATSURLs); off loopback it needs
	// NATSClientToken, which clients then present (nats://TOKEN@host:port).
	// Empty NATSListen: a single node without any listener.
	NATSListen       string
	NATSRoutes       []string
	NATSClusterName  string
	NATSName         string
	NATSClientListen string
	NATSClientToken  string
	// Replicas is the stream's replica count. Default: 3 in a cluster of
	// three or more, else the cluster's size (1 on a single relay).
	Replicas int
	// DedupWindow is how long the stream remembers stored versions to
	// drop repeats (see DefaultDedupWindow). Default 24 h; never longer
	// than the retention.
	DedupWindow time.Duration
	// NATSStartTimeout bounds how long New waits for the stream (a
	// cluster's quorum). Default 2 minutes.
	NATSStartTimeout time.Duration
	// NATSSyncInterval, when positive, lets a single relay's embedded
	// server fsync its store at this interval instead of before every
	// ack: ingest is several times faster, but a power cut (not a crash
	// of the process) loses what was acknowledged since the last fsync.
	// Default 0: every write is on disk before it is acknowledged. A
	// cluster acknowledges on a quorum of replicas and syncs every two
	// minutes.
	NATSSyncInterval time.Duration

	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Defaults documented on Config.
const (
	DefaultRingSize              = 10000
	DefaultRetentionDays         = 7
	DefaultMaxSubscribers        = 20000
	DefaultMaxSubscribersPerAddr = 32
	DefaultMaxSubscribersPerNet  = 256
	DefaultMaxConnsPerAddr       = 64
	DefaultResumeWindow          = 500
	DefaultIngestRate            = 100
	DefaultIngestBurst           = 1000
	DefaultMaxIngestPerToken     = 4
	DefaultHistoryCapPerToken    = 256 << 20
	DefaultHistoryCapTotal       = 1536 << 20
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
	// rejects rate-limits the log lines about rejected sensor tokens.
	rejects rejectLog
	origin  originPolicy
	maskK   []byte // key for masked incident ids

	store *store
	nats  *natsLog
	// consumer is the ordered consumer feeding the ring; preloadTo is
	// the last sequence read at start (applied as Preload), pending
	// what the consumer has still to read (stream lag).
	consumer    jetstream.ConsumeContext
	consumerGen atomic.Uint64 // the running consumer's; see consume
	preloadTo   atomic.Uint64
	pending     atomic.Uint64
	// own holds what publish prepared until the consumer reads it back
	// (see ownPrepared); preparedIngest and preparedStream count prepare
	// calls on ingest and on what is read from the stream (the metric
	// incidents_prepared_total{path}).
	own            *ownPrepared
	preparedIngest atomic.Uint64
	preparedStream atomic.Uint64
	consumeLogged  time.Time // guarded by mu
	stats          *stats
	hub            *hub.Hub
	m              *metrics
	gath           prometheus.Gatherer

	limits *subLimits
	conns  *connLimits // per connection, counted by the listener
	reqs   *connLimits // per request in progress, behind a proxy
	rates  *rateLimits
	// histLimits caps /api/history reads in progress.
	histLimits historyLimits

	dm         *dataMetrics
	dm2        *durMetrics
	tk         *tokenKV // the token bucket
	m2         *natsMetrics
	sensors    *sensorConns  // authenticated ingest sockets by token
	tokensDone chan struct{} // closed when the token watcher stopped

	ctx    context.Context // canceled at shutdown: ends ingest loops
	cancel context.CancelFunc

	mu        sync.Mutex
	ingest    map[*websocket.Conn]struct{}
	closed    bool
	streamsUp bool // hub still open

	handler http.Handler
}

// New builds a relay: it loads the token file, starts (or connects to)
// NATS, creates the stream, imports old history files once, reads the
// stream into the ring and the stats, and starts the fan-out writers. Call
// Close when done.
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
	if cfg.MaxSubscribersPerNet == 0 {
		cfg.MaxSubscribersPerNet = DefaultMaxSubscribersPerNet
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = defaultMaxConns()
	}
	if cfg.MaxConnsPerAddr == 0 {
		cfg.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	}
	if cfg.ResumeWindow <= 0 {
		cfg.ResumeWindow = DefaultResumeWindow
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
	if cfg.MaxIngestPerToken == 0 {
		cfg.MaxIngestPerToken = DefaultMaxIngestPerToken
	}
	if cfg.HistoryCapPerToken == 0 {
		cfg.HistoryCapPerToken = DefaultHistoryCapPerToken
	}
	if cfg.HistoryCapTotal == 0 {
		cfg.HistoryCapTotal = DefaultHistoryCapTotal
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
		cfg:     cfg,
		log:     log,
		now:     cfg.Now,
		origin:  origin,
		ingest:  map[*websocket.Conn]struct{}{},
		limits:  newSubLimits(cfg.MaxSubscribers, cfg.MaxSubscribersPerAddr, cfg.MaxSubscribersPerNet),
		conns:   newConnLimits(cfg.MaxConns, cfg.MaxConnsPerAddr),
		reqs:    newConnLimits(-1, cfg.MaxConnsPerAddr),
		rates:   newRateLimits(cfg.IngestRate, cfg.IngestBurst, cfg.Now),
		sensors: newSensorConns(cfg.MaxIngestPerToken),
		own:     newOwnPrepared(),
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
	r.dm = newDataMetrics(reg)
	r.dm2 = newDurMetrics(reg)
	r.m2 = newNATSMetrics(reg, r)
	if r.tokens != nil {
		r.dm.tokenFileOK.Set(1)
	}
	r.stats = newStats()
	r.hub = hub.New(hub.Options{
		RingSize:          cfg.RingSize,
		Writers:           cfg.Writers,
		MaxQueue:          cfg.SubscriberQueue,
		WriteTimeout:      cfg.WriteTimeout,
		HeartbeatInterval: cfg.Heartbeat,
		OnSent:            func(n int) { r.m.sent.Add(float64(n)) },
		OnFanout:          func(d time.Duration) { r.m.fanout.Observe(d.Seconds()) },
		ResumeWindow:      cfg.ResumeWindow,
		OnReset:           func() { r.m.resets.Inc() },
	})
	r.streamsUp = true
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if err := r.openStream(); err != nil {
		r.cancel()
		r.hub.Close()
		return nil, err
	}
	r.m.register(reg, r)
	if r.tokens != nil {
		if err := r.startTokens(); err != nil {
			r.cancel()
			r.hub.Close()
			_ = r.closeStream() // the store holds nothing of this run yet
			return nil, fmt.Errorf("relay: token bucket: %w", err)
		}
		r.tokensDone = make(chan struct{})
		go r.watchTokens()
		go r.runTokenSync()
	}
	r.handler = r.routes()
	return r, nil
}

// Handler returns the whole HTTP surface of docs/DESIGN.md.
func (r *Relay) Handler() http.Handler { return r.handler }

// Serve answers HTTP on ln until ctx ends, then shuts down gracefully: it
// stops accepting, lets plain requests finish (up to 5 s), closes ingest
// sockets with 1001 and ends the SSE streams. It does not stop the stream;
// call Close after Serve returns. Serve returns nil after a shutdown caused
// by ctx.
//
// Every connection is counted against MaxConns and MaxConnsPerAddr from
// accept to close. Plain requests get a write deadline per chunk and a
// budget for the whole answer (see http.go); streams and ingest sockets
// have their own.
func (r *Relay) Serve(ctx context.Context, ln net.Listener) error {
	// headListener: the first request head is read before net/http
	// takes the connection (see limits.go).
	return r.serve(ctx, newHeadListener(&limitListener{
		Listener: ln,
		limits:   r.conns,
		perAddr:  r.cfg.ClientIPHeader == "",
		refused:  func(limit string) { r.m.connRefused.WithLabelValues(limit).Inc() },
	}), r.handler, "relay")
}

// MetricsHandler returns the Prometheus endpoint, or nil when the
// configured Registry cannot be gathered. Serve it only where the public
// cannot reach it (ServeMetrics on a loopback address).
func (r *Relay) MetricsHandler() http.Handler {
	if r.gath == nil {
		return nil
	}
	return promhttp.HandlerFor(r.gath, promhttp.HandlerOpts{})
}

// ServeMetrics answers GET /metrics (and /healthz) on ln until ctx ends.
// It is meant for a private address (the relay's --metrics-listen,
// loopback by default).
func (r *Relay) ServeMetrics(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	if h := r.MetricsHandler(); h != nil {
		mux.Handle("GET /metrics", h)
	}
	mux.HandleFunc("GET /healthz", r.serveHealthDetail)
	return r.serve(ctx, ln, r.bounded(mux.ServeHTTP), "metrics")
}

func (r *Relay) serve(ctx context.Context, ln net.Listener, h http.Handler, what string) error {
	srv := &http.Server{
		Handler: h,
		// A client gets 10 s to send its request head: long enough for
		// any real network, short enough that slow-header (slowloris)
		// connections do not pile up. There is no server-wide write
		// timeout: streams live for hours and each SSE write has its own
		// deadline in the hub.
		ReadHeaderTimeout: 10 * time.Second,
		// Idle keep-alive connections between API polls are closed after
		// 60 s so idle browsers do not hold sockets for ever. (No
		// ReadTimeout either: it would also cut the hijacked streams and
		// ingest sockets; request bodies are refused instead, see guard.)
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: maxHeaderBytes, // see limits.go
		ErrorLog:       slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if what == "relay" {
			r.shutdownStreams()
		}
		return fmt.Errorf("relay: serving %s: %w", what, err)
	case <-ctx.Done():
	}
	r.log.Info(what + " shutting down")
	// Five seconds for in-flight API requests to finish; streams and
	// ingest sockets are hijacked connections that Shutdown does not wait
	// for, they are closed right after.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if what == "relay" {
		r.shutdownStreams()
	}
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

// Close ends the streams and ingest sockets if Serve did not, then stops
// reading the stream and closes the NATS connection (and the embedded
// server). Its error is a failure to put an interval-synced store on disk
// (Config.NATSSyncInterval): what was acknowledged may not survive a power
// cut.
func (r *Relay) Close() error {
	r.shutdownStreams()
	if r.tokensDone != nil {
		<-r.tokensDone
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	return r.closeStream()
}

// closeStream stops reading the stream and closes NATS. Its error is a
// failure to put the store on disk (see natsLog.syncOnClose).
func (r *Relay) closeStream() error {
	r.store.close()
	r.stopConsumer()
	return r.nats.close()
}

// Publish is the in-process ingest used when the relay runs inside the
// sensor: the same path as a batch on the socket (decode, validate, stamp
// host and target from host, mask, de-duplicate, persist, broadcast), with
// no rate limit. The ack's Batch is 0. When it returns, accepted incidents
// are in the stream (acknowledged by JetStream) and queued for every
// subscriber.
// A failure to store them is logged and counted but not returned: use
// PublishDurable where the caller can resend.
func (r *Relay) Publish(host Host, incidents []json.RawMessage) incident.Ack {
	ack, _ := r.PublishDurable(host, incidents)
	return ack
}

// PublishDurable is Publish for a caller that keeps its own queue (the
// sensor's cursor): a non-nil error (ErrHistoryFull, or ErrNotStored and
// for a full disk ErrDiskFull) means the batch could not be stored whole,
// must not count as acknowledged, and should be sent again later; what was
// stored of it is then dropped as a repeat and the rest stored. Incidents
// not stored were not broadcast.
func (r *Relay) PublishDurable(host Host, incidents []json.RawMessage) (incident.Ack, error) {
	p, err := r.publish(host, incidents)
	if err != nil {
		return p.ack, err
	}
	if err := r.confirm(&p); err != nil {
		return p.ack, err
	}
	return p.ack, nil
}
