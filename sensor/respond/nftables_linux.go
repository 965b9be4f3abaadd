//go:build linux

package respond

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// nft is the nftables backend: one table owned by attackmap (family inet,
// so one chain sees IPv4 and IPv6), two sets of single addresses with the
// timeout flag, so the kernel itself expires entries even when the sensor
// is down, and one input chain holding two rules, "ip saddr @block4
// counter drop" and "ip6 saddr @block6 counter drop".
//
// It talks netlink (github.com/google/nftables) and touches no table but
// its own: every object it creates or deletes lives in that table.
type nft struct {
	opts NFTablesOptions

	mu   sync.Mutex // serialises batches on conn (the CLI and the responder may share a backend)
	conn *nftables.Conn

	table  *nftables.Table
	set4   *nftables.Set
	set6   *nftables.Set
	chain  *nftables.Chain
	policy nftables.ChainPolicy
}

// The names of the objects inside the table. The rules carry a comment, by
// which Ensure recognises them: when the chain holds anything but our two
// rules it is rebuilt.
const (
	nftSet4      = "block4"
	nftSet6      = "block6"
	nftChain     = "input"
	nftRule4Note = "attackmap: drop blocked IPv4 sources"
	nftRule6Note = "attackmap: drop blocked IPv6 sources"
)

func newNFTables(opts NFTablesOptions) (Backend, error) {
	if opts.Table == "" {
		opts.Table = DefaultNFTable
	}
	if len(opts.Table) > 200 { // NFT_TABLE_MAXNAMELEN is 256 with the NUL
		return nil, fmt.Errorf("nftables: table name %q too long", opts.Table)
	}
	n := &nft{opts: opts, policy: nftables.ChainPolicyAccept}
	n.table = &nftables.Table{Name: opts.Table, Family: nftables.TableFamilyINet}
	n.set4 = &nftables.Set{Table: n.table, Name: nftSet4, KeyType: nftables.TypeIPAddr, HasTimeout: true}
	n.set6 = &nftables.Set{Table: n.table, Name: nftSet6, KeyType: nftables.TypeIP6Addr, HasTimeout: true}
	prio := nftables.ChainPriority(opts.Priority)
	n.chain = &nftables.Chain{
		Name: nftChain, Table: n.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: &prio, Policy: &n.policy,
	}
	return n, nil
}

func (n *nft) Name() string { return "nftables" }

// dial opens the lasting netlink socket on first use. A lasting socket
// saves a socket and a bind per block, which is most of an Add's cost.
func (n *nft) dial() (*nftables.Conn, error) {
	if n.conn != nil {
		return n.conn, nil
	}
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, nftErr("opening netlink", err)
	}
	n.conn = c
	return c, nil
}

// nftErr wraps a netlink error; permission and missing-kernel-support
// errors also match ErrUnsupported, so the responder can fall back to a
// dry run and say why.
func nftErr(what string, err error) error {
	if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) ||
		errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EAFNOSUPPORT) {
		return fmt.Errorf("nftables: %s: %w (%w)", what, err, ErrUnsupported)
	}
	return fmt.Errorf("nftables: %s: %w", what, err)
}

// present reports whether the table exists.
func (n *nft) present(c *nftables.Conn) (bool, error) {
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, nftErr("listing tables", err)
	}
	for _, t := range ts {
		if t.Name == n.table.Name {
			return true, nil
		}
	}
	return false, nil
}

// open dials and reports whether the table exists. The caller holds mu.
func (n *nft) open() (*nftables.Conn, bool, error) {
	c, err := n.dial()
	if err != nil {
		return nil, false, err
	}
	ok, err := n.present(c)
	return c, ok, err
}

func (n *nft) Ensure(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok, err := n.open()
	if err != nil {
		return err
	}
	if !ok {
		// One batch: the table appears whole or not at all.
		c.AddTable(n.table)
		if err := c.AddSet(n.set4, nil); err != nil {
			return nftErr("adding set", err)
		}
		if err := c.AddSet(n.set6, nil); err != nil {
			return nftErr("adding set", err)
		}
		c.AddChain(n.chain)
		n.addRules(c)
		if err := c.Flush(); err != nil {
			return nftErr("creating table "+n.table.Name, err)
		}
		return nil
	}
	return n.repair(c)
}

// repair brings an existing table back to the expected shape without
// touching the set elements (they are the blocks that must survive a
// restart).
func (n *nft) repair(c *nftables.Conn) error {
	sets, err := c.GetSets(n.table)
	if err != nil {
		return nftErr("listing sets", err)
	}
	have := map[string]*nftables.Set{}
	for _, s := range sets {
		have[s.Name] = s
	}
	for _, want := range []*nftables.Set{n.set4, n.set6} {
		s := have[want.Name]
		if s != nil && s.HasTimeout && s.KeyType.Name == want.KeyType.Name {
			continue
		}
		if s != nil {
			// A set of the wrong type cannot be altered: the rules that
			// refer to it go first, then the set.
			c.FlushChain(n.chain)
			c.DelSet(s)
		}
		if err := c.AddSet(want, nil); err != nil {
			return nftErr("adding set", err)
		}
	}
	if err := c.Flush(); err != nil {
		return nftErr("repairing sets", err)
	}

	chain, err := c.ListChain(n.table, nftChain)
	switch {
	case err != nil || chain == nil:
		c.AddChain(n.chain)
	case chain.Hooknum == nil || *chain.Hooknum != *n.chain.Hooknum ||
		chain.Priority == nil || *chain.Priority != *n.chain.Priority || chain.Type != n.chain.Type:
		// The priority is fixed when a base chain is created: a new
		// priority in the configuration means a new chain.
		c.FlushChain(n.chain)
		c.DelChain(n.chain)
		c.AddChain(n.chain)
	default:
		rules, err := c.GetRules(n.table, n.chain)
		if err != nil {
			return nftErr("listing rules", err)
		}
		if rulesIntact(rules) {
			return nil
		}
		c.FlushChain(n.chain)
	}
	n.addRules(c)
	if err := c.Flush(); err != nil {
		return nftErr("repairing chain", err)
	}
	return nil
}

