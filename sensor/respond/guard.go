package respond

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

// Reasons a block is refused. They are the tail of the incident's action
// ("not blocked: allow list") and the "reason" of the audit record, so they
// are short and stable.
const (
	ReasonAllowList  = "allow list"
	ReasonOwnAddress = "own address"
	ReasonLoopback   = "loopback"
	ReasonPrivate    = "private address"
	ReasonLinkLocal  = "link-local"
	ReasonNotUnicast = "not unicast"
	ReasonRelay      = "relay address"
	ReasonSSHSession = "ssh session"
	ReasonRateLimit  = "rate limit"
	ReasonFull       = "entry cap"
	ReasonError      = "backend error"
)

// guard holds the never-block rules. Its address sets are refreshed in the
// background (Run); check reads them under a read lock.
type guard struct {
	allow        []netip.Prefix
	allowPrivate bool
	relayHosts   []string
	sessions     sessionFinder
	log          *slog.Logger
	resolve      func(ctx context.Context, host string) ([]netip.Addr, error)

	mu     sync.RWMutex
	own    map[netip.Addr]bool
	relays map[netip.Addr]bool
}

// sessionFinder answers "does addr hold an established SSH session to this
// host?" (sockets_linux.go reads the kernel's socket tables).
type sessionFinder interface {
	hasSession(addr netip.Addr) (bool, error)
}

// How often the host's and the relays' addresses are read again. An
// interface gains an address (DHCP, a VPN coming up) or a relay's DNS name
// moves rarely; 30 s and 5 min bound the window in which such a change is
// unknown without costing anything measurable.
const (
	ownRefresh   = 30 * time.Second
	relayRefresh = 5 * time.Minute
	// resolveTimeout bounds one DNS lookup of a relay host, so a dead
	// resolver delays the refresh, never a decision.
	resolveTimeout = 5 * time.Second
)

func newGuard(cfg *Config, relayURLs []string, sessions sessionFinder, log *slog.Logger) (*guard, error) {
	allow, err := parseAllow(cfg.Allow)
	if err != nil {
		return nil, err
	}
	g := &guard{allow: allow, allowPrivate: cfg.AllowPrivate, sessions: sessions, log: log,
		own: map[netip.Addr]bool{}, relays: map[netip.Addr]bool{}}
	g.resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	for _, u := range relayURLs {
		if h := relayHost(u); h != "" {
			g.relayHosts = append(g.relayHosts, h)
		}
	}
	return g, nil
}

// relayHost is the host part of a relay URL ("" when there is none).
func relayHost(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// refresh reads the host's addresses and resolves the relays.
func (g *guard) refreshOwn() {
	own := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		g.log.Warn("response: reading the host's addresses", "err", err)
		return
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			own[p.Addr().Unmap().WithZone("")] = true
		}
	}
	g.mu.Lock()
	g.own = own
	g.mu.Unlock()
}

func (g *guard) refreshRelays(ctx context.Context) {
	relays := map[netip.Addr]bool{}
	for _, h := range g.relayHosts {
		if a, err := netip.ParseAddr(h); err == nil {
			relays[a.Unmap().WithZone("")] = true
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		as, err := g.resolve(rctx, h)
		cancel()
		if err != nil {
			// Keep what was known: a relay whose name does not resolve
			// now is still the relay it was a minute ago.
			g.log.Warn("response: resolving relay host", "host", h, "err", err)
			g.mu.RLock()
			for a := range g.relays {
				relays[a] = true
			}
			g.mu.RUnlock()
			continue
		}
		for _, a := range as {
			relays[a.Unmap().WithZone("")] = true
		}
	}
	g.mu.Lock()
	g.relays = relays
	g.mu.Unlock()
}

// run keeps the address sets fresh until ctx ends.
func (g *guard) run(ctx context.Context) {
	own := time.NewTicker(ownRefresh)
	defer own.Stop()
	rel := time.NewTicker(relayRefresh)
	defer rel.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-own.C:
			g.refreshOwn()
		case <-rel.C:
			g.refreshRelays(ctx)
		}
	}
}

// check returns why addr must not be blocked, or "" when it may be. The
// cheap rules come first; the socket table is read last and only for an
// address every other rule let through.
func (g *guard) check(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	for _, p := range g.allow {
		if p.Contains(addr) {
			return ReasonAllowList
		}
	}
	if !addr.IsValid() || addr.IsUnspecified() || addr.IsMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return ReasonNotUnicast
	}
	g.mu.RLock()
	own, relay := g.own[addr], g.relays[addr]
	g.mu.RUnlock()
	if own {
		return ReasonOwnAddress
	}
	if relay {
		return ReasonRelay
	}
	if !g.allowPrivate {
		switch {
		case addr.IsLoopback():
			return ReasonLoopback
		case addr.IsPrivate():
			return ReasonPrivate
		case addr.IsLinkLocalUnicast():
			return ReasonLinkLocal
		}
	}
	if g.sessions != nil {
		has, err := g.sessions.hasSession(addr)
		if err != nil {
			// Not knowing is not permission: an operator locked out by
			// an unreadable socket table is the failure this rule exists
			// to prevent.
			g.log.Warn("response: reading SSH sessions; not blocking", "addr", addr, "err", err)
			return ReasonSSHSession
		}
		if has {
			return ReasonSSHSession
		}
	}
	return ""
}
