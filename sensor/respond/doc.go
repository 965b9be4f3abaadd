// Package respond blocks attackers: it takes incidents from the sensor's
// detectors, decides whether their source address may be blocked, and
// blocks it through a Backend with a time to live.
//
// # Backends
//
// A Backend (backend.go) is the kernel side of a block. Every backend
// implements the same small contract, and the responder is its only writer
// inside the sensor:
//
//	type Backend interface {
//		Name() string
//		Ensure(ctx context.Context) error
//		Add(ctx context.Context, addr netip.Addr, ttl time.Duration) error
//		Remove(ctx context.Context, addr netip.Addr) error
//		List(ctx context.Context) ([]Entry, error)
//		Flush(ctx context.Context) error
//		Close() error
//	}
//
// "nftables" owns one table, inet attackmap, with an IPv4 and an IPv6 set
// carrying the timeout flag (the kernel expires entries itself) and a drop
// rule in an input chain. "xdp" attaches an XDP program with LPM-trie maps to
// the configured interfaces and expires entries from userspace. "none" is the
// dry run: it records what it would do and touches nothing.
//
// # Safety
//
// Dry run is the default. Before any block the responder refuses: addresses
// in the allow list, the host's own addresses, loopback, private and
// link-local addresses unless allowed, the relay's addresses, and any
// address with an established SSH session to this host, so an operator can
// never lock themselves out. A cap on entries and on new blocks per minute
// bounds what a flood of forged incidents can do.
//
// # State and audit
//
// Blocks are kept in a state file under the data directory (written
// atomically) and reconciled with the kernel on start: entries the state no
// longer wants are removed, missing ones restored. Every decision (block,
// skip and its reason, expire, manual) is appended to
// decisions-YYYY-MM-DD.jsonl with the incident id.
package respond
