package hub

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// socketSink writes with non-blocking writev on the socket's descriptor
// (Go keeps sockets in non-blocking mode), from the hub's writer goroutine.
type socketSink struct {
	c  net.Conn // closed through the connection as given (it may count)
	rc syscall.RawConn
}

func rawSink(c net.Conn) Sink {
	inner := c
	if u, ok := c.(Unwrapper); ok {
		inner = u.UnwrapConn()
	}
	switch inner.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil
	}
	sc, ok := inner.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &socketSink{c: c, rc: rc}
}

func (s *socketSink) TryWrite(bufs [][]byte) (int, error) {
	var n int
	var werr error
	err := s.rc.Write(func(fd uintptr) bool {
		for {
			n, werr = unix.Writev(int(fd), bufs)
			if werr != unix.EINTR {
				// Returning true even on EAGAIN: never wait for the socket.
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if werr == unix.EAGAIN {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return n, nil
}

func (s *socketSink) Close() error { return s.c.Close() }

func (s *socketSink) control(f func(fd uintptr)) error { return s.rc.Control(f) }

// abort closes the socket with a reset (SO_LINGER 0): the kernel drops
// whatever is still unsent instead of keeping it, and retrying it for
// minutes, for a client that stopped reading.
func (s *socketSink) abort() error {
	_ = s.rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	})
	return s.c.Close()
}
