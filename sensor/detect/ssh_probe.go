package detect

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// SSHProbe counts SSH connections that never try to log in: key-exchange,
// banner and protocol scanners and connect-and-close probes.
type SSHProbe struct {
	Switch
	Severity incident.Severity `json:"severity"` // default low
	// Probes: capacity 2 leaking one per minute, so the 3rd probing
	// connection within about two minutes fires. Internet-wide banner
	// crawlers touch a port once or twice per pass and a health check
	// once a minute or less, which never fills it; ssh-audit, nmap's ssh
	// scripts and kex scanners open several connections in seconds.
	// (fail2ban's sshd "ddos"/"aggressive" modes count the same lines
	// against the jail's maxretry, 5 in 10 minutes by default, and ban;
	// this only reports, at low severity, so it may speak earlier.)
	Probes Bucket `json:"probes"`
	// AfterAuth: probe-like lines from an address that tried to
	// authenticate, or logged in, less than this long before are the ends
	// of its login connections ("Received disconnect ... Bye Bye" before
	// "Disconnected from authenticating user root"), not probes;
	// ssh_bruteforce speaks for such an address. Default 5 minutes, more
	// than LoginGraceTime (2 minutes), the longest a connection can stay
	// before authentication.
	AfterAuth Duration `json:"after_auth"`
}

// defaultSSHProbe returns the defaults of ssh_probe.
func defaultSSHProbe() SSHProbe {
	return SSHProbe{
		Severity:  incident.Low,
		Probes:    Bucket{Capacity: 2, Leak: Duration(time.Minute)},
		AfterAuth: Duration(5 * time.Minute),
	}
}

// sshProbeDetector is the table row of ssh_probe (detectors.go).
func sshProbeDetector() registration {
	return registration{
		name:     "ssh_probe",
		kinds:    []string{event.KindSSHFailed, event.KindSSHAccepted},
		section:  func(c *Config) *Switch { return &c.SSHProbe.Switch },
		severity: func(c *Config) incident.Severity { return c.SSHProbe.Severity },
		buckets:  func(c *Config) map[string]Bucket { return map[string]Bucket{"probes": c.SSHProbe.Probes} },
		check: func(c *Config) error {
			if c.SSHProbe.AfterAuth < 0 {
				return errors.New("detect: ssh_probe.after_auth: must not be negative")
			}
			return nil
		},
		build: func(e *Engine) detector { return newSSHProbe(e) },
	}
}

// sshProbe raises "ssh_probe" (low) when one address opens several SSH
// connections that end before any authentication attempt: failed key
// exchanges ("Unable to negotiate", "banner exchange: ... invalid format",
// "kex_exchange_identification", "Bad protocol version identification"),
// connections that never sent an identification string, "Failed none"
// method probes, and closes before authentication that name no user. Each
// connection counts once. The severity stays the configured one however
// long the scan (a scanner is reconnaissance, not an intrusion). The title
// says "SSH key-exchange scanner" when at least half the probes were failed
// key exchanges, else "SSH scanner".
type sshProbe struct {
	cfg SSHProbe
	t   *tracker[probeState]
}

// Kinds of probe, for the title and summary.
const (
	probeKex     = iota // failed key exchange, banner or protocol version
	probeIdent          // no identification string
	probeNone           // "Failed none": asking which methods are allowed
	probeClose          // closed before authentication, no user named
	probeRefused        // refused by the listener: MaxStartups/penalty drops, tcp-wrappers
	probeKinds
)

type probeState struct {
	probes   bucket
	conns    sshConns // probed connections, to count each once
	lastAuth int64    // last authentication attempt or login, unix ns
	n        int      // probes since the bucket started
	kinds    [probeKinds]int32
	pre      []string // usernames of "none" probes before the incident
	ep       *episode
}

func newSSHProbe(e *Engine) *sshProbe {
	d := &sshProbe{cfg: e.cfg.SSHProbe}
	d.t = newTracker(e, func(s *probeState) int64 {
		exp := s.probes.drainedAt(d.cfg.Probes)
		if s.lastAuth != 0 {
			exp = max(exp, s.lastAuth+int64(d.cfg.AfterAuth))
		}
		return e.keepUntil(exp, s.ep)
	})
	return d
}

func (d *sshProbe) sweep(now int64) { d.t.sweep(now) }
func (d *sshProbe) keys() int       { return d.t.keys() }

