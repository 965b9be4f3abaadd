package relay

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadHeadReturnsEveryByteOnceTheHeadIsWhole(t *testing.T) {
	for _, tc := range []struct {
		name, sent string
		chunk      int // bytes per write
		limit      int
		ok         bool
		want       string // what readHead returns when ok
	}{
		{name: "CRLF head in one write", sent: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", chunk: 1 << 10, limit: 1 << 10, ok: true},
		{name: "CRLF head a byte at a time", sent: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", chunk: 1, limit: 1 << 10, ok: true},
		{name: "bare LF head a byte at a time", sent: "GET / HTTP/1.1\nHost: a\n\n", chunk: 1, limit: 1 << 10, ok: true},
		{name: "head split in pairs, body bytes after it kept", sent: "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n", chunk: 2, limit: 1 << 10, ok: true},
		{name: "head larger than the first buffer", sent: "GET / HTTP/1.1\r\nCookie: " + strings.Repeat("c", 3000) + "\r\n\r\n", chunk: 700, limit: 8 << 10, ok: true},
		{name: "too large: handed over at the limit", sent: "GET / HTTP/1.1\r\nCookie: " + strings.Repeat("c", 3000), chunk: 512, limit: 2000, ok: true,
			want: ("GET / HTTP/1.1\r\nCookie: " + strings.Repeat("c", 3000))[:2000]},
		{name: "unfinished head then close", sent: "GET / HTTP/1.1\r\nHost: a\r\n", chunk: 3, limit: 1 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := net.Pipe()
			defer c.Close()
			go func() {
				for s := tc.sent; s != ""; {
					n := min(tc.chunk, len(s))
					if _, err := io.WriteString(peer, s[:n]); err != nil {
						return
					}
					s = s[n:]
				}
				// net.Pipe has no buffer: the writes above all went
				// through, readHead has what it read; close what is left.
				peer.Close()
			}()
			got, ok := readHead(c, 5*time.Second, tc.limit)
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v (read %q)", ok, tc.ok, got)
			}
			if !ok {
				return
			}
			// readHead stops at the head's end (or the limit); the rest
			// is still in the pipe, for net/http.
			rest, _ := io.ReadAll(c)
			if string(got)+string(rest) != tc.sent {
				t.Fatalf("read %q then %q, want %q in all", got, rest, tc.sent)
			}
			switch {
			case tc.want != "" && string(got) != tc.want:
				t.Fatalf("read %q, want %q", got, tc.want)
			case tc.want == "" && !headEnd(got, 0):
				t.Fatalf("read %q: handed over before the head's end", got)
			}
		})
	}
}

func TestReadHeadGivesUpAfterItsTimeout(t *testing.T) {
	c, peer := net.Pipe()
	defer c.Close()
	defer peer.Close()
	go func() { _, _ = io.WriteString(peer, "GET / HTTP/1.1\r\n") }()
	start := time.Now()
	if got, ok := readHead(c, 100*time.Millisecond, 1<<10); ok {
		t.Fatalf("a head that never ends was accepted: %q", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v, timeout 100ms", d)
	}
}

// TestUnfinishedHeadsNeverReachNetHTTP: connections trickling their first
// request head are held by the header phase, not by net/http (no
// connection state, no goroutine and buffers of its own), are still counted
// by the connection caps, and are closed with the listener. Complete and
// pipelined requests are answered as before.
func TestUnfinishedHeadsNeverReachNetHTTP(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limits := newConnLimits(-1, -1)
	ln := newHeadListener(&limitListener{Listener: raw, limits: limits, perAddr: true})
	var seen atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.URL.Path) }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				seen.Add(1)
			}
		},
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := raw.Addr().String()

	const slow = 20
	var slowConns []net.Conn
	for range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: relay\r\nX-a: b\r\n"); err != nil {
			t.Fatal(err)
		}
		slowConns = append(slowConns, c)
	}

	// Two pipelined requests in one write: both answered, in order.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /one HTTP/1.1\r\nHost: relay\r\n\r\nGET /two HTTP/1.1\r\nHost: relay\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, want := range []string{"/one", "/two"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			t.Fatalf("answer %q, want %q", body, want)
		}
	}
	// A head over the limit still gets net/http's 431.
	big, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	go func() {
		_, _ = io.WriteString(big, "GET / HTTP/1.1\r\nHost: relay\r\nCookie: "+strings.Repeat("c", headLimit)+"\r\n\r\n")
	}()
	_ = big.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(big), nil); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized head: %v %v, want 431", resp, err)
	}

	if n := seen.Load(); n != 2 {
		t.Errorf("net/http saw %d connections, want 2 (the complete and the oversized heads, not the %d unfinished ones)", n, slow)
	}
	if n := limits.open(); n < slow+2 {
		t.Errorf("%d connections counted, want at least %d: unfinished heads must count", n, slow+2)
	}

	// Closing the listener closes the connections still in their header
	// phase: net/http's Shutdown does not know them.
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range slowConns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
			t.Fatalf("unfinished head %d after Close: read %q, %v; want EOF", i, b, err)
		}
	}
	if err := <-served; err == nil || !strings.Contains(err.Error(), net.ErrClosed.Error()) {
		t.Fatalf("Serve returned %v, want net.ErrClosed", err)
	}
}
