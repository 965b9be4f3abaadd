package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/attackmap/attackmap/incident"
)

// WSOptions configure a WebSocket sink.
type WSOptions struct {
	// DialTimeout bounds connecting and the upgrade. 0 means 10 s: a relay
	// across the world answers in well under a second; longer means it is
	// not there.
	DialTimeout time.Duration
	// WriteTimeout bounds sending one batch (at most 256 KiB). 0 means 10 s.
	WriteTimeout time.Duration
	// AckTimeout bounds the wait for a batch's ack. 0 means 60 s: the
	// relay slows a sensor over its ingest rate down instead of refusing
	// it (a catch-up after an outage runs at 100 incidents/s), so an ack
	// may legitimately take a few seconds; a minute means the socket is
	// dead.
	AckTimeout time.Duration
	// HTTPClient for the upgrade request; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Logger; nil discards.
	Logger *slog.Logger
}

// WS delivers batches to one destination over the ingest WebSocket
// (/api/ingest, docs/DESIGN.md): one relay, or a relay cluster reachable
// at several URLs (relays sharing one JetStream stream, which de-duplicates
// by host, id and last_seen). It connects on first use and after any
// error, so one WS lives as long as the daemon. It is used by one
// goroutine; URL, Failovers and the other accessors are safe from any.
//
// With several URLs it talks to one at a time and fails over to the next
// (round robin) when that one cannot be reached, refuses the connection or
// the batch, or stalls (no ack within AckTimeout): the batch that was not
// acknowledged is sent again there. A rejected token is not a reason to
// fail over, since every relay of a cluster shares one token store. Each
// URL keeps its own backoff (see retryIn), so moving to a URL that has not
// failed is immediate, and a destination whose URLs all fail is retried as
// one URL would be.
type WS struct {
	urls  []string
	token string
	opts  WSOptions
	log   *slog.Logger

	conn  *wsConn
	batch uint64
	buf   []byte // the last batch message, reused: one encode, no allocation once grown

	// The failover state, touched only by the delivering goroutine except
	// for the atomics.
	fails    []int       // consecutive failures of each URL (0 after an ack)
	failedAt []time.Time // when each URL last failed
	okSince  []bool      // each URL has answered since its last failure
	cur      atomic.Int32
	failover atomic.Uint64
}

// NewWS returns a sink for one destination reachable at any of urls (ws://
// or wss://, path included, e.g. wss://relay.example.org/api/ingest; at
// least one, the first tried first), authenticating with token at each.
// See WS for the failover between several.
func NewWS(urls []string, token string, opts WSOptions) *WS {
	if len(urls) == 0 {
		panic("push: NewWS needs at least one URL")
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 60 * time.Second
	}
	w := &WS{urls: slices.Clone(urls), token: token, opts: opts, log: opts.Logger,
		fails: make([]int, len(urls)), failedAt: make([]time.Time, len(urls)), okSince: make([]bool, len(urls))}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w
}

// URL returns the URL in use (or to be tried next), its index in the list
// and the number of URLs.
func (w *WS) URL() (url string, index, count int) {
	i := int(w.cur.Load())
	return w.urls[i], i, len(w.urls)
}

// Failovers counts the moves from one URL to the next.
func (w *WS) Failovers() uint64 { return w.failover.Load() }

// failed records a failed attempt at URL i and moves to the next URL
// unless the token was rejected (the same answer everywhere) or there is
// only one. It logs a failover away from a URL that had been answering;
// going round URLs that all fail is left to the forwarder's retry lines,
// whose errors name each URL.
func (w *WS) failed(i int, err error) {
	w.fails[i]++
	w.failedAt[i] = time.Now()
	wasOK := w.okSince[i]
	w.okSince[i] = false
	if len(w.urls) < 2 {
		return
	}
	if errors.Is(err, ErrTokenRejected) {
		if wasOK || w.fails[i] == 1 {
			w.log.Warn("push: not failing over: the token was rejected, and every relay of the destination shares the token store",
				"relay", w.urls[i])
		}
		return
	}
	next := (i + 1) % len(w.urls)
	w.cur.Store(int32(next))
	w.failover.Add(1)
	if wasOK {
		w.log.Warn("push: failing over to the next relay URL; unacknowledged incidents are sent again there",
			"from", w.urls[i], "to", w.urls[next], "err", err)
	}
}

