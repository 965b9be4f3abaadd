package detect

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
	"slices"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/webrule"
)

// Snapshots: the engine's state (every detector's per-address buckets, sets
// and open incidents, the source clocks and the hash key) as bytes, so that
// a restarted sensor goes on counting the attacks in progress where it
// stopped. The daemon writes one together with the log offsets the state
// corresponds to (sensor/daemon), so that no line is counted twice or lost.
//
// Format: the magic "AMDS", a version byte, then varint-encoded fields in a
// fixed order written by one symmetric routine per detector (each code
// method both writes and reads, so the two cannot drift apart), and a
// CRC-32C of everything before it. A snapshot of another version, a
// corrupt one, or one from an engine with other detectors switched on is
// refused as a whole: the engine then starts empty, which loses the attacks
// in progress but never mixes state.
//
// What a snapshot leaves out: incident updates held for Flush whose
// episode is no longer its detector's current one (call Flush first, as
// the daemon does), and lines a replay holds back (clock.go; only replays
// hold lines, and they do not snapshot).

// snapshotMagic and snapshotVersion head every snapshot. Bump the version
// whenever a code method changes.
const (
	snapshotMagic   = "AMDS"
	snapshotVersion = 1
)

// MaxSnapshot caps a snapshot's size. Per address a detector keeps well
// under a kilobyte (lists are capped by incident.MaxList and the sets by
// their own caps), and at most MaxKeys addresses per detector: the default
// 100,000 keys rarely fill, and 256 MiB stops a corrupt length from
// allocating without bound when reading.
const MaxSnapshot = 256 << 20

// ErrSnapshot is wrapped by every error about an unusable snapshot.
var ErrSnapshot = errors.New("detect: unusable snapshot")

// snapshotter is implemented by every detector: code writes or reads its
// state.
type snapshotter interface {
	code(c *codec)
}

// Snapshot writes the engine's state to w. Call it right after Flush.
func (e *Engine) Snapshot(w io.Writer) error {
	c := &codec{e: e, buf: make([]byte, 0, 4096)}
	c.buf = append(c.buf, snapshotMagic...)
	c.buf = append(c.buf, snapshotVersion)
	e.code(c)
	if c.err != nil {
		return c.err
	}
	if len(c.buf) > MaxSnapshot {
		return fmt.Errorf("detect: snapshot of %d bytes is over the %d cap", len(c.buf), MaxSnapshot)
	}
	c.buf = binary.BigEndian.AppendUint32(c.buf, crc32.Checksum(c.buf, castagnoli))
	_, err := w.Write(c.buf)
	return err
}

