package respond

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Backend is where a block takes effect: a kernel table, an XDP map, or
// nothing (dry run). The responder is its only caller and serialises its
// calls, so an implementation needs no locking of its own against the
// responder (the CLI may still run in another process at the same time: the
// kernel objects are the shared state, and every method must be idempotent).
//
// Addresses are always unmapped (an IPv4-mapped IPv6 address arrives as
// IPv4) and carry no zone. A backend blocks single addresses; CIDR blocks
// are not part of the contract.
type Backend interface {
	// Name is the backend's configuration name: "nftables", "xdp", "none".
	Name() string

	// Ensure creates the backend's kernel objects (table, sets, chain, or
	// program, maps and attachments) if they are missing and leaves them as
	// they are when present. It is called once before any other method
	// except Close, and may be called again to repair.
	Ensure(ctx context.Context) error

	// Add blocks addr for ttl, counted from now. Adding an address that is
	// already present replaces its remaining time with ttl. ttl is at least
	// one second; a backend whose kernel objects cannot expire entries
	// expires them itself.
	Add(ctx context.Context, addr netip.Addr, ttl time.Duration) error

	// Remove unblocks addr. Removing an absent address is not an error.
	Remove(ctx context.Context, addr netip.Addr) error

	// List returns every address currently blocked in the kernel with its
	// expiry as the kernel sees it (Expires is the zero time when the
	// backend cannot tell). The order is unspecified.
	List(ctx context.Context) ([]Entry, error)

	// Flush removes every entry and every kernel object the backend owns
	// (the table, the program and its maps), leaving nothing behind.
	// Flushing a backend whose objects are absent is not an error. After
	// Flush only Ensure or Close may be called.
	Flush(ctx context.Context) error

	// Close releases the backend's handles (netlink sockets, program
	// links). It leaves kernel entries in place, so blocks outlive a
	// sensor restart; Flush is what removes them.
	Close() error
}

// Entry is one blocked address as a backend reports it.
type Entry struct {
	Addr    netip.Addr `json:"addr"`
	Expires time.Time  `json:"expires,omitzero"`
}

// DropCounter is implemented by backends that count the packets they drop
// (the XDP backend). The responder exports the total in its Stats.
type DropCounter interface {
	// Drops returns the packets dropped since the backend's kernel objects
	// were created, summed over CPUs.
	Drops() (uint64, error)
}

// XDPConfig configures the xdp backend: the "xdp" object of the sensor's
// response configuration.
type XDPConfig struct {
	// Interfaces are the network interfaces the program is attached to
	// (native mode where the driver supports it, generic otherwise).
	Interfaces []string `json:"interfaces"`
	// Mode is "auto" (default: native where the driver supports it,
	// generic otherwise), "native" or "generic" (xdp.go).
	Mode string `json:"mode,omitempty"`
	// MaxEntries bounds each trie (IPv4 and IPv6); 0 means
	// DefaultXDPMaxEntries (xdp.go).
	MaxEntries int `json:"max_entries,omitempty"`
}

// The xdp backend lives in xdp_linux.go (and xdp_other.go off Linux) and
// is opened by the responder through
//
//	func newXDP(cfg XDPConfig, log *slog.Logger) (Backend, error)
//
// log is never nil. Like every backend it touches the kernel only from
// Ensure on, so opening it is cheap and cannot fail for lack of objects.

// ErrUnsupported is returned (wrapped) by a backend that cannot run here:
// not Linux, not root, or the kernel lacks the feature. The caller falls
// back to dry run and says why.
var ErrUnsupported = errors.New("respond: backend not supported here")
