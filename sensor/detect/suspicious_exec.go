package detect

import (
	"net/netip"
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

// SuspiciousExec raises a high-severity incident when a web server or
// database process starts a shell.
type SuspiciousExec struct {
	Switch
	Severity incident.Severity `json:"severity"` // default high
	// Shells are process names (comm) of shells.
	Shells []string `json:"shells"`
	// Parents are name prefixes of web server and database processes.
	Parents []string `json:"parents"`
}

// defaultSuspiciousExec returns the defaults of suspicious_exec.
func defaultSuspiciousExec() SuspiciousExec {
	return SuspiciousExec{
		Severity: incident.High,
		Shells:   []string{"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "csh", "tcsh"},
		Parents: []string{"nginx", "apache2", "httpd", "lighttpd", "caddy", "php-fpm", "php-cgi",
			"uwsgi", "tomcat", "mysqld", "mariadbd", "postgres", "postmaster", "redis-server",
			"mongod", "memcached", "couchdb", "elasticsearch"},
	}
}

// suspiciousExecDetector is the table row of suspicious_exec (detectors.go).
func suspiciousExecDetector() registration {
	return registration{
		name:     "suspicious_exec",
		kinds:    []string{event.KindExec},
		section:  func(c *Config) *Switch { return &c.SuspiciousExec.Switch },
		severity: func(c *Config) incident.Severity { return c.SuspiciousExec.Severity },
		build:    func(e *Engine) detector { return newSuspiciousExec(e) },
	}
}

// suspiciousExec raises "suspicious_exec" (high) when a web server or
// database process starts a shell: the classic sign of a web shell or of
// command injection. One incident per parent program and cooldown.
//
// An exec event names no remote address. The incident's ip is the event's
// src_ip when the collector knew one, else the unspecified address 0.0.0.0
// (so it is not placed on the map, but it is listed); the private address
// filter does not apply, the allow list does when an address is known.
type suspiciousExec struct {
	cfg      SuspiciousExec
	shells   map[string]bool
	parents  []string
	m        map[string]*episode // by parent comm
	cooldown int64
}

// maxExecKeys bounds the parents tracked: parent names come from a small
// set of server programs, so 1,024 is generous.
const maxExecKeys = 1024

var unspecified = netip.IPv4Unspecified()

func newSuspiciousExec(e *Engine) *suspiciousExec {
	d := &suspiciousExec{cfg: e.cfg.SuspiciousExec, shells: map[string]bool{}, parents: e.cfg.SuspiciousExec.Parents,
		m: map[string]*episode{}, cooldown: int64(e.cfg.Cooldown)}
	for _, s := range d.cfg.Shells {
		d.shells[s] = true
	}
	return d
}

func (d *suspiciousExec) keys() int { return len(d.m) }

func (d *suspiciousExec) sweep(now int64) {
	for k, ep := range d.m {
		if now-ep.last > d.cooldown {
			delete(d.m, k)
		}
	}
}

func (d *suspiciousExec) parent(comm string) bool {
	for _, p := range d.parents {
		if strings.HasPrefix(comm, p) {
			return true
		}
	}
	return false
}

func (d *suspiciousExec) handle(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	if ev.Kind != event.KindExec || !d.shells[shellName(ev)] || !d.parent(ev.ParentComm) {
		return out
	}
	addr := unspecified
	if ev.SrcIP.IsValid() {
		if !e.reportable(ev.SrcIP) {
			return out
		}
		addr = ev.SrcIP.WithZone("").Unmap()
	}
	key := incident.CleanText(ev.ParentComm, 64)
	ep := d.m[key]
	if ep != nil && e.over(ep, now) {
		ep = nil
	}
	if ep == nil {
		if len(d.m) >= maxExecKeys {
			d.sweep(now)
			if len(d.m) >= maxExecKeys {
				return out // full of live incidents: drop rather than grow
			}
		}
		ep = e.open("suspicious_exec", addr.String(), d.cfg.Severity, 0, now, now, 0)
		// The parent's name, not an address, tells these episodes apart.
		ep.inc.ID = "suspicious_exec:" + key + ":" + time.Unix(0, now).UTC().Format("2006-01-02T15:04Z")
		ep.inc.Title = "Shell started by a server process"
		evd := ep.inc.Evidence
		evd.Comm = incident.CleanText(ev.Comm, incident.MaxEvidenceString)
		evd.Parent = key
		for i, a := range ev.Argv {
			if i >= incident.MaxList {
				break
			}
			evd.Argv = append(evd.Argv, incident.CleanText(a, incident.MaxEvidenceString))
		}
		d.m[key] = ep
	}
	ep.count++
	cmd := strings.Join(ep.inc.Evidence.Argv, " ")
	if cmd == "" {
		cmd = ep.inc.Evidence.Comm
	}
	ep.inc.Summary = incident.CleanText(key+" started "+ep.inc.Evidence.Comm+": "+cmd+"; "+
		plural(ep.count, false, "shell"), incident.MaxSummary)
	return e.publish(ep, now, d.cfg.Severity, out)
}

// shellName is the program an exec event started: its comm, or the base
// name of its path.
func shellName(ev *event.Event) string {
	if ev.Comm != "" {
		return ev.Comm
	}
	if i := strings.LastIndexByte(ev.Path, '/'); i >= 0 {
		return ev.Path[i+1:]
	}
	return ev.Path
}