// Restore loads a snapshot into a new engine (one that has handled no
// event yet) built with the same configuration. On error the engine is
// left empty.
func (e *Engine) Restore(b []byte) error {
	if e.seq != 0 {
		return errors.New("detect: Restore on an engine that already handled events")
	}
	if len(b) < len(snapshotMagic)+1+4 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return fmt.Errorf("%w: not a snapshot", ErrSnapshot)
	}
	if len(b) > MaxSnapshot+4 {
		return fmt.Errorf("%w: %d bytes, over the cap", ErrSnapshot, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return fmt.Errorf("%w: checksum mismatch", ErrSnapshot)
	}
	if v := body[len(snapshotMagic)]; v != snapshotVersion {
		return fmt.Errorf("%w: version %d, this sensor reads %d", ErrSnapshot, v, snapshotVersion)
	}
	c := &codec{e: e, dec: true, buf: body[len(snapshotMagic)+1:]}
	e.code(c)
	if c.err == nil && len(c.buf) != 0 {
		c.fail("%d trailing bytes", len(c.buf))
	}
	if c.err != nil {
		e.reset()
		return c.err
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// reset empties the engine's state (after a failed Restore).
func (e *Engine) reset() {
	fresh := New(e.cfg, func(x *Engine) { x.lists, x.log, x.web.set, x.host = e.lists, e.log, e.web.set, e.host })
	*e = *fresh
}

// code writes or reads the engine's own state, then each detector's, in
// table order.
func (e *Engine) code(c *codec) {
	c.u64(&e.hashKey)
	c.i64(&e.newest)
	c.i64(&e.nextSweep)
	c.u64(&e.ahead)
	c.u64(&e.evicted)
	// Source clocks, sorted so equal states give equal bytes.
	keys := make([]string, 0, len(e.clocks))
	for k := range e.clocks {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := c.length(len(keys), maxSources)
	for i := range n {
		var k string
		var clk srcClock
		if !c.dec {
			k = keys[i]
			clk = *e.clocks[k]
		}
		c.str(&k, 4096)
		c.i64(&clk.now)
		if c.dec && c.err == nil {
			e.clocks[k] = &srcClock{now: clk.now}
		}
	}
	// The detectors switched on, by name: a snapshot only fits an engine
	// with the same ones.
	names := slices.Clone(e.names)
	n = c.length(len(names), 64)
	if c.dec {
		names = make([]string, n)
	}
	for i := range names {
		c.str(&names[i], 64)
	}
	if c.dec && c.err == nil && !slices.Equal(names, e.names) {
		c.fail("detectors %q, this engine runs %q", names, e.names)
	}
	for _, d := range e.detectors {
		if c.err != nil {
			return
		}
		d.(snapshotter).code(c)
	}
}

// codec writes (dec false) or reads (dec true) varint-encoded values.
type codec struct {
	e     *Engine
	dec   bool
	buf   []byte
	err   error
	rules map[string]*webrule.Rule // by id, built on first use when reading
}

func (c *codec) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: "+format, append([]any{ErrSnapshot}, args...)...)
	}
}

func (c *codec) uvarint(p *uint64) {
	if !c.dec {
		c.buf = binary.AppendUvarint(c.buf, *p)
		return
	}
	if c.err != nil {
		return
	}
	v, n := binary.Uvarint(c.buf)
	if n <= 0 {
		c.fail("truncated")
		return
	}
	*p, c.buf = v, c.buf[n:]
}

func (c *codec) i64(p *int64) {
	u := uint64(*p<<1) ^ uint64(*p>>63) // zigzag
	c.uvarint(&u)
	*p = int64(u>>1) ^ -int64(u&1)
}

func (c *codec) u64(p *uint64) { c.uvarint(p) }

func (c *codec) int(p *int) {
	v := int64(*p)
	c.i64(&v)
	*p = int(v)
}

func (c *codec) i32(p *int32) {
	v := int64(*p)
	c.i64(&v)
	*p = int32(v)
}

func (c *codec) u32(p *uint32) {
	v := uint64(*p)
	c.uvarint(&v)
	*p = uint32(v)
}

func (c *codec) u16(p *uint16) {
	v := uint64(*p)
	c.uvarint(&v)
	*p = uint16(v)
}

func (c *codec) u8(p *uint8) {
	v := uint64(*p)
	c.uvarint(&v)
	*p = uint8(v)
}

func (c *codec) bool(p *bool) {
	var v uint64
	if *p {
		v = 1
	}
	c.uvarint(&v)
	*p = v == 1
}

// length writes n, or reads a length and checks it against max.
func (c *codec) length(n, max int) int {
	v := uint64(n)
	c.uvarint(&v)
	if c.dec {
		if c.err != nil {
			return 0
		}
		if v > uint64(max) || v > uint64(len(c.buf)) {
			c.fail("length %d over %d", v, max)
			return 0
		}
	}
	return int(v)
}

// bytes writes or reads a byte string of at most max bytes.
func (c *codec) bytes(p *[]byte, max int) {
	n := c.length(len(*p), max)
	if !c.dec {
		c.buf = append(c.buf, *p...)
		return
	}
	if c.err != nil {
		return
	}
	*p, c.buf = c.buf[:n:n], c.buf[n:]
}

func (c *codec) str(p *string, max int) {
	b := []byte(*p)
	c.bytes(&b, max)
	if c.dec {
		*p = string(b)
	}
}

// strs writes or reads a list of strings (at most max of them).
func (c *codec) strs(p *[]string, max int) {
	n := c.length(len(*p), max)
	if c.dec {
		if n == 0 {
			*p = nil
			return
		}
		*p = make([]string, n)
	}
	for i := range *p {
		c.str(&(*p)[i], 64<<10)
	}
}

func (c *codec) ints(p *[]int, max int) {
	n := c.length(len(*p), max)
	if c.dec {
		if n == 0 {
			*p = nil
			return
		}
		*p = make([]int, n)
	}
	for i := range *p {
		c.int(&(*p)[i])
	}
}

func (c *codec) bucket(b *bucket) {
	c.i32(&b.level)
	c.i32(&b.n)
	c.i64(&b.since)
	c.i64(&b.last)
}

// distinct sets hold hashes keyed by Engine.hashKey, which the snapshot
// carries, so they stay valid after a restore.
func (c *codec) distinct(d *distinct) {
	n := c.length(len(d.h), 1<<16)
	if c.dec {
		d.h = nil
		if n > 0 {
			d.h = make([]uint64, n)
		}
	}
	for i := range d.h {
		c.u64(&d.h[i])
	}
}

func (c *codec) addr(a *netip.Addr) {
	var b []byte
	if !c.dec {
		b, _ = a.MarshalBinary()
	}
	c.bytes(&b, 16+64) // an IPv6 address with a zone
	if c.dec && c.err == nil {
		if err := a.UnmarshalBinary(b); err != nil {
			c.fail("address: %v", err)
		}
	}
}

// episode writes or reads an open incident (nil allowed). A dirty one (an
// update waiting for Flush) is queued again when read. The caller sets
// render, which refers to the detector's state.
func (c *codec) episode(pp **episode) {
	present := *pp != nil
	c.bool(&present)
	if !present {
		*pp = nil
		return
	}
	ep := *pp
	if c.dec {
		ep = &episode{}
	}
	c.i64(&ep.start)
	c.i64(&ep.first)
	c.i64(&ep.last)
	c.int(&ep.count)
	c.int(&ep.threshold)
	base := string(ep.base)
	c.str(&base, 32)
	c.i64(&ep.emitted)
	c.bool(&ep.dirty)
	// The incident itself in its wire form, which is stable by contract.
	var js []byte
	if !c.dec {
		var err error
		if js, err = json.Marshal(&ep.inc); err != nil {
			c.fail("incident %s: %v", ep.inc.ID, err)
			return
		}
	}
	c.bytes(&js, incident.MaxBytes)
	if !c.dec || c.err != nil {
		return
	}
	ep.base = incident.Severity(base)
	if err := json.Unmarshal(js, &ep.inc); err != nil {
		c.fail("incident: %v", err)
		return
	}
	if ep.dirty {
		ep.queued = true
		c.e.dirty = append(c.e.dirty, ep)
	}
	*pp = ep
}

// rule writes or reads a web rule by id; a rule that is no longer in the
// set reads as nil.
func (c *codec) rule(pp **webrule.Rule) {
	var id string
	if *pp != nil {
		id = (*pp).ID
	}
	c.str(&id, 256)
	if !c.dec {
		return
	}
	if c.rules == nil {
		c.rules = map[string]*webrule.Rule{}
		for _, r := range c.e.web.set.Rules() {
			c.rules[r.ID] = r
		}
	}
	*pp = c.rules[id]
}

// codeTracker writes or reads a tracker's addresses and states; keep, when
// reading, may refuse a state that can no longer work (a rule gone).
func codeTracker[S any](c *codec, t *tracker[S], fn func(*codec, *S) (keep bool)) {
	n := c.length(len(t.m), t.max)
	if !c.dec {
		for k, s := range t.m {
			c.addr(&k)
			fn(c, s)
		}
		return
	}
	for range n {
		var k netip.Addr
		c.addr(&k)
		s := new(S)
		keep := fn(c, s)
		if c.err != nil {
			return
		}
		if keep {
			t.m[k] = s
		}
	}
}

// Each detector's state, field by field.

func (a *attempts) code(c *codec) { a.conns.code(c) }

func (t *sshConns) code(c *codec) {
	n := c.length(len(t.c), maxConns)
	if c.dec {
		t.c = nil
		if n > 0 {
			t.c = make([]sshConn, n, max(n, 4))
		}
	}
	for i := range t.c {
		x := &t.c[i]
		c.u64(&x.user)
		c.u32(&x.pid)
		c.u16(&x.port)
		c.u8(&x.flags)
	}
	c.int(&t.next)
	if c.dec && (t.next < 0 || t.next >= maxConns) {
		c.fail("connection slot %d", t.next)
	}
}

func (d *sshBruteforce) code(c *codec) {
	codeTracker(c, d.t, func(c *codec, s *sshState) bool {
		c.bucket(&s.fast)
		c.bucket(&s.slow)
		s.att.code(c)
		c.strs(&s.users, incident.MaxList)
		c.episode(&s.ep)
		c.bool(&s.slowFired)
		c.str(&s.loggedIn, 256)
		if c.dec && s.ep != nil {
			ep := s.ep
			ep.render = func() { d.render(ep, s.loggedIn) }
		}
		return true
	})
}

func (d *credentialStuffing) code(c *codec) {
	codeTracker(c, d.t, func(c *codec, s *credState) bool {
		c.bucket(&s.users)
		c.distinct(&s.seen)
		s.att.code(c)
		c.bucket(&s.http)
		c.bucket(&s.wp)
		c.int(&s.sshN)
		c.strs(&s.preUsers, incident.MaxList)
		c.strs(&s.prePaths, incident.MaxList)
		c.episode(&s.ep)
		c.bool(&s.viaSSH)
		c.int(&s.httpCount)
		w := &s.web
		c.bucket(&w.login)
		c.i64(&w.since)
		c.int(&w.n)
		c.int(&w.basic)
		c.int(&w.wp)
		c.int(&w.xmlrpc)
		c.int(&w.posts)
		c.strs(&w.preUsers, incident.MaxList)
		c.ints(&w.preStatuses, incident.MaxList)
		has := w.seen != nil
		c.bool(&has)
		if has {
			if c.dec {
				w.seen = new([authSeen]authMark)
			}
			for i := range w.seen {
				m := &w.seen[i]
				c.i64(&m.sec)
				c.u64(&m.user)
				c.bool(&m.fromErr)
				c.bool(&m.used)
			}
		}
		c.u8(&w.next)
		if c.dec && s.ep != nil {
			ep := s.ep
			if s.viaSSH {
				ep.render = func() { d.render(ep, true) }
			} else {
				ep.render = func() { d.renderWeb(ep, w) }
			}
		}
		return true
	})
}

func (d *sshProbe) code(c *codec) {
	codeTracker(c, d.t, func(c *codec, s *probeState) bool {
		c.bucket(&s.probes)
		s.conns.code(c)
		c.i64(&s.lastAuth)
		c.int(&s.n)
		for i := range s.kinds {
			c.i32(&s.kinds[i])
		}
		c.strs(&s.pre, incident.MaxList)
		c.episode(&s.ep)
		if c.dec && s.ep != nil {
			ep := s.ep
			ep.render = func() { d.render(ep, s) }
		}
		return true
	})
}

func (d *sshTimeoutStorm) code(c *codec) {
	codeTracker(c, d.t, func(c *codec, s *timeoutState) bool {
		c.bucket(&s.timeouts)
		c.int(&s.n)
		c.u32(&s.lastPID)
		c.u16(&s.lastPort)
		c.episode(&s.ep)
		if c.dec && s.ep != nil {
			ep := s.ep
			ep.render = func() { renderTimeouts(ep) }
		}
		return true
	})
}

func (d *portScan) code(c *codec) {
	codeTracker(c, d.t, func(c *codec, s *scanState) bool {
		c.bucket(&s.ports)
		c.distinct(&s.seen)
		c.int(&s.n)
		c.ints(&s.pre, incident.MaxList)
		c.episode(&s.ep)
		if c.dec && s.ep != nil {
			ep := s.ep
			ep.render = func() { d.render(s, ep) }
		}
		return true
	})
}

func (t *webTally) code(c *codec) {
	c.int(&t.n)
	c.i64(&t.since)
	for i := range t.hits {
		c.i32(&t.hits[i])
	}
	c.i32(&t.plain)
	c.distinct(&t.paths)
	c.rule(&t.first)
	c.rule(&t.tool)
	c.strs(&t.cves, 1024)
}

func (d *webScan) code(c *codec) {
	codeTracker(c, d.t, func(c *codec, s *webState) bool {
		c.bucket(&s.score)
		c.distinct(&s.seen)
		s.tally.code(c)
		n := c.length(len(s.pre), incident.MaxList)
		if c.dec {
			s.pre = make([]webPre, n)
		}
		for i := range s.pre {
			p := &s.pre[i]
			c.str(&p.path, 64<<10)
			c.str(&p.method, 64<<10)
			c.str(&p.ua, 64<<10)
			c.int(&p.status)
		}
		c.episode(&s.ep)
		has := s.cur != nil
		c.bool(&has)
		if has {
			if c.dec {
				s.cur = new(webTally)
			}
			s.cur.code(c)
		}
		if c.dec && s.ep != nil {
			ep, cur := s.ep, s.cur
			if cur == nil {
				cur = new(webTally)
				s.cur = cur
			}
			ep.render = func() { d.render(ep, cur) }
		}
		return true
	})
}

func (d *exploitAttempt) code(c *codec) {
	codeTracker(c, d.t, func(c *codec, s *exploitState) bool {
		c.episode(&s.ep)
		has := s.x != nil
		c.bool(&has)
		if has {
			if c.dec {
				s.x = new(exploitTally)
			}
			x := s.x
			c.rule(&x.top)
			n := c.length(len(x.rules), exploitRulesMax)
			if c.dec {
				x.rules = make([]*webrule.Rule, n)
			}
			for i := range x.rules {
				c.rule(&x.rules[i])
			}
			c.str(&x.first, 64<<10)
			if c.dec {
				x.rules = slices.DeleteFunc(x.rules, func(r *webrule.Rule) bool { return r == nil })
			}
		}
		if !c.dec || s.ep == nil {
			return true
		}
		if s.x == nil || s.x.top == nil {
			return false // its rule is gone from the rule set: start over
		}
		ep, x := s.ep, s.x
		ep.render = func() { d.render(ep, x) }
		return true
	})
}

func (d *c2Connect) code(c *codec) {
	codeTracker(c, d.t, func(c *codec, s *c2State) bool {
		c.episode(&s.ep)
		return true
	})
}

func (d *suspiciousExec) code(c *codec) {
	keys := make([]string, 0, len(d.m))
	for k := range d.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := c.length(len(keys), maxExecKeys)
	for i := range n {
		var k string
		var ep *episode
		if !c.dec {
			k = keys[i]
			ep = d.m[k]
		}
		c.str(&k, 256)
		c.episode(&ep)
		if c.dec && c.err == nil && ep != nil {
			d.m[k] = ep
		}
	}
}
