package detect

import (
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// SSHBruteforce counts failed SSH authentication attempts per source, each
// attempt once however many lines sshd and PAM write about it.
type SSHBruteforce struct {
	Switch
	Severity incident.Severity `json:"severity"` // default high
	// Fast: capacity 5 leaking one per 10 s (fires on the 6th quick failure).
	Fast Bucket `json:"fast"`
	// Slow: capacity 10 leaking one per 60 s, for patient guessers.
	Slow Bucket `json:"slow"`
}

// defaultSSHBruteforce returns the defaults of ssh_bruteforce.
func defaultSSHBruteforce() SSHBruteforce {
	return SSHBruteforce{
		Severity: incident.High,
		Fast:     Bucket{Capacity: 5, Leak: Duration(10 * time.Second)},
		Slow:     Bucket{Capacity: 10, Leak: Duration(60 * time.Second)},
	}
}

// sshBruteforceDetector is the table row of ssh_bruteforce (detectors.go).
func sshBruteforceDetector() registration {
	return registration{
		name:     "ssh_bruteforce",
		kinds:    []string{event.KindSSHFailed, event.KindSSHAccepted},
		section:  func(c *Config) *Switch { return &c.SSHBruteforce.Switch },
		severity: func(c *Config) incident.Severity { return c.SSHBruteforce.Severity },
		buckets: func(c *Config) map[string]Bucket {
			return map[string]Bucket{"fast": c.SSHBruteforce.Fast, "slow": c.SSHBruteforce.Slow}
		},
		build: func(e *Engine) detector { return newSSHBruteforce(e) },
	}
}

// sshBruteforce raises "ssh_bruteforce" (high) when SSH authentication
// attempts (counted once per attempt, see attempts: failed passwords and
// keys, invalid users, and sessions of pubkey-only servers that end before
// authentication) from one address overflow the fast bucket
// (capacity 5, one leaking per 10 s: the 6th quick failure) or the slow one
// (capacity 10, one per minute). An accepted login from an address under
// an open brute force incident raises it to critical.
type sshBruteforce struct {
	cfg SSHBruteforce
	t   *tracker[sshState]
}

type sshState struct {
	fast, slow bucket
	att        attempts
	users      []string // usernames before the incident opened, for evidence
	ep         *episode
	slowFired  bool
	loggedIn   string
}

func newSSHBruteforce(e *Engine) *sshBruteforce {
	d := &sshBruteforce{cfg: e.cfg.SSHBruteforce}
	d.t = newTracker(e, func(s *sshState) int64 {
		return e.keepUntil(max(s.fast.drainedAt(d.cfg.Fast), s.slow.drainedAt(d.cfg.Slow)), s.ep)
	})
	return d
}

func (d *sshBruteforce) sweep(now int64) { d.t.sweep(now) }
func (d *sshBruteforce) keys() int       { return d.t.keys() }

func (d *sshBruteforce) handle(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	switch ev.Kind {
	case event.KindSSHFailed:
	case event.KindSSHAccepted:
		return d.accepted(e, ev, now, out)
	default:
		return out
	}
	if !isAttempt(ev) || !e.reportable(ev.SrcIP) {
		return out
	}
	st := d.t.get(ev.SrcIP, now)
	if !st.att.count(e, ev) {
		return out
	}
	if st.ep == nil && st.fast.empty(now, d.cfg.Fast) && st.slow.empty(now, d.cfg.Slow) {
		st.users = st.users[:0] // a new run of failures
	}
	fast := st.fast.add(now, d.cfg.Fast)
	slow := st.slow.add(now, d.cfg.Slow)
	if st.ep != nil && !e.over(st.ep, now) {
		st.ep.count++
		d.evidence(st.ep, ev.User)
		return e.publish(st.ep, now, d.severity(st), out)
	}
	if st.ep != nil { // the last incident's cooldown is over
		st.ep, st.slowFired, st.loggedIn = nil, false, ""
	}
	if !fast && !slow {
		if len(st.users) < incident.MaxList && ev.User != "" {
			st.users = appendDistinct(st.users, ev.User)
		}
		return out
	}
	b, c := &st.fast, d.cfg.Fast
	if !fast {
		b, c = &st.slow, d.cfg.Slow
		st.slowFired = true
	}
	ep := e.open("ssh_bruteforce", ev.SrcIP.String(), d.cfg.Severity, c.threshold(), b.since, now, int(b.n))
	for _, u := range st.users {
		addText(&ep.inc.Evidence.Users, u)
	}
	st.users = nil
	d.evidence(ep, ev.User)
	st.ep = ep
	ep.inc.Title = "SSH brute force"
	if st.slowFired {
		ep.inc.Title = "Slow SSH brute force"
	}
	ep.render = func() { d.render(ep, st.loggedIn) }
	return e.publish(ep, now, d.severity(st), out)
}

// accepted escalates an open brute force incident when the address logs in.
func (d *sshBruteforce) accepted(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	st := d.t.peek(ev.SrcIP)
	if st == nil || st.ep == nil || e.over(st.ep, now) || st.loggedIn != "" {
		return out
	}
	st.loggedIn = incident.CleanText(ev.User, 64)
	if st.loggedIn == "" {
		st.loggedIn = "?"
	}
	return e.publish(st.ep, now, d.severity(st), out)
}

func (d *sshBruteforce) evidence(ep *episode, user string) {
	if user != "" { // a client that gave up before naming a user
		addText(&ep.inc.Evidence.Users, user)
	}
}

func (d *sshBruteforce) severity(st *sshState) incident.Severity {
	if st.loggedIn != "" {
		return incident.Critical
	}
	return st.ep.severity(st.ep.count)
}

// render writes the summary; loggedIn names the account of a successful
// login after the failures.
func (d *sshBruteforce) render(ep *episode, loggedIn string) {
	users := ep.inc.Evidence.Users
	var b strings.Builder
	b.WriteString(plural(ep.count, false, "failed SSH login"))
	if len(users) > 0 {
		b.WriteString(" for ")
		b.WriteString(plural(len(users), len(users) >= incident.MaxList, "user"))
	}
	b.WriteString(" in ")
	b.WriteString(span(ep.first, ep.last))
	if loggedIn != "" {
		b.WriteString(", then a successful login as ")
		b.WriteString(loggedIn)
	}
	ep.inc.Summary = b.String()
}

// attempts counts each SSH authentication attempt once per sshd
// connection, from what sshd and PAM log about it:
//
//   - "Failed password|publickey|keyboard-interactive/pam|... for X": each
//     line is an attempt (a connection may carry MaxAuthTries of them).
//   - "Invalid user X", "User X ... not allowed", "ROOT LOGIN REFUSED" and
//     PAM's "authentication failure" are an attempt whose "Failed ..." line
//     is still to come: they count and leave a pending mark that the next
//     "Failed ..." line of the same connection consumes instead of counting
//     again. A mark already pending absorbs the next such line too, so
//     "Invalid user X" then PAM's failure then "Failed password for invalid
//     user X" is one attempt.
//   - Closing lines that name a user ("Connection closed by authenticating
//     user root A port P [preauth]", "Disconnected from invalid user X ..."),
//     the client giving up ("... 14: No supported authentication methods
//     available"), "Change of username" and "Too many authentication
//     failures" count once, and only when their connection logged no
//     attempt before: that is all a pubkey-only server logs of a brute
//     force, while after "Failed password" lines they repeat it.
//   - A closing line without a user, "Failed none", key-exchange and banner
//     failures and timeouts are not attempts (ssh_probe and
//     ssh_timeout_storm look at those).
//
// A connection is its sshd pid, or its source port when the line has no
// pid (sshd -E files); see sshConns.
type attempts struct {
	conns sshConns
}

// count reports whether ev is a new authentication attempt.
func (a *attempts) count(e *Engine, ev *event.Event) bool {
	switch ev.Detail {
	case logparse.DetailInvalidUser, logparse.DetailUserNotAllowed, logparse.DetailRootRefused,
		logparse.DetailPAMFailure:
		if ev.Detail == logparse.DetailPAMFailure && ev.User == "" && a.conns.find(ev) == nil &&
			a.conns.anyPending() {
			// PAM names no user only for an unknown one, after sshd's
			// "Invalid user" line; a pid never seen before is the PAM
			// child of keyboard-interactive, whose connection's mark
			// already stands for this attempt.
			return false
		}
		c := a.conns.get(ev)
		if c.flags&connPending != 0 {
			return false // the attempt this mark stands for already counted
		}
		c.flags |= connPending | connCounted
		c.user = userHash(e, ev.User)
		return true
	case logparse.DetailFailedPassword, logparse.DetailFailedPublickey, logparse.DetailFailedKbdInt,
		logparse.DetailFailedOther, "":
		c, m := a.conns.lookup(ev, userHash(e, ev.User))
		if c != nil && c.flags&connPending != 0 {
			c.flags &^= connPending
			return false
		}
		if m != nil {
			m.flags &^= connPending
			if c != nil {
				c.flags |= connCounted
			}
			return false
		}
		if c == nil {
			c = a.conns.get(ev)
		}
		c.flags |= connCounted
		return true
	case logparse.DetailPreauthClose, logparse.DetailAuthGaveUp, logparse.DetailUsernameChange,
		logparse.DetailMaxAuthTries:
		if !keyed(ev) {
			return false // no way to tell whether its connection failed before
		}
		c := a.conns.find(ev)
		if c != nil {
			c.flags &^= connPending // the connection is over: no "Failed" line follows
		}
		if (ev.Detail == logparse.DetailPreauthClose && ev.User == "") || (c != nil && c.flags&connCounted != 0) {
			return false
		}
		if c == nil {
			c = a.conns.get(ev)
		}
		c.flags |= connCounted
		return true
	}
	return false
}

// isAttempt reports whether ev may be an authentication attempt (see
// attempts); events without a detail (from other producers) count.
func isAttempt(ev *event.Event) bool {
	switch ev.Detail {
	case logparse.DetailInvalidUser, logparse.DetailUserNotAllowed, logparse.DetailRootRefused,
		logparse.DetailFailedPassword, logparse.DetailFailedPublickey, logparse.DetailFailedKbdInt,
		logparse.DetailFailedOther, logparse.DetailPAMFailure, logparse.DetailMaxAuthTries,
		logparse.DetailAuthGaveUp, logparse.DetailUsernameChange, "":
		return true
	case logparse.DetailPreauthClose:
		return ev.User != ""
	}
	return false
}

// sshConn is what one sshd connection of an address has logged so far.
type sshConn struct {
	user  uint64 // hash of the username of a pending mark (0: none given)
	pid   uint32
	port  uint16
	flags uint8
}

const (
	// connPending: an attempt counted whose "Failed ..." line may follow.
	connPending uint8 = 1 << iota
	// connCounted: the connection counted an authentication attempt.
	connCounted
	// connProbed: ssh_probe counted the connection as a probe.
	connProbed
)

// maxConns bounds the connections remembered per address. Parallel
// brute-force tools run 4 to 64 connections at once (hydra's default is
// 16), and sshd itself refuses unauthenticated connections beyond
// MaxStartups (default 10:30:100), so 64 covers nearly every attacker;
// past it the oldest connection is forgotten, which can at worst count its
// closing line as one more attempt. Slots are 16 bytes and only addresses
// that open that many connections grow that far.
const maxConns = 64

// sshConns is a small per-address table of recent sshd connections, the
// oldest replaced first once full.
type sshConns struct {
	c    []sshConn
	next int // the slot to replace next once the table is full
}

// keyed reports whether ev names its connection (an sshd pid or a port).
func keyed(ev *event.Event) bool { return ev.PID != 0 || ev.SrcPort != 0 }

// find returns the connection of ev, or nil. A line with a pid belongs to
// that pid's connection unless both name different ports (a reused pid);
// a line without one is matched by its source port.
func (t *sshConns) find(ev *event.Event) *sshConn {
	if !keyed(ev) {
		return nil
	}
	for i := range t.c {
		if c := &t.c[i]; c.is(ev) {
			if c.port == 0 {
				c.port = ev.SrcPort
			}
			return c
		}
	}
	return nil
}

// is reports whether keyed event ev belongs to connection c.
func (c *sshConn) is(ev *event.Event) bool {
	if ev.PID != 0 {
		return c.pid == ev.PID && (c.port == 0 || ev.SrcPort == 0 || c.port == ev.SrcPort)
	}
	return c.port == ev.SrcPort
}

// get returns the connection of ev, adding it when new. A line that names
// no connection gets a fresh slot of its own (a mark matched by username
// only, see orphan).
func (t *sshConns) get(ev *event.Event) *sshConn {
	if c := t.find(ev); c != nil {
		return c
	}
	n := sshConn{pid: ev.PID, port: ev.SrcPort}
	if len(t.c) < maxConns {
		if t.c == nil {
			t.c = make([]sshConn, 0, 4) // most addresses open a few connections
		}
		t.c = append(t.c, n)
		return &t.c[len(t.c)-1]
	}
	c := &t.c[t.next]
	*c = n
	t.next = (t.next + 1) % maxConns
	return c
}

// lookup returns the connection of ev, like find, and in the same pass a
// pending mark that no port ties to a connection (nil when none), for a
// "Failed ..." line whose own connection has none: PAM's "authentication
// failure" has no port and, with keyboard-interactive, comes from a PAM
// child process with a pid of its own; old sshd wrote "Invalid user X from
// A" without a port. The usernames must agree when both are known. Taking
// another connection's mark at worst moves a count between connections of
// the same address; the total stays right.
func (t *sshConns) lookup(ev *event.Event, h uint64) (own, orphan *sshConn) {
	for i := range t.c {
		c := &t.c[i]
		if own == nil && keyed(ev) && c.is(ev) {
			own = c
			continue
		}
		if orphan == nil && c.port == 0 && c.flags&connPending != 0 && (c.user == 0 || h == 0 || c.user == h) {
			orphan = c
		}
	}
	if own != nil && own.port == 0 {
		own.port = ev.SrcPort
	}
	if orphan == own {
		orphan = nil
	}
	return own, orphan
}

// anyPending reports whether some connection holds a pending mark.
func (t *sshConns) anyPending() bool {
	for i := range t.c {
		if t.c[i].flags&connPending != 0 {
			return true
		}
	}
	return false
}

// userHash hashes a username; 0 stands for none.
func userHash(e *Engine, u string) uint64 {
	if u == "" {
		return 0
	}
	return e.hash(u) | 1
}

func appendDistinct(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, strings.Clone(s))
}
