package relay

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Refusal labels, also the "limit" label of the refusal metrics.
const (
	limitTotal   = "total"
	limitPerAddr = "per_addr"
	limitPerNet  = "per_net"
)

// subLimits counts SSE subscribers in total, per client address (IPv6 per
// /64) and per network (IPv4 /24, IPv6 /48). The network cap exists because
// one customer of a hosting provider or one home connection routinely
// holds a whole IPv6 /48 or /56, that is thousands of /64s: without it the
// global cap could be filled from a single site.
type subLimits struct {
	max, perAddr, perNet int

	mu     sync.Mutex
	total  int
	byAddr map[netip.Addr]int
	byNet  map[netip.Addr]int
}

func newSubLimits(max, perAddr, perNet int) *subLimits {
	return &subLimits{max: max, perAddr: perAddr, perNet: perNet,
		byAddr: map[netip.Addr]int{}, byNet: map[netip.Addr]int{}}
}

// acquire reserves a slot for addr (a key from clientAddr). It returns ""
// on success, or the limit that refused it: limitTotal (answer 503),
// limitPerAddr or limitPerNet (answer 429).
func (l *subLimits) acquire(addr netip.Addr) string {
	n := netKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.max > 0 && l.total >= l.max:
		return limitTotal
	case l.perAddr > 0 && l.byAddr[addr] >= l.perAddr:
		return limitPerAddr
	case l.perNet > 0 && l.byNet[n] >= l.perNet:
		return limitPerNet
	}
	l.total++
	l.byAddr[addr]++
	l.byNet[n]++
	return ""
}

func (l *subLimits) release(addr netip.Addr) {
	n := netKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	decr(l.byAddr, addr)
	decr(l.byNet, n)
}

func decr(m map[netip.Addr]int, k netip.Addr) {
	if n := m[k] - 1; n > 0 {
		m[k] = n
	} else {
		delete(m, k)
	}
}

// clientAddr returns the address the per-address limits count: the
// connection's peer, or the last address of the configured proxy header.
// IPv6 addresses are grouped by /64, the block one host usually holds.
func clientAddr(r *http.Request, header string) netip.Addr {
	var a netip.Addr
	if header != "" {
		v := r.Header.Values(header)
		if len(v) > 0 {
			parts := strings.Split(v[len(v)-1], ",")
			a, _ = netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1]))
		}
	}
	if !a.IsValid() {
		a = parseHostAddr(r.RemoteAddr)
	}
	return addrKey(a)
}

func parseHostAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr()
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		a, _ := netip.ParseAddr(h)
		return a
	}
	return netip.Addr{}
}

// addrKey is what the per-address caps count: an IPv4 address as is, an
// IPv6 address by its /64.
func addrKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a
}

// netKey is what the per-network cap counts: IPv4 /24, IPv6 /48 (the
// usual assignment to one site).
func netKey(a netip.Addr) netip.Addr {
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return a // the invalid address: one bucket
	}
	return p.Addr()
}

// connLimits counts open connections (or, behind a proxy, requests in
// progress) in total and per client address.
type connLimits struct {
	max, perAddr int

	mu     sync.Mutex
	total  int
	byAddr map[netip.Addr]int
}

func newConnLimits(max, perAddr int) *connLimits {
	return &connLimits{max: max, perAddr: perAddr, byAddr: map[netip.Addr]int{}}
}

// acquire counts one connection from addr; it returns "" or the limit
// that refused it.
func (l *connLimits) acquire(addr netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return limitTotal
	}
	// The invalid address (no per-address counting: behind a proxy, or
	// a peer that is not IP) is only counted in the total.
	if l.perAddr > 0 && addr.IsValid() && l.byAddr[addr] >= l.perAddr {
		return limitPerAddr
	}
	l.total++
	l.byAddr[addr]++
	return ""
}

func (l *connLimits) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	decr(l.byAddr, addr)
}

// open returns the number of connections counted.
func (l *connLimits) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// limitListener counts every accepted connection from accept to close,
// whether it completes a request, idles, is hijacked for a stream or is
// upgraded to a WebSocket, and closes connections over the caps at once.
// Counting here rather than per request is what stops a client that opens
// connections and never finishes a request head, or trickles a body.
type limitListener struct {
	net.Listener
	limits *connLimits
	// perAddr is false behind a trusted proxy: every connection then
	// comes from the proxy, and the per-address cap is applied to
	// requests by their forwarded address instead (see Relay.guard in http.go).
	perAddr bool
	refused func(limit string)
}