// retryIn is how long to wait before the next attempt after a failure:
// what is left of the backoff of the URL to be tried next (nothing for a
// URL that has not failed). With one URL it is the plain backoff.
func (w *WS) retryIn(b Backoff) time.Duration {
	i := int(w.cur.Load())
	if w.fails[i] == 0 {
		return 0
	}
	return max(0, b.wait(w.fails[i])-time.Since(w.failedAt[i]))
}

// wsConn is one connection and the goroutine reading its acks. Reading all
// the time (not only while waiting for an ack) answers the relay's pings
// and notices a close promptly.
type wsConn struct {
	c    *websocket.Conn
	url  string
	acks chan incident.Ack
	done chan struct{}
	err  error // set before done is closed
	once sync.Once
}

func (w *WS) dial(ctx context.Context, url string) (*wsConn, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.DialTimeout)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+w.token)
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: w.opts.HTTPClient, HTTPHeader: h})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("push: connecting to %s: HTTP %d: %w", url, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("push: connecting to %s: %w", url, err)
	}
	// An ack with 100 rejections of a few hundred bytes each is under
	// 64 KiB; 1 MiB leaves room and still bounds a hostile relay.
	c.SetReadLimit(1 << 20)
	// acks holds a few acks: only one batch is in flight, so more than one
	// waiting ack means the relay repeats itself, and we drop the extra.
	wc := &wsConn{c: c, url: url, acks: make(chan incident.Ack, 4), done: make(chan struct{})}
	go wc.readLoop()
	// Debug: a connection is not yet an accepted token (the relay checks
	// it after the upgrade); the Forwarder logs the first success.
	w.log.Debug("push: connection open", "relay", url)
	return wc, nil
}

func (wc *wsConn) readLoop() {
	for {
		typ, data, err := wc.c.Read(context.Background())
		if err != nil {
			wc.fail(err)
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var ack incident.Ack
		if err := json.Unmarshal(data, &ack); err != nil || ack.Type != incident.TypeAck {
			continue // not an ack: nothing else is defined relay -> sensor
		}
		select {
		case wc.acks <- ack:
		default:
		}
	}
}

func (wc *wsConn) fail(err error) {
	wc.once.Do(func() {
		wc.err = err
		close(wc.done)
	})
}

func (wc *wsConn) close() {
	wc.fail(errors.New("push: connection closed"))
	wc.c.CloseNow()
}

// Deliver sends one batch and waits for its ack. Any error closes the
// connection and, with several URLs, moves to the next one (see WS); the
// next call reconnects.
func (w *WS) Deliver(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
	i := int(w.cur.Load())
	if w.conn == nil {
		c, err := w.dial(ctx, w.urls[i])
		if err != nil {
			if ctx.Err() == nil {
				w.failed(i, err)
			}
			return incident.Ack{}, err
		}
		w.conn = c
	}
	ack, err := w.deliver(ctx, batch)
	if err != nil {
		w.conn.close()
		w.conn = nil
		if ctx.Err() == nil {
			w.failed(i, err)
		}
		return ack, err
	}
	w.fails[i], w.okSince[i] = 0, true
	return ack, nil
}

// appendBatch appends the ingest message {"type":"incidents","batch":n,
// "incidents":[...]} to dst, with the incidents' bytes as they are: each
// must be one JSON value (the forwarder sends journal lines that passed
// CheckLine and decoded as incidents, or its own encodes). It is the one
// encode of a batch: no reflection, no copy of an incident beyond this
// append, and dst is reused from batch to batch.
func appendBatch(dst []byte, n uint64, batch []json.RawMessage) []byte {
	dst = append(dst, `{"type":"`+incident.TypeIncidents+`","batch":`...)
	dst = strconv.AppendUint(dst, n, 10)
	dst = append(dst, `,"incidents":[`...)
	for i, raw := range batch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, raw...)
	}
	return append(dst, "]}"...)
}

