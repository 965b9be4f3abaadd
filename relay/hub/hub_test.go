package hub

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-ch
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// With a tiny send buffer and a client that starts reading late, writes
// are partial and the socket is often full; the bytes must still arrive
// exactly, in order, once each.
func TestPartialWritesDeliverExactBytes(t *testing.T) {
	h := New(Options{RingSize: 4096, MaxQueue: 1 << 20, WriteTimeout: time.Minute, Writers: 2})
	defer h.Close()
	server, client := tcpPair(t)
	_ = server.(*net.TCPConn).SetWriteBuffer(4096)
	closed := make(chan Reason, 1)
	head := []byte("HEAD\n")
	if _, err := h.Subscribe(ConnSink(server, time.Minute), head, false, 0, func(r Reason) { closed <- r }); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	want.Write(head)
	seq := uint64(0)
	for b := 0; b < 30; b++ {
		var frames []*Frame
		for i := 0; i < 50; i++ {
			seq++
			data := []byte(fmt.Sprintf("id: %d\ndata: %s\n\n", seq, strings.Repeat(string(rune('a'+seq%26)), int(seq*37%2000))))
			want.Write(data)
			frames = append(frames, &Frame{Seq: seq, Data: data})
		}
		if err := h.Publish(frames...); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, want.Len())
	_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("read %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		i := 0
		for i < len(got) && got[i] == want.Bytes()[i] {
			i++
		}
		t.Fatalf("stream differs at byte %d of %d", i, len(got))
	}
	select {
	case r := <-closed:
		t.Fatalf("subscriber removed: %v", r)
	default:
	}
}