func (ln *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := netip.Addr{}
		if ln.perAddr {
			key = addrKey(parseHostAddr(c.RemoteAddr().String()))
		}
		if lim := ln.limits.acquire(key); lim != "" {
			refuseConn(c, lim)
			if ln.refused != nil {
				ln.refused(lim)
			}
			continue
		}
		return &trackedConn{Conn: c, limits: ln.limits, key: key}, nil
	}
}

// refuseConn answers a connection over a cap with a complete HTTP response
// and closes it. The response is a few hundred bytes written to a new
// socket whose send buffer is empty, so it does not block; the 50 ms write
// deadline is only a guard, because the accept loop must never wait on a
// client. A client whose request already arrived may see a reset instead of
// the answer; either way the relay holds nothing for it. Retry-After as for
// streams (see http.go).
func refuseConn(c net.Conn, limit string) {
	_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	_, _ = c.Write(refusal(limit))
	_ = c.Close()
}

func refusal(limit string) []byte {
	code, text, retry := "429 Too Many Requests", "too many connections from your address, retry later\n", retryPerAddr
	if limit == limitTotal {
		code, text, retry = "503 Service Unavailable", "relay is at its connection limit, retry later\n", retryFull
	}
	return []byte("HTTP/1.1 " + code + "\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: " + retry +
		"\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(text)) + "\r\n\r\n" + text)
}

// The header phase. A new connection's first request head is read by
// headListener, before net/http sees the connection: net/http gives every
// connection, from accept on, a goroutine whose stack has grown through its
// request parser, a 4 KiB read buffer, a 4 KiB write buffer and its
// per-connection state, about 12 KiB of heap and stack; a connection that
// trickles its head (slowloris) holds all of it for the whole header
// timeout, and the tool reopens one the moment the relay drops it, so 1,000
// of them cost the relay 10 MiB live and twice that in garbage. Here such a
// connection costs a goroutine parked in one read and a 1 KiB buffer.
const (
	// headTimeout is how long a new connection has, from accept, to send
	// its whole first request head (as net/http's ReadHeaderTimeout, which
	// still applies to later requests on a kept-alive connection). It is
	// not shorter because a shorter one buys nothing against slowloris:
	// the tool reconnects at once, so as many of its connections are open
	// whatever the timeout, and a shorter one only makes it reconnect more
	// often (more accepts, more garbage). What bounds the attack is how
	// little each connection holds (here) and the per-address cap.
	headTimeout = 10 * time.Second
	// headBuffer is the first read's buffer: a browser's request head,
	// cookies included, usually fits, in one read; it doubles up to
	// headLimit for larger ones.
	headBuffer = 1 << 10
	// maxHeaderBytes is the server's MaxHeaderBytes: request heads are
	// small (a GET with a few headers); 16 KiB leaves room for cookies of
	// a shared domain.
	maxHeaderBytes = 16 << 10
	// headLimit is where the header phase stops reading and hands the
	// connection over anyway: past net/http's own limit (MaxHeaderBytes
	// plus the 4 KiB it allows on top), so that net/http answers 431.
	headLimit = maxHeaderBytes + 4<<10
)

// headListener hands connections to net/http only once their first request
// head has arrived whole (or is too large, for net/http to refuse); a
// connection that does not send one within headTimeout is closed without
// net/http ever seeing it. It wraps the limitListener, so the connection is
// counted against the caps from accept on, whatever phase it is in.
type headListener struct {
	ln *limitListener

	ready chan net.Conn // heads read, waiting for net/http's Accept
	errs  chan error    // accept errors, handed to net/http one at a time
	done  chan struct{} // closed by Close
	once  sync.Once

	mu      sync.Mutex
	pending map[*trackedConn]struct{} // in the header phase, closed by Close
}

func newHeadListener(ln *limitListener) *headListener {
	h := &headListener{ln: ln, ready: make(chan net.Conn), errs: make(chan error),
		done: make(chan struct{}), pending: map[*trackedConn]struct{}{}}
	go h.acceptLoop()
	return h
}

// acceptLoop accepts (and counts, or refuses) connections and starts the
// header phase of each. An accept error is handed to net/http's Accept and
// the loop waits for it to be taken, so net/http's backoff on temporary
// errors (out of descriptors) paces this loop too.
func (h *headListener) acceptLoop() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			select {
			case h.errs <- err:
				continue
			case <-h.done:
				return
			}
		}
		go h.readHead(c.(*trackedConn))
	}
}

