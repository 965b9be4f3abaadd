//go:build !linux

package respond

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// errXDPNotLinux is the answer of the XDP backend off Linux.
var errXDPNotLinux = fmt.Errorf("respond: xdp: XDP needs Linux: %w", ErrUnsupported)

// XDP is the Linux XDP backend; off Linux every call fails with an error
// wrapping ErrUnsupported.
type XDP struct{}

// OpenXDP checks cfg and returns a backend that cannot run here.
func OpenXDP(cfg XDPConfig, _ *slog.Logger) (*XDP, error) {
	if _, err := cfg.check(); err != nil {
		return nil, err
	}
	return &XDP{}, nil
}

// newXDP is the responder's constructor for the "xdp" backend.
func newXDP(cfg XDPConfig, log *slog.Logger) (Backend, error) { return OpenXDP(cfg, log) }

// Name returns "xdp".
func (x *XDP) Name() string { return "xdp" }

// Ensure fails off Linux.
func (x *XDP) Ensure(context.Context) error { return errXDPNotLinux }

// Add fails off Linux.
func (x *XDP) Add(context.Context, netip.Addr, time.Duration) error { return errXDPNotLinux }

// Remove fails off Linux.
func (x *XDP) Remove(context.Context, netip.Addr) error { return errXDPNotLinux }

// List fails off Linux.
func (x *XDP) List(context.Context) ([]Entry, error) { return nil, errXDPNotLinux }

// Flush fails off Linux.
func (x *XDP) Flush(context.Context) error { return errXDPNotLinux }

// Close does nothing off Linux.
func (x *XDP) Close() error { return nil }

// Modes returns nil off Linux.
func (x *XDP) Modes() map[string]string { return nil }

// Hits fails off Linux.
func (x *XDP) Hits() (map[netip.Addr]uint64, error) { return nil, errXDPNotLinux }

// Stats fails off Linux.
func (x *XDP) Stats() (XDPStats, error) { return XDPStats{}, errXDPNotLinux }

// Drops fails off Linux.
func (x *XDP) Drops() (uint64, error) { return 0, errXDPNotLinux }

// Sweep does nothing off Linux.
func (x *XDP) Sweep() (int, error) { return 0, nil }
