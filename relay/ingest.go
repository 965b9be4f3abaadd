package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay/token"
)

// ackTimeout bounds writing one ack: a sensor that does not read its acks
// for 10 s is stuck, and its socket is closed so it reconnects.
const ackTimeout = 10 * time.Second

// serveIngest is the sensor WebSocket (/api/ingest). The token is checked
// after the upgrade so a bad one can be answered with close status 1008 and
// a reason, as the protocol says. No CORS: coder/websocket refuses
// cross-origin browser upgrades by default.
//
// The socket lives only as long as its token: when the token's line is
// removed or changed, or the token file becomes unusable, the relay closes
// it within a second (see onTokensChanged). Each token may hold at most
// MaxIngestPerToken sockets at once.
func (r *Relay) serveIngest(w http.ResponseWriter, req *http.Request) {
	tok, hasTok := bearer(req.Header.Get("Authorization"))
	var entry token.Entry
	ok := false
	var ferr error
	if r.tokens != nil && hasTok {
		entry, ok, ferr = r.lookupToken(tok)
	}
	c, err := websocket.Accept(w, req, nil)
	if err != nil {
		return // Accept answered the request
	}
	if ferr != nil {
		// Fail closed: no token is valid while the file is unusable.
		// The reason is logged once, when the file went bad.
		r.dm.ingestRefused.WithLabelValues("token_file").Inc()
		_ = c.Close(websocket.StatusTryAgainLater, "ingest unavailable: the relay cannot read its token file")
		return
	}
	if !ok {
		r.m.ingestAuth.Inc()
		reason := "bad token"
		switch {
		case r.tokens == nil:
			reason = "ingest disabled: the relay has no token file"
		case !hasTok:
			reason = "missing token: send Authorization: Bearer <token>"
		}
		r.rejects.note(r.log, req.RemoteAddr, reason, tok, r.now())
		_ = c.Close(websocket.StatusPolicyViolation, reason)
		return
	}
	host := Host{Name: entry.Name, Target: entry.Target}
	c.SetReadLimit(incident.MaxMessageBytes)
	if !r.trackIngest(c) {
		_ = c.Close(websocket.StatusGoingAway, "relay shutting down")
		return
	}
	defer r.untrackIngest(c)
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	sc := &sensorConn{c: c, entry: entry, cancel: cancel}
	if !r.sensors.add(sc) {
		r.dm.ingestRefused.WithLabelValues("per_token").Inc()
		_ = c.Close(websocket.StatusTryAgainLater, closeReason(fmt.Sprintf("host %s already has %d ingest connections, the most allowed", entry.Name, r.sensors.max)))
		return
	}
	defer r.sensors.remove(sc)
	// The token may have gone between the lookup and the registration.
	if !r.tokenCurrent(entry) {
		r.revoke(sc)
		return
	}
	r.log.Debug("sensor connected", "host", host.Name, "remote", req.RemoteAddr)
	// Acks go out from their own goroutine after JetStream's ack, so
	// the read loop publishes the next batch while the stream stores
	// this one. At most ackWindow acks wait: a
	// sensor that pipelines further is slowed down by the read loop.
	acks := make(chan published, ackWindow)
	ackDone := make(chan struct{})
	go r.writeAcks(ctx, c, acks, ackDone)
	drainAcks := sync.OnceFunc(func() {
		close(acks)
		<-ackDone
	})
	defer drainAcks()
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				// coder/websocket has already closed with 1009.
				r.m.ingestBad.WithLabelValues("too_big").Inc()
			}
			_ = c.CloseNow()
			return
		}
		if typ != websocket.MessageText {
			r.m.ingestBad.WithLabelValues("binary").Inc()
			_ = c.Close(websocket.StatusUnsupportedData, "binary messages are not accepted: send JSON text")
			return
		}
		b, err := DecodeBatch(data)
		if err != nil {
			if errors.Is(err, ErrBatchTooBig) {
				r.m.ingestBad.WithLabelValues("too_big").Inc()
				_ = c.Close(websocket.StatusMessageTooBig, closeReason(err.Error()))
				return
			}
			r.m.ingestBad.WithLabelValues("malformed").Inc()
			_ = c.Close(websocket.StatusInvalidFramePayloadData, closeReason(err.Error()))
			return
		}
		if err := r.rates.wait(ctx, host.Name, len(b.Incidents)); err != nil {
			_ = c.CloseNow()
			return
		}
		if sc.revoked.Load() {
			return // onTokensChanged is closing the socket with the reason
		}
		p, err := r.publish(host, b.Incidents)
		if err != nil {
			// Not stored (whole), not acknowledged: the sensor keeps the
			// batch and sends it again later. The acks already queued go
			// out first, then the reason for this batch, then the close:
			// 1013 (try again later) for a spent budget or a full disk,
			// which pass, 1011 for other storage failures.
			drainAcks()
			refuseBatch(ctx, c, b.Batch, refuseCode(err), err)
			return
		}
		p.ack.Batch = b.Batch
		select {
		case acks <- p:
		case <-ctx.Done():
			_ = c.CloseNow()
			return
		}
	}
}