// probeKind tells whether ev is a probe, and which.
func probeKind(ev *event.Event) (int, bool) {
	switch ev.Detail {
	case logparse.DetailKexFailure:
		return probeKex, ev.User == ""
	case logparse.DetailNoIdent:
		return probeIdent, true
	case logparse.DetailFailedNone:
		return probeNone, true
	case logparse.DetailPreauthClose:
		return probeClose, ev.User == ""
	case logparse.DetailConnDropped, logparse.DetailRefusedConnect:
		// sshd refused the connection before any exchange: a flood over
		// MaxStartups, an address under a PerSourcePenalties penalty or
		// one tcp-wrappers denies. Each is one more connection of a
		// prober.
		return probeRefused, true
	}
	return 0, false
}

func (d *sshProbe) handle(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	if ev.Kind != event.KindSSHFailed && ev.Kind != event.KindSSHAccepted {
		return out
	}
	kind, probe := probeKind(ev)
	if ev.Kind == event.KindSSHAccepted || (!probe && (ev.User != "" || isAttempt(ev))) {
		d.authenticated(ev, now)
		return out
	}
	if !probe || !e.reportable(ev.SrcIP) {
		return out // timeouts: ssh_timeout_storm
	}
	st := d.t.get(ev.SrcIP, now)
	if st.lastAuth != 0 && now-st.lastAuth <= int64(d.cfg.AfterAuth) {
		return out
	}
	if c := st.conns.find(ev); c != nil {
		return out // this connection already counted
	}
	if keyed(ev) {
		st.conns.get(ev).flags |= connProbed
	}
	if st.ep != nil && e.over(st.ep, now) {
		st.ep = nil
	}
	if st.ep == nil && st.probes.empty(now, d.cfg.Probes) {
		st.n, st.kinds, st.pre = 0, [probeKinds]int32{}, st.pre[:0]
	}
	st.n++
	st.kinds[kind]++
	fired := st.probes.add(now, d.cfg.Probes)
	if st.ep != nil {
		st.ep.count++
		addProbeUser(st.ep, ev.User)
		return e.publish(st.ep, now, st.ep.base, out)
	}
	if ev.User != "" && len(st.pre) < incident.MaxList {
		st.pre = appendDistinct(st.pre, ev.User)
	}
	if !fired {
		return out
	}
	ep := e.open("ssh_probe", ev.SrcIP.String(), d.cfg.Severity, d.cfg.Probes.threshold(), st.probes.since, now, st.n)
	ep.inc.Evidence = nil // most probes name no user: no empty evidence
	for _, u := range st.pre {
		addProbeUser(ep, u)
	}
	st.pre, st.ep = nil, ep
	ep.render = func() { d.render(ep, st) }
	return e.publish(ep, now, ep.base, out)
}

// authenticated notes an authentication attempt or login of an address
// that probed before: it is logging in, not probing, and its closing lines
// for the next AfterAuth are no probes. Addresses that never probed get no
// state here, so a brute force costs this detector nothing.
func (d *sshProbe) authenticated(ev *event.Event, now int64) {
	if st := d.t.peek(ev.SrcIP); st != nil {
		st.lastAuth = max(st.lastAuth, now)
	}
}

// addProbeUser adds the username of a "none" probe to the evidence.
func addProbeUser(ep *episode, u string) {
	if u == "" {
		return
	}
	if ep.inc.Evidence == nil {
		ep.inc.Evidence = &incident.Evidence{}
	}
	addText(&ep.inc.Evidence.Users, u)
}

// render writes the title and summary: how many probes of which kind.
func (d *sshProbe) render(ep *episode, st *probeState) {
	ep.inc.Title = "SSH scanner"
	if 2*int(st.kinds[probeKex]) >= st.n {
		ep.inc.Title = "SSH key-exchange scanner"
	}
	var b strings.Builder
	b.WriteString(plural(ep.count, false, "SSH probe"))
	b.WriteString(" in ")
	b.WriteString(span(ep.first, ep.last))
	sep := ": "
	for k, what := range [probeKinds][2]string{
		probeKex:     {"failed key exchange", "failed key exchanges"},
		probeIdent:   {"connection without an SSH banner", "connections without an SSH banner"},
		probeNone:    {"\"none\" method probe", "\"none\" method probes"},
		probeClose:   {"connection closed before login", "connections closed before login"},
		probeRefused: {"connection refused by sshd", "connections refused by sshd"},
	} {
		if n := int(st.kinds[k]); n > 0 {
			b.WriteString(sep)
			b.WriteString(strconv.Itoa(n))
			b.WriteByte(' ')
			b.WriteString(what[min(n-1, 1)])
			sep = ", "
		}
	}
	ep.inc.Summary = b.String()
}
