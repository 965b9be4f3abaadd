//go:build !linux

package hub

// poller is Linux only: elsewhere a subscriber that went away is found by
// its next write (a frame or a heartbeat).
type poller struct{}

func newPoller() *poller     { return nil }
func (*poller) watch(*Sub)   {}
func (*poller) unwatch(*Sub) {}
func (*poller) close()       {}