func TestResumePoints(t *testing.T) {
	h := New(Options{RingSize: 8})
	defer h.Close()
	frame := func(seq uint64) *Frame { return &Frame{Seq: seq, Data: []byte(fmt.Sprintf("%d;", seq))} }
	if err := h.Publish(frame(10), frame(20), frame(30)); err != nil {
		t.Fatal(err)
	}
	if err := h.Publish(frame(30)); err == nil {
		t.Fatal("sequence going back accepted")
	}
	for _, tc := range []struct {
		name   string
		resume bool
		after  uint64
		want   string
	}{
		{"live only", false, 0, "40;"},
		{"after 15", true, 15, "20;30;40;"},
		{"after 0", true, 0, "10;20;30;40;"},
		{"after the last", true, 30, "40;"},
		{"from the future", true, 99, "40;"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Options{RingSize: 8})
			defer h.Close()
			_ = h.Publish(frame(10), frame(20), frame(30))
			server, client := tcpPair(t)
			if _, err := h.Subscribe(ConnSink(server, time.Second), nil, tc.resume, tc.after, nil); err != nil {
				t.Fatal(err)
			}
			_ = h.Publish(frame(40))
			got := make([]byte, len(tc.want))
			_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(client, got); err != nil || string(got) != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

// cutBehindTheRing subscribes a client that reads nothing (small socket
// buffers) to a hub with a ring of 4, publishes 64 frames of 64 KiB past
// it, and waits for the subscriber to be cut off as slow. The hub is
// closed when the test ends.
func cutBehindTheRing(t *testing.T) (h *Hub, client net.Conn) {
	t.Helper()
	h = New(Options{RingSize: 4, MaxQueue: 1 << 20, WriteTimeout: time.Minute})
	t.Cleanup(func() { _ = h.Close() })
	server, client := tcpPair(t)
	_ = server.(*net.TCPConn).SetWriteBuffer(4096)
	_ = client.(*net.TCPConn).SetReadBuffer(4096)
	closed := make(chan Reason, 1)
	if _, err := h.Subscribe(ConnSink(server, time.Minute), nil, false, 0, func(r Reason) { closed <- r }); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 64<<10)
	for seq := uint64(1); seq <= 64; seq++ {
		_ = h.Publish(&Frame{Seq: seq, Data: big})
	}
	select {
	case r := <-closed:
		if r != ReasonSlow {
			t.Fatalf("reason %v, want slow", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not cut off")
	}
	return h, client
}

// A subscriber whose next frame was overwritten in the ring cannot be served
// without a gap and is cut off.
func TestFallenOffTheRingIsCut(t *testing.T) {
	h, _ := cutBehindTheRing(t)
	if h.Len() != 0 {
		t.Fatalf("Len %d after cut", h.Len())
	}
}

func TestCloseRemovesEveryone(t *testing.T) {
	h := New(Options{})
	reasons := make(chan Reason, 3)
	for range 3 {
		server, _ := tcpPair(t)
		if _, err := h.Subscribe(ConnSink(server, time.Second), nil, false, 0, func(r Reason) { reasons <- r }); err != nil {
			t.Fatal(err)
		}
	}
	h.Close()
	for range 3 {
		if r := <-reasons; r != ReasonShutdown {
			t.Fatalf("reason %v", r)
		}
	}
	if _, err := h.Subscribe(nil, nil, false, 0, nil); err != ErrClosed {
		t.Fatalf("subscribe after close: %v", err)
	}
	if err := h.Publish(&Frame{Seq: 1}); err != ErrClosed {
		t.Fatalf("publish after close: %v", err)
	}
}

// A subscriber whose client closes the connection is removed at once, with
// no frame or heartbeat to write that would find out: its owner's slot is
// free right away.
func TestPeerCloseRemovesAtOnce(t *testing.T) {
	h := New(Options{HeartbeatInterval: time.Hour})
	defer h.Close()
	for i := range 20 {
		server, client := tcpPair(t)
		closed := make(chan Reason, 1)
		if _, err := h.Subscribe(ConnSink(server, time.Second), []byte("HEAD\n"), false, 0, func(r Reason) { closed <- r }); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
		client.Close()
		select {
		case r := <-closed:
			if r != ReasonError {
				t.Fatalf("reason %v, want error (went away)", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("subscriber %d still registered 5 s after its client closed", i)
		}
	}
	if h.Len() != 0 {
		t.Fatalf("Len %d", h.Len())
	}
}

// Bytes a client sends after its request are not a close.
func TestClientBytesAreNotAClose(t *testing.T) {
	h := New(Options{HeartbeatInterval: time.Hour})
	defer h.Close()
	server, client := tcpPair(t)
	closed := make(chan Reason, 1)
	if _, err := h.Subscribe(ConnSink(server, time.Second), nil, false, 0, func(r Reason) { closed <- r }); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = h.Publish(&Frame{Seq: 1, Data: []byte("1;")})
	got := make([]byte, 2)
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "1;" {
		t.Fatalf("got %q %v", got, err)
	}
	select {
	case r := <-closed:
		t.Fatalf("removed: %v", r)
	case <-time.After(200 * time.Millisecond):
	}
}

// A resume point further back than the window, or behind frames that left
// the ring, gets the reset event and the recent window; one within both is
// replayed as before.
func TestOldResumeGetsResetAndWindow(t *testing.T) {
	frame := func(seq uint64) *Frame { return &Frame{Seq: seq, Data: []byte(fmt.Sprintf("%d;", seq))} }
	for _, tc := range []struct {
		name      string
		ring, win int
		published uint64
		after     uint64
		want      string
	}{
		{"within the window", 16, 3, 10, 7, "8;9;10;11;"},
		{"beyond the window", 16, 3, 10, 6, string(ResetFrame(6, 8)) + "8;9;10;11;"},
		{"from zero", 16, 3, 10, 0, string(ResetFrame(0, 8)) + "8;9;10;11;"},
		// No live frame here: it would push the subscriber's next
		// frame out of the small ring before it is served.
		{"behind the ring", 4, 100, 6, 1, string(ResetFrame(1, 3)) + "3;4;5;6;"},
		{"right at the ring", 4, 100, 6, 2, "3;4;5;6;"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resets := 0
			h := New(Options{RingSize: tc.ring, ResumeWindow: tc.win, OnReset: func() { resets++ }})
			defer h.Close()
			for seq := uint64(1); seq <= tc.published; seq++ {
				_ = h.Publish(frame(seq))
			}
			server, client := tcpPair(t)
			if _, err := h.Subscribe(ConnSink(server, time.Second), nil, true, tc.after, nil); err != nil {
				t.Fatal(err)
			}
			if tc.ring > 8 {
				_ = h.Publish(frame(11))
			}
			got := make([]byte, len(tc.want))
			_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(client, got); err != nil || string(got) != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
			if wantResets := strings.Count(tc.want, "reset"); resets != wantResets {
				t.Fatalf("OnReset called %d times, want %d", resets, wantResets)
			}
		})
	}
	if got, want := string(ResetFrame(6, 8)), "id: 7\nevent: reset\ndata: {\"reason\":\"too_old\",\"last_event_id\":6,\"next\":8}\n\n"; got != want {
		t.Fatalf("ResetFrame %q, want %q", got, want)
	}
}

// A subscriber cut off as slow is reset, so the kernel drops its unsent
// bytes instead of holding them: the client sees a reset, not a clean end.
func TestSlowCutResetsTheConnection(t *testing.T) {
	_, client := cutBehindTheRing(t)
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, client)
	if err == nil || !strings.Contains(err.Error(), "reset") {
		t.Fatalf("client read ended with %v, want a connection reset", err)
	}
}

// A wrapper that implements Unwrapper still gets the raw socket (and the
// close watch), and closing goes through the wrapper.
func TestUnwrapperKeepsRawSinkAndClosesWrapper(t *testing.T) {
	h := New(Options{HeartbeatInterval: time.Hour})
	defer h.Close()
	server, client := tcpPair(t)
	w := &countingConn{Conn: server}
	sink := ConnSink(w, time.Second)
	if _, ok := sink.(*socketSink); !ok {
		t.Fatalf("sink %T, want the raw socket sink", sink)
	}
	closed := make(chan Reason, 1)
	if _, err := h.Subscribe(sink, nil, false, 0, func(r Reason) { closed <- r }); err != nil {
		t.Fatal(err)
	}
	client.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("close not noticed")
	}
	if w.closes != 1 {
		t.Fatalf("wrapper closed %d times", w.closes)
	}
}

type countingConn struct {
	net.Conn
	closes int
}

func (c *countingConn) Close() error         { c.closes++; return c.Conn.Close() }
func (c *countingConn) UnwrapConn() net.Conn { return c.Conn }
