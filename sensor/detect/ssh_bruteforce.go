package detect

import (
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// SSHBruteforce counts failed SSH authentication attempts per source.
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

// sshBruteforce raises "ssh_bruteforce" (high) when failed SSH
// authentication attempts from one address overflow the fast bucket
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
		exp := max(s.fast.drainedAt(d.cfg.Fast), s.slow.drainedAt(d.cfg.Slow))
		if s.ep != nil {
			exp = max(exp, s.ep.last+int64(e.cfg.Cooldown))
		}
		return exp
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
	if !st.att.count(ev) {
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
		if len(st.users) < incident.MaxList {
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
	addText(&ep.inc.Evidence.Users, user)
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
	b.WriteString(" for ")
	b.WriteString(plural(len(users), len(users) >= incident.MaxList, "user"))
	b.WriteString(" in ")
	b.WriteString(span(ep.first, ep.last))
	if loggedIn != "" {
		b.WriteString(", then a successful login as ")
		b.WriteString(loggedIn)
	}
	ep.inc.Summary = b.String()
}

// attempts counts each SSH authentication attempt once. sshd writes two
// lines for one attempt by an unknown user ("Invalid user X from A port
// P", then "Failed password for invalid user X from A port P ssh2"): the
// first counts, the second is matched to it by port and username and
// skipped. A few connections of one address can interleave, so the last
// few such marks are kept. PAM's "authentication failure" lines,
// "maximum authentication attempts exceeded" and closing lines repeat an
// attempt sshd already logged and never count.
type attempts struct {
	pend [4]struct {
		user uint64
		port uint16
		set  bool
	}
	next uint8
}

func (a *attempts) count(ev *event.Event) bool {
	switch ev.Detail {
	case logparse.DetailInvalidUser, logparse.DetailUserNotAllowed:
		p := &a.pend[a.next%uint8(len(a.pend))]
		p.user, p.port, p.set = hashString(ev.User), ev.SrcPort, true
		a.next++
		return true
	case logparse.DetailFailedPassword, logparse.DetailFailedPublickey, logparse.DetailFailedKbdInt,
		logparse.DetailFailedOther, "":
		h := hashString(ev.User)
		for i := range a.pend {
			p := &a.pend[i]
			if p.set && p.user == h && (p.port == ev.SrcPort || p.port == 0 || ev.SrcPort == 0) {
				p.set = false
				return false
			}
		}
		return true
	}
	return false
}

// isAttempt reports whether ev may be an authentication attempt (see
// attempts); events without a detail (from other producers) count.
func isAttempt(ev *event.Event) bool {
	switch ev.Detail {
	case logparse.DetailInvalidUser, logparse.DetailUserNotAllowed, logparse.DetailFailedPassword,
		logparse.DetailFailedPublickey, logparse.DetailFailedKbdInt, logparse.DetailFailedOther, "":
		return true
	}
	return false
}

func appendDistinct(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, strings.Clone(s))
}