func (h *headListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.ready:
		return c, nil
	case err := <-h.errs:
		return nil, err
	case <-h.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the connections still in their header
// phase (net/http does not know them, so its Shutdown cannot).
func (h *headListener) Close() error {
	var err error
	h.once.Do(func() {
		close(h.done)
		err = h.ln.Close()
		h.mu.Lock()
		for c := range h.pending {
			_ = c.Close()
		}
		h.pending = nil
		h.mu.Unlock()
	})
	return err
}

func (h *headListener) Addr() net.Addr { return h.ln.Addr() }

// readHead reads c's first request head into c.head and hands c to Accept.
func (h *headListener) readHead(c *trackedConn) {
	h.mu.Lock()
	if h.pending == nil { // closed meanwhile
		h.mu.Unlock()
		_ = c.Close()
		return
	}
	h.pending[c] = struct{}{}
	h.mu.Unlock()
	head, ok := readHead(c.Conn, headTimeout, headLimit)
	h.mu.Lock()
	closed := h.pending == nil
	delete(h.pending, c)
	h.mu.Unlock()
	if !ok || closed {
		_ = c.Close()
		return
	}
	c.head = head
	select {
	case h.ready <- c:
	case <-h.done:
		_ = c.Close()
	}
}

// readHead reads from c until the bytes read hold a whole request head (up
// to an empty line, CRLF or bare LF line ends as net/http accepts) or limit
// bytes, within timeout. It returns what it read (the head and whatever
// came after it in the same reads), or false when c failed, ended or timed
// out first. It does not parse: net/http does, from these bytes.
func readHead(c net.Conn, timeout time.Duration, limit int) ([]byte, bool) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 0, min(headBuffer, limit))
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(2*cap(buf), limit))
			copy(nb, buf)
			buf = nb
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		// Only the new bytes (and the two before them, for an empty line
		// split over reads) are searched: a head sent a byte at a time
		// costs linear work, not quadratic.
		from := max(0, len(buf)-2)
		buf = buf[:len(buf)+n]
		if headEnd(buf, from) {
			break
		}
		if err != nil {
			return nil, false
		}
	}
	// net/http sets its own deadlines from here on.
	_ = c.SetReadDeadline(time.Time{})
	return buf, true
}

// headEnd reports whether b holds, at a line end from index from on, the
// empty line that ends a request head (CRLF or bare LF).
func headEnd(b []byte, from int) bool {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' || i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return true
		}
	}
	return false
}

// trackedConn releases its count when closed. A connection closed after a
// write ran into its deadline (a client that stopped reading) is reset
// rather than closed gracefully: a graceful close would leave the unsent
// bytes in the kernel, retried for minutes, and a few dozen such clients
// pin hundreds of megabytes of socket buffers.
type trackedConn struct {
	net.Conn
	// head is what headListener read before net/http took over: Read
	// returns it first.
	head     []byte
	limits   *connLimits
	key      netip.Addr
	timedOut atomic.Bool
	once     sync.Once
}

func (c *trackedConn) Read(b []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(b, c.head)
		c.head = c.head[n:]
		if len(c.head) == 0 {
			c.head = nil // let the buffer go
		}
		return n, nil
	}
	return c.Conn.Read(b)
}

func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.timedOut.Store(true)
	}
	return n, err
}

func (c *trackedConn) Close() error {
	if c.timedOut.Load() {
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	err := c.Conn.Close()
	c.once.Do(func() { c.limits.release(c.key) })
	return err
}

// CloseWrite lets net/http half-close before a graceful close, as it does
// on a bare TCP connection.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// UnwrapConn gives the hub the socket itself, to write SSE frames on it
// without a goroutine (see hub.ConnSink); closing still goes through
// trackedConn.
func (c *trackedConn) UnwrapConn() net.Conn { return c.Conn }

// tcpConn returns the TCP socket under c, if any.
func tcpConn(c net.Conn) (*net.TCPConn, bool) {
	if t, ok := c.(*trackedConn); ok {
		c = t.Conn
	}
	tc, ok := c.(*net.TCPConn)
	return tc, ok
}

// rateLimits is a token bucket per sensor token (by name): rate incidents
// per second, up to burst. A batch waits until its incidents are covered.
type rateLimits struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rateBucket
}

type rateBucket struct {
	tokens float64
	last   time.Time
}

func newRateLimits(rate float64, burst int, now func() time.Time) *rateLimits {
	return &rateLimits{rate: rate, burst: float64(burst), now: now, buckets: map[string]*rateBucket{}}
}

// reserve takes n tokens from name's bucket (going into debt if needed) and
// returns how long the caller must wait before using them.
func (l *rateLimits) reserve(name string, n int) time.Duration {
	if l.rate <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[name]
	if b == nil {
		b = &rateBucket{tokens: l.burst, last: now}
		l.buckets[name] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / l.rate * float64(time.Second))
}

// wait reserves n tokens and sleeps until they are covered or ctx ends.
func (l *rateLimits) wait(ctx context.Context, name string, n int) error {
	d := l.reserve(name, n)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
