package relay

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/attackmap/attackmap/incident"
)

// ackTimeout bounds writing one ack: a sensor that does not read its acks
// for 10 s is stuck, and its socket is closed so it reconnects.
const ackTimeout = 10 * time.Second

// serveIngest is the sensor WebSocket (/api/ingest). The token is checked
// after the upgrade so a bad one can be answered with close status 1008 and
// a reason, as the protocol says. No CORS: coder/websocket refuses
// cross-origin browser upgrades by default.
func (r *Relay) serveIngest(w http.ResponseWriter, req *http.Request) {
	tok, hasTok := bearer(req.Header.Get("Authorization"))
	var host Host
	ok := false
	if r.tokens != nil && hasTok {
		e, found, ferr := r.tokens.Lookup(tok)
		if ferr != nil {
			r.log.Warn("token file not reloaded; keeping the previous tokens", "err", ferr)
		}
		if found {
			ok, host = true, Host{Name: e.Name, Target: e.Target}
		}
	}
	c, err := websocket.Accept(w, req, nil)
	if err != nil {
		return // Accept answered the request
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
		_ = c.Close(websocket.StatusPolicyViolation, reason)
		return
	}
	c.SetReadLimit(incident.MaxMessageBytes)
	if !r.trackIngest(c) {
		_ = c.Close(websocket.StatusGoingAway, "relay shutting down")
		return
	}
	defer r.untrackIngest(c)
	r.log.Debug("sensor connected", "host", host.Name, "remote", req.RemoteAddr)
	ctx := r.ctx
	// Acks go out from their own goroutine after the history is fsynced,
	// so the read loop publishes the next batch while the disk works and
	// broadcasts never wait for fsync. At most ackWindow acks wait: a
	// sensor that pipelines further is slowed down by the read loop.
	acks := make(chan incident.Ack, ackWindow)
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
		ack, err := r.publish(host, b.Incidents)
		if err != nil {
			// Not stored: no ack. The sensor resends the batch after it
			// reconnects; the acks already queued still go out first.
			drainAcks()
			_ = c.Close(websocket.StatusInternalError, closeReason("relay could not store the batch; send it again"))
			return
		}
		ack.Batch = b.Batch
		select {
		case acks <- ack:
		case <-ctx.Done():
			_ = c.CloseNow()
			return
		}
	}
}

// ackWindow is how many acks may wait for fsync and the socket per
// sensor connection; 8 batches of up to 100 incidents is plenty of
// pipelining for a sensor, and bounds what one connection holds.
const ackWindow = 8

// writeAcks fsyncs the history and sends each ack in order. After a write
// error it closes the socket (the read loop then ends) and drains.
func (r *Relay) writeAcks(ctx context.Context, c *websocket.Conn, acks <-chan incident.Ack, done chan<- struct{}) {
	defer close(done)
	failed := false
	for ack := range acks {
		if failed {
			continue
		}
		r.syncHistory()
		msg, _ := json.Marshal(ack)
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
