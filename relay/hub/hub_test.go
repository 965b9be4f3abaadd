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

// A subscriber whose next frame was overwritten in the ring cannot be served
// without a gap and is cut off.
func TestFallenOffTheRingIsCut(t *testing.T) {
	h := New(Options{RingSize: 4, MaxQueue: 1 << 20, WriteTimeout: time.Minute})
	defer h.Close()
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
