//go:build !unix

package relay

// defaultMaxConns: no descriptor limit to derive a cap from.
func defaultMaxConns() int { return -1 }
