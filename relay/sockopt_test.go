package relay

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// setRcvBuf shrinks a client socket's receive buffer before it connects,
// so a test client that stops reading fills up after a few frames.
func setRcvBuf(n int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		})
		if err != nil {
			return err
		}
		return serr
	}
}