func (w *WS) deliver(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
	w.batch++
	for i, raw := range batch {
		if len(raw) == 0 {
			// An empty element would make the whole message invalid.
			return incident.Ack{}, fmt.Errorf("push: batch element %d is empty", i)
		}
	}
	w.buf = appendBatch(w.buf[:0], w.batch, batch)
	msg := w.buf
	if cap(w.buf) > 2*incident.MaxMessageBytes {
		w.buf = nil // not kept: an oversized one-off
	}
	// Drop acks of earlier batches that came after their timeout.
	for len(w.conn.acks) > 0 {
		<-w.conn.acks
	}
	wctx, cancel := context.WithTimeout(ctx, w.opts.WriteTimeout)
	err := w.conn.c.Write(wctx, websocket.MessageText, msg)
	cancel()
	if err != nil {
		// The relay closes a socket with a bad token right after the
		// upgrade, so a write may fail before the read loop has the close
		// frame; its reason (1008 bad token) says more than the write's
		// error. A close takes one round trip: 2 s is plenty.
		t := time.NewTimer(2 * time.Second)
		defer t.Stop()
		select {
		case <-w.conn.done:
			var ce websocket.CloseError
			if errors.As(w.conn.err, &ce) {
				err = w.conn.err
			}
		case <-t.C:
		case <-ctx.Done():
		}
		return incident.Ack{}, w.connErr("sending batch", err)
	}
	t := time.NewTimer(w.opts.AckTimeout)
	defer t.Stop()
	for {
		select {
		case ack := <-w.conn.acks:
			if ack.Batch != w.batch {
				continue
			}
			return ack, nil
		case <-w.conn.done:
			return incident.Ack{}, w.connErr("waiting for the ack", w.conn.err)
		case <-t.C:
			return incident.Ack{}, fmt.Errorf("push: no ack from %s within %v", w.conn.url, w.opts.AckTimeout)
		case <-ctx.Done():
			return incident.Ack{}, ctx.Err()
		}
	}
}

// connErr explains a connection error, naming the relay's close reason
// (1008 bad token, 1009 message too big).
func (w *WS) connErr(doing string, err error) error {
	url := w.conn.url
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Code == websocket.StatusPolicyViolation {
		return fmt.Errorf("push: %s: relay %s closed the connection: %d %s: %w", doing, url, ce.Code,
			incident.CleanText(ce.Reason, 200), ErrTokenRejected)
	}
	if errors.As(err, &ce) {
		return fmt.Errorf("push: %s: relay %s closed the connection: %d %s", doing, url, ce.Code, incident.CleanText(ce.Reason, 200))
	}
	return fmt.Errorf("push: %s to %s: %w", doing, url, err)
}

// Probe connects if needed and sends an empty batch, which a relay
// acknowledges without storing anything: a round trip that proves the relay
// is there and takes the token (a rejected token is ErrTokenRejected).
func (w *WS) Probe(ctx context.Context) error {
	ack, err := w.Deliver(ctx, []json.RawMessage{})
	if err == nil && ack.Accepted != 0 {
		u, _, _ := w.URL()
		err = fmt.Errorf("push: relay %s acknowledged %d incidents of an empty batch", u, ack.Accepted)
	}
	return err
}

// TokenID is the first 8 hex digits of the token's SHA-256: the relay's
// token file holds the whole hash on the line of the host the token was
// made for, so an operator can find that line without the token being
// logged.
func (w *WS) TokenID() string {
	sum := sha256.Sum256([]byte(w.token))
	return hex.EncodeToString(sum[:4])
}

// Close closes the connection.
func (w *WS) Close() error {
	if w.conn != nil {
		w.conn.c.Close(websocket.StatusNormalClosure, "sensor stopping")
		w.conn.close()
		w.conn = nil
	}
	return nil
}
