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
	"sync"
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

// WS delivers batches to one relay over the ingest WebSocket
// (/api/ingest, docs/DESIGN.md). It connects on first use and after any error,
// so one WS lives as long as the daemon. It is used by one goroutine.
type WS struct {
	url   string
	token string
	opts  WSOptions
	log   *slog.Logger

	conn  *wsConn
	batch uint64
}

// NewWS returns a sink for the relay at url (ws:// or wss://, path
// included, e.g. wss://relay.example.org/api/ingest) authenticating with
// token.
func NewWS(url, token string, opts WSOptions) *WS {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 60 * time.Second
	}
	w := &WS{url: url, token: token, opts: opts, log: opts.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w
}

// wsConn is one connection and the goroutine reading its acks. Reading all
// the time (not only while waiting for an ack) answers the relay's pings
// and notices a close promptly.
type wsConn struct {
	c    *websocket.Conn
	acks chan incident.Ack
	done chan struct{}
	err  error // set before done is closed
	once sync.Once
}

func (w *WS) dial(ctx context.Context) (*wsConn, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.DialTimeout)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+w.token)
	c, resp, err := websocket.Dial(ctx, w.url, &websocket.DialOptions{HTTPClient: w.opts.HTTPClient, HTTPHeader: h})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("push: connecting to %s: HTTP %d: %w", w.url, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("push: connecting to %s: %w", w.url, err)
	}
	// An ack with 100 rejections of a few hundred bytes each is under
	// 64 KiB; 1 MiB leaves room and still bounds a hostile relay.
	c.SetReadLimit(1 << 20)
	// acks holds a few acks: only one batch is in flight, so more than one
	// waiting ack means the relay repeats itself, and we drop the extra.
	wc := &wsConn{c: c, acks: make(chan incident.Ack, 4), done: make(chan struct{})}
	go wc.readLoop()
	// Debug: a connection is not yet an accepted token (the relay checks
	// it after the upgrade); the Forwarder logs the first success.
	w.log.Debug("push: connection open", "relay", w.url)
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
// connection; the next call reconnects.
func (w *WS) Deliver(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
	if w.conn == nil {
		c, err := w.dial(ctx)
		if err != nil {
			return incident.Ack{}, err
		}
		w.conn = c
	}
	ack, err := w.deliver(ctx, batch)
	if err != nil {
		w.conn.close()
		w.conn = nil
	}
	return ack, err
}

func (w *WS) deliver(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
	w.batch++
	msg, err := json.Marshal(incident.Batch{Type: incident.TypeIncidents, Batch: w.batch, Incidents: batch})
	if err != nil {
		return incident.Ack{}, fmt.Errorf("push: encoding batch: %w", err)
	}
	// Drop acks of earlier batches that came after their timeout.
	for len(w.conn.acks) > 0 {
		<-w.conn.acks
	}
	wctx, cancel := context.WithTimeout(ctx, w.opts.WriteTimeout)
	err = w.conn.c.Write(wctx, websocket.MessageText, msg)
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
			return incident.Ack{}, fmt.Errorf("push: no ack from %s within %v", w.url, w.opts.AckTimeout)
		case <-ctx.Done():
			return incident.Ack{}, ctx.Err()
		}
	}
}

// connErr explains a connection error, naming the relay's close reason
// (1008 bad token, 1009 message too big).
func (w *WS) connErr(doing string, err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Code == websocket.StatusPolicyViolation {
		return fmt.Errorf("push: %s: relay %s closed the connection: %d %s: %w", doing, w.url, ce.Code,
			incident.CleanText(ce.Reason, 200), ErrTokenRejected)
	}
	if errors.As(err, &ce) {
		return fmt.Errorf("push: %s: relay %s closed the connection: %d %s", doing, w.url, ce.Code, incident.CleanText(ce.Reason, 200))
	}
	return fmt.Errorf("push: %s to %s: %w", doing, w.url, err)
}

// Probe connects if needed and sends an empty batch, which a relay
// acknowledges without storing anything: a round trip that proves the relay
// is there and takes the token (a rejected token is ErrTokenRejected).
func (w *WS) Probe(ctx context.Context) error {
	ack, err := w.Deliver(ctx, []json.RawMessage{})
	if err == nil && ack.Accepted != 0 {
		err = fmt.Errorf("push: relay %s acknowledged %d incidents of an empty batch", w.url, ack.Accepted)
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
