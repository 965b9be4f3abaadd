package detect

import (
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// SSHTimeoutStorm counts SSH connections from one address that sshd cut
// off at LoginGraceTime ("Timeout before authentication for A port P").
type SSHTimeoutStorm struct {
	Switch
	Severity incident.Severity `json:"severity"` // default high
	// Timeouts: capacity 3 leaking one per 60 s, so the 4th timeout within
	// a few minutes fires. An honest client times out at most once, when
	// its user walks away from a password prompt. Exploiting CVE-2024-6387
	// (regreSSHion) means racing sshd's SIGALRM handler about 10,000 times
	// (Qualys' figure), holding up to MaxStartups connections open until
	// each times out, so the log shows waves of timeouts every
	// LoginGraceTime (120 s by default) from one address. OpenSSH 9.8 and
	// later penalise an address after such timeouts (PerSourcePenalties)
	// and refuse its next connections, so a patched server logs only a
	// few: a low threshold still sees the attempt there. (CrowdSec's
	// crowdsecurity/ssh-cve-2024-6387 waits for 21 timeouts leaking one
	// per 2 s, which only an unpatched server with a large MaxStartups
	// ever shows.)
	Timeouts Bucket `json:"timeouts"`
}

// defaultSSHTimeoutStorm returns the defaults of ssh_timeout_storm.
func defaultSSHTimeoutStorm() SSHTimeoutStorm {
	return SSHTimeoutStorm{
		Severity: incident.High,
		Timeouts: Bucket{Capacity: 3, Leak: Duration(60 * time.Second)},
	}
}

// sshTimeoutStormDetector is the table row of ssh_timeout_storm (detectors.go).
func sshTimeoutStormDetector() registration {
	return registration{
		name:     "ssh_timeout_storm",
		kinds:    []string{event.KindSSHFailed},
		section:  func(c *Config) *Switch { return &c.SSHTimeoutStorm.Switch },
		severity: func(c *Config) incident.Severity { return c.SSHTimeoutStorm.Severity },
		buckets: func(c *Config) map[string]Bucket {
			return map[string]Bucket{"timeouts": c.SSHTimeoutStorm.Timeouts}
		},
		build: func(e *Engine) detector { return newSSHTimeoutStorm(e) },
	}
}

// sshTimeoutStorm raises "ssh_timeout_storm" (high, tagged cve-2024-6387)
// when connections from one address keep timing out before authentication
// (the 4th within the bucket): the pattern of regreSSHion exploitation and
// of MaxStartups exhaustion. A single timeout is never an incident.
type sshTimeoutStorm struct {
	cfg SSHTimeoutStorm
	t   *tracker[timeoutState]
}

type timeoutState struct {
	timeouts bucket
	n        int    // timeouts since the bucket started
	lastPID  uint32 // connection of the last timeout, so a line read
	lastPort uint16 // twice (two log sources) counts once
	ep       *episode
}

func newSSHTimeoutStorm(e *Engine) *sshTimeoutStorm {
	d := &sshTimeoutStorm{cfg: e.cfg.SSHTimeoutStorm}
	d.t = newTracker(e, func(s *timeoutState) int64 {
		return e.keepUntil(s.timeouts.drainedAt(d.cfg.Timeouts), s.ep)
	})
	return d
}

func (d *sshTimeoutStorm) sweep(now int64) { d.t.sweep(now) }
func (d *sshTimeoutStorm) keys() int       { return d.t.keys() }

func (d *sshTimeoutStorm) handle(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	if ev.Kind != event.KindSSHFailed || ev.Detail != logparse.DetailPreauthTimeout || !e.reportable(ev.SrcIP) {
		return out
	}
	st := d.t.get(ev.SrcIP, now)
	if keyed(ev) && st.n > 0 && ev.PID == st.lastPID && ev.SrcPort == st.lastPort {
		return out
	}
	st.lastPID, st.lastPort = ev.PID, ev.SrcPort
	if st.ep != nil && e.over(st.ep, now) {
		st.ep = nil
	}
	if st.ep == nil && st.timeouts.empty(now, d.cfg.Timeouts) {
		st.n = 0
	}
	st.n++
	fired := st.timeouts.add(now, d.cfg.Timeouts)
	if st.ep != nil {
		st.ep.count++
		return e.publish(st.ep, now, st.ep.base, out)
	}
	if !fired {
		return out
	}
	ep := e.open("ssh_timeout_storm", ev.SrcIP.String(), d.cfg.Severity, d.cfg.Timeouts.threshold(), st.timeouts.since, now, st.n)
	ep.inc.Title = "regreSSHion exploitation pattern (CVE-2024-6387)"
	ep.inc.Tags = []string{"cve-2024-6387"}
	ep.inc.Evidence = nil // the lines carry nothing but the address
	ep.render = func() { renderTimeouts(ep) }
	st.ep = ep
	return e.publish(ep, now, ep.base, out)
}

// renderTimeouts writes the summary of a timeout storm.
func renderTimeouts(ep *episode) {
	var b strings.Builder
	b.WriteString(plural(ep.count, false, "SSH connection"))
	b.WriteString(" timed out before authentication in ")
	b.WriteString(span(ep.first, ep.last))
	ep.inc.Summary = b.String()
}