// tokenPoll is how often the token file is stat()ed besides fsnotify, so
// a removed token's sockets close within a second even where inotify does
// not work (some network and container file systems).
const tokenPoll = 500 * time.Millisecond

// sensorConn is one authenticated ingest socket.
type sensorConn struct {
	c       *websocket.Conn
	entry   token.Entry
	cancel  context.CancelFunc
	revoked atomic.Bool
}

// sensorConns tracks the ingest sockets by token, for the per-token cap and
// for revocation.
type sensorConns struct {
	max int // per token name; negative: no cap

	mu     sync.Mutex
	conns  map[*sensorConn]struct{}
	byName map[string]int
}

func newSensorConns(max int) *sensorConns {
	return &sensorConns{max: max, conns: map[*sensorConn]struct{}{}, byName: map[string]int{}}
}

func (s *sensorConns) add(sc *sensorConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max >= 0 && s.byName[sc.entry.Name] >= s.max {
		return false
	}
	s.conns[sc] = struct{}{}
	s.byName[sc.entry.Name]++
	return true
}

func (s *sensorConns) remove(sc *sensorConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[sc]; !ok {
		return
	}
	delete(s.conns, sc)
	if s.byName[sc.entry.Name]--; s.byName[sc.entry.Name] <= 0 {
		delete(s.byName, sc.entry.Name)
	}
}

func (s *sensorConns) all() []*sensorConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*sensorConn, 0, len(s.conns))
	for sc := range s.conns {
		out = append(out, sc)
	}
	return out
}

// watchTokens keeps the token file current until the relay shuts down.
func (r *Relay) watchTokens() {
	defer close(r.tokensDone)
	_ = r.tokens.Watch(r.ctx, tokenPoll, r.onTokensChanged)
}

// onTokensChanged runs after every change of the token file: it logs a
// file that became unusable (once) or usable again, and closes every
// ingest socket whose token is no longer in the file.
func (r *Relay) onTokensChanged() {
	if err := r.tokens.Err(); err != nil {
		r.dm.tokenFileOK.Set(0)
		r.dm.tokenFileErrors.Inc()
		r.log.Error("token file unusable: refusing all sensor ingest until it is fixed", "err", err)
	} else {
		r.dm.tokenFileOK.Set(1)
		r.log.Info("token file loaded", "path", r.cfg.TokenFile)
	}
	// The bucket takes the file's changes (runTokenSync); its watcher
	// closes the sockets of tokens removed there. A file that became
	// unusable closes every socket here at once.
	select {
	case r.tk.kick <- struct{}{}:
	default: // an application is already due
	}
	r.revokeStale()
}

// revoke closes a socket whose token is gone: 1008 for a removed or
// changed token, 1013 while the token file is unusable (the sensor should
// try again; its token may come back).
func (r *Relay) revoke(sc *sensorConn) {
	if !sc.revoked.CompareAndSwap(false, true) {
		return
	}
	r.dm.revoked.Inc()
	code, reason := websocket.StatusPolicyViolation, "token revoked"
	if r.tokens.Err() != nil {
		code, reason = websocket.StatusTryAgainLater, "ingest unavailable: the relay cannot read its token file"
	}
	r.log.Info("closing a sensor connection", "host", sc.entry.Name, "reason", reason)
	// The close frame goes out at once; the handshake may then wait for
	// the sensor, so the read loop is ended by the cancel after it.
	_ = sc.c.Close(code, reason)
	sc.cancel()
}

// dataMetrics are the series of the data side: what the relay refuses to
// store and why. All prefixed attackmap_relay_.
type dataMetrics struct {
	timeRejected    *prometheus.CounterVec
	historyFull     *prometheus.CounterVec
	ingestRefused   *prometheus.CounterVec
	revoked         prometheus.Counter
	tokenFileOK     prometheus.Gauge
	tokenFileErrors prometheus.Counter
}

