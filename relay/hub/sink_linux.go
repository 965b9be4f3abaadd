package hub

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// socketSink writes with non-blocking writev on the socket's descriptor
// (Go keeps sockets in non-blocking mode), from the hub's writer goroutine.
type socketSink struct {
	c  net.Conn
	rc syscall.RawConn
}

func rawSink(c net.Conn) Sink {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil
	}
	sc, ok := c.(syscall.Conn)
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