// rulesIntact reports whether the chain holds exactly our two rules.
func rulesIntact(rules []*nftables.Rule) bool {
	if len(rules) != 2 {
		return false
	}
	seen := map[string]bool{}
	for _, r := range rules {
		note, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		seen[note] = true
	}
	return seen[nftRule4Note] && seen[nftRule6Note]
}

func (n *nft) addRules(c *nftables.Conn) {
	c.AddRule(&nftables.Rule{
		Table: n.table, Chain: n.chain,
		Exprs:    saddrDrop(unix.NFPROTO_IPV4, 12, 4, n.set4),
		UserData: userdata.AppendString(nil, userdata.TypeComment, nftRule4Note),
	})
	c.AddRule(&nftables.Rule{
		Table: n.table, Chain: n.chain,
		Exprs:    saddrDrop(unix.NFPROTO_IPV6, 8, 16, n.set6),
		UserData: userdata.AppendString(nil, userdata.TypeComment, nftRule6Note),
	})
}

// saddrDrop is "meta nfproto P <network header>[off:len] @set counter drop":
// the source address sits at byte 12 of an IPv4 header and byte 8 of an
// IPv6 header.
func saddrDrop(proto byte, off, n uint32, set *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

func (n *nft) setFor(addr netip.Addr) *nftables.Set {
	if addr.Is4() {
		return n.set4
	}
	return n.set6
}

// Add replaces any entry for addr with one expiring after ttl. The batch
// is add (a no-op when present), delete, add: it never fails on a present
// or absent element, and the kernel applies it atomically, so the address
// is never unblocked in between.
func (n *nft) Add(ctx context.Context, addr netip.Addr, ttl time.Duration) error {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return errors.New("nftables: invalid address")
	}
	if ttl < time.Second {
		ttl = time.Second
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c, err := n.dial()
	if err != nil {
		return err
	}
	set := n.setFor(addr)
	key := addr.AsSlice()
	el := []nftables.SetElement{{Key: key, Timeout: ttl}}
	if err := c.SetAddElements(set, el); err != nil {
		return nftErr("adding element", err)
	}
	if err := c.SetDeleteElements(set, []nftables.SetElement{{Key: key}}); err != nil {
		return nftErr("deleting element", err)
	}
	if err := c.SetAddElements(set, el); err != nil {
		return nftErr("adding element", err)
	}
	if err := c.Flush(); err != nil {
		return nftErr("blocking "+addr.String(), err)
	}
	return nil
}

// Remove deletes addr: add (with a short timeout, in case it is absent)
// then delete, in one batch, so an absent address is not an error.
func (n *nft) Remove(ctx context.Context, addr netip.Addr) error {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return errors.New("nftables: invalid address")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok, err := n.open()
	if err != nil || !ok {
		return err // no table, nothing blocked
	}
	set := n.setFor(addr)
	key := addr.AsSlice()
	if err := c.SetAddElements(set, []nftables.SetElement{{Key: key, Timeout: time.Second}}); err != nil {
		return nftErr("adding element", err)
	}
	if err := c.SetDeleteElements(set, []nftables.SetElement{{Key: key}}); err != nil {
		return nftErr("deleting element", err)
	}
	if err := c.Flush(); err != nil {
		return nftErr("unblocking "+addr.String(), err)
	}
	return nil
}

func (n *nft) List(ctx context.Context) ([]Entry, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok, err := n.open()
	if err != nil || !ok {
		return nil, err
	}
	now := time.Now()
	var out []Entry
	for _, set := range []*nftables.Set{n.set4, n.set6} {
		els, err := c.GetSetElements(set)
		if err != nil {
			return nil, nftErr("listing "+set.Name, err)
		}
		for _, el := range els {
			a, ok := netip.AddrFromSlice(el.Key)
			if !ok {
				continue
			}
			e := Entry{Addr: a.Unmap()}
			if el.Expires > 0 {
				e.Expires = now.Add(el.Expires)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func (n *nft) Flush(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok, err := n.open()
	if err != nil || !ok {
		return err
	}
	c.DelTable(n.table)
	if err := c.Flush(); err != nil {
		return nftErr("deleting table "+n.table.Name, err)
	}
	return nil
}

// Drops sums the packet counters of the two drop rules.
func (n *nft) Drops() (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok, err := n.open()
	if err != nil || !ok {
		return 0, err
	}
	rules, err := c.GetRules(n.table, n.chain)
	if err != nil {
		return 0, nftErr("listing rules", err)
	}
	var sum uint64
	for _, r := range rules {
		for _, e := range r.Exprs {
			if ctr, ok := e.(*expr.Counter); ok {
				sum += ctr.Packets
			}
		}
	}
	return sum, nil
}

func (n *nft) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return nil
	}
	err := n.conn.CloseLasting()
	n.conn = nil
	return err
}