func newDataMetrics(reg prometheus.Registerer) *dataMetrics {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "attackmap", Subsystem: "relay", Name: name, Help: help}
	}
	m := &dataMetrics{
		timeRejected: prometheus.NewCounterVec(opts("incidents_bad_time_total",
			"Incidents rejected for their times, by sensor host and reason (ahead: more than 5 minutes ahead of the relay's clock, the sensor's clock is wrong; too_old: older than the history retention)."),
			[]string{"host", "reason"}),
		historyFull: prometheus.NewCounterVec(opts("batches_history_full_total",
			"Ingest batches refused (not acknowledged; the sensor sends them again later) because the day's history budget is spent, by host and limit (per_token, total)."),
			[]string{"host", "limit"}),
		ingestRefused: prometheus.NewCounterVec(opts("ingest_refused_total",
			"Ingest connections refused with a valid-looking token, by reason (token_file: the token file is missing, unreadable or malformed; per_token: the token already has its most connections)."),
			[]string{"reason"}),
		revoked: prometheus.NewCounter(opts("ingest_revoked_total",
			"Ingest connections closed because their token was removed or changed, or the token file became unusable.")),
		tokenFileOK: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "attackmap", Subsystem: "relay", Name: "token_file_ok",
			Help: "1 while the token file is readable and well formed, 0 while it is not and all ingest is refused."}),
		tokenFileErrors: prometheus.NewCounter(opts("token_file_errors_total",
			"Times the token file became missing, unreadable or malformed.")),
	}
	for _, c := range []prometheus.Collector{m.timeRejected, m.historyFull, m.ingestRefused, m.revoked, m.tokenFileOK, m.tokenFileErrors} {
		_ = reg.Register(c) // see metrics.register
	}
	return m
}

// ackWindow is how many acks may wait for the stream and the socket per
// sensor connection; 8 batches of up to 100 incidents is plenty of
// pipelining for a sensor, and bounds what one connection holds.
const ackWindow = 8

// refuseCode is the close status for a refused batch: 1013 (try again
// later) for a spent budget, a full disk or a lost stream, which pass, 1011
// for other storage failures.
func refuseCode(err error) websocket.StatusCode {
	if errors.Is(err, ErrHistoryFull) || errors.Is(err, ErrDiskFull) || errors.Is(err, ErrStreamUnavailable) {
		return websocket.StatusTryAgainLater
	}
	return websocket.StatusInternalError
}

// refuseBatch tells the sensor why batch was not stored (a TypeError
// message) and closes the socket with code.
func refuseBatch(ctx context.Context, c *websocket.Conn, batch uint64, code websocket.StatusCode, err error) {
	msg, _ := json.Marshal(incident.BatchError{Type: incident.TypeError, Batch: batch, Error: oneLine(err.Error())})
	wctx, wcancel := context.WithTimeout(ctx, ackTimeout)
	_ = c.Write(wctx, websocket.MessageText, msg)
	wcancel()
	_ = c.Close(code, closeReason(err.Error()))
}

// writeAcks waits for JetStream's ack of each batch and sends each ack in
// order. A batch the stream did not store whole is refused instead (an
// error message and 1013 for a full disk or a lost stream, which pass,
// 1011 otherwise), and so is everything after it. After a write error it closes
// the socket (the read loop then ends) and drains.
func (r *Relay) writeAcks(ctx context.Context, c *websocket.Conn, acks <-chan published, done chan<- struct{}) {
	defer close(done)
	failed := false
	for p := range acks {
		if failed {
			continue
		}
		if err := r.confirm(&p); err != nil {
			failed = true
			refuseBatch(ctx, c, p.ack.Batch, refuseCode(err), err)
			continue
		}
		msg, _ := json.Marshal(p.ack)
		wctx, cancel := context.WithTimeout(ctx, ackTimeout)
		err := c.Write(wctx, websocket.MessageText, msg)
		cancel()
		if err != nil {
			failed = true
			_ = c.CloseNow()
		}
	}
}

// closeReason fits a message into a close frame (at most 123 bytes).
func closeReason(s string) string { return incident.CleanText(s, 120) }

func bearer(h string) (string, bool) {
	const p = "bearer "
	if len(h) < len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	t := strings.TrimSpace(h[len(p):])
	return t, t != ""
}

func (r *Relay) trackIngest(c *websocket.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.streamsUp {
		return false
	}
	r.ingest[c] = struct{}{}
	return true
}

func (r *Relay) untrackIngest(c *websocket.Conn) {
	r.mu.Lock()
	delete(r.ingest, c)
	r.mu.Unlock()
}

// rejectEvery spaces the log lines about rejected sensor tokens: a
// misconfigured sensor retries every 30 s and a scanner may try thousands
// of times, so one line a minute (with the count it stands for) keeps the
// log readable and bounded whatever the rate.
const rejectEvery = time.Minute

// rejectLog logs rejected ingest tokens at most once per rejectEvery,
// never the token itself: its SHA-256 prefix, which the sensor logs too,
// ties the two sides' lines together.
type rejectLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *rejectLog) note(log *slog.Logger, remote, reason, tok string, now time.Time) {
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < rejectEvery {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	args := []any{"remote", remote, "reason", reason}
	if tok != "" {
		sum := sha256.Sum256([]byte(tok))
		args = append(args, "token_sha256_prefix", hex.EncodeToString(sum[:4]))
	}
	args = append(args, "more_since_last_line", n)
	log.Warn("ingest: rejected a sensor token (the token file names the accepted ones; attackmap-relay token list)", args...)
}
