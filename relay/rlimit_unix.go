//go:build unix

package relay

import "syscall"

// defaultMaxConns is Config.MaxConns's default: the open file limit minus
// descriptors kept for everything else (the stream's store files and NATS
// routes, the token file, the metrics listener, the runtime's own, an
// embedding sensor's logs), so that accepting connections can never
// starve the relay of descriptors.
func defaultMaxConns() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 {
		return -1
	}
	n := int(l.Cur)
	if n <= 256 {
		return max(1, n/2)
	}
	return n - 128
}
