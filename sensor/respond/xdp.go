package respond

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// XDP attachment modes (XDPConfig.Mode).
const (
	// XDPModeAuto tries the driver's native XDP hook first and falls back
	// to generic (skb) mode when the driver has none.
	XDPModeAuto = "auto"
	// XDPModeNative attaches in the driver only, and fails without it.
	XDPModeNative = "native"
	// XDPModeGeneric attaches in the core receive path (works on every
	// interface, after the skb is allocated: slower than native).
	XDPModeGeneric = "generic"
)

// DefaultXDPMaxEntries is the size of each of the XDP backend's tries (one
// for IPv4, one for IPv6) when XDPConfig.MaxEntries is zero: well above
// the responder's default cap of 100,000 blocks, so the responder's cap is
// what refuses a block, with a reason in the audit trail, and never the
// kernel map. The tries allocate per entry, so the bound costs nothing
// until it is used.
const DefaultXDPMaxEntries = 262144

// xdpSweepInterval is how often the XDP backend deletes expired entries.
// The program itself stops dropping at the expiry time, so the sweep only
// frees memory and keeps List honest; once a second keeps List at most a
// second behind the expiries.
const xdpSweepInterval = time.Second

// xdpRescanInterval is how often the sweeper walks the whole tries, to find
// entries that another process (the block CLI) wrote with an expiry this
// process does not know about. Between rescans the sweeper touches only the
// entries that are due, so a large block list costs nothing per second.
const xdpRescanInterval = time.Minute

// check validates the configuration and fills in defaults.
func (c XDPConfig) check() (XDPConfig, error) {
	if len(c.Interfaces) == 0 {
		return c, errors.New("respond: xdp: no interfaces configured (xdp.interfaces)")
	}
	for i, name := range c.Interfaces {
		if name == "" || len(name) > 15 {
			return c, fmt.Errorf("respond: xdp: interface %q is not a valid interface name", name)
		}
		if slices.Contains(c.Interfaces[:i], name) {
			return c, fmt.Errorf("respond: xdp: interface %q listed twice", name)
		}
	}
	switch c.Mode {
	case "":
		c.Mode = XDPModeAuto
	case XDPModeAuto, XDPModeNative, XDPModeGeneric:
	default:
		return c, fmt.Errorf("respond: xdp: mode %q: want auto, native or generic", c.Mode)
	}
	switch {
	case c.MaxEntries == 0:
		c.MaxEntries = DefaultXDPMaxEntries
	case c.MaxEntries < 0 || c.MaxEntries > 1<<24:
		// 16M entries is far beyond any sane block list; the bound
		// keeps a typo from asking the kernel for gigabytes.
		return c, fmt.Errorf("respond: xdp: max_entries %d out of range 1..%d", c.MaxEntries, 1<<24)
	}
	return c, nil
}

// XDPStats are the XDP program's counters, summed over CPUs since the
// program was loaded.
type XDPStats struct {
	DroppedV4      uint64 // IPv4 packets dropped
	DroppedV6      uint64 // IPv6 packets dropped
	DroppedBytesV4 uint64 // their bytes, from the Ethernet header on
	DroppedBytesV6 uint64
	// ExpiredPassed counts packets that matched an entry whose time had
	// run out before the sweeper removed it (passed, not dropped).
	ExpiredPassed uint64
}

// Dropped is the total of dropped packets.
func (s XDPStats) Dropped() uint64 { return s.DroppedV4 + s.DroppedV6 }
