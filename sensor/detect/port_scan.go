package detect

import (
	"strconv"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

// PortScan counts distinct destination ports per source from eBPF probe and
// accept events and firewall drops.
type PortScan struct {
	Switch
	Severity incident.Severity `json:"severity"` // default low
	// Ports: capacity 14 leaking one per 5 s: the 15th distinct port fires.
	// Many hits on one port are one value, never a scan.
	Ports Bucket `json:"ports"`
}

// defaultPortScan returns the defaults of port_scan.
func defaultPortScan() PortScan {
	return PortScan{
		Severity: incident.Low,
		Ports:    Bucket{Capacity: 14, Leak: Duration(5 * time.Second)},
	}
}

// portScanDetector is the table row of port_scan (detectors.go).
func portScanDetector() registration {
	return registration{
		name:     "port_scan",
		kinds:    []string{event.KindProbe, event.KindAccept, event.KindFWDrop},
		section:  func(c *Config) *Switch { return &c.PortScan.Switch },
		severity: func(c *Config) incident.Severity { return c.PortScan.Severity },
		buckets:  func(c *Config) map[string]Bucket { return map[string]Bucket{"ports": c.PortScan.Ports} },
		build:    func(e *Engine) detector { return newPortScan(e) },
	}
}

// portScan raises "port_scan" (low) when one address touches many distinct
// destination ports: eBPF probe events (a reset sent for a closed port),
// accept events and firewall drops. The 15th distinct port within a bucket
// leaking one per 5 s fires; hits on a port already seen add nothing, so
// many connections to one service are never a scan.
type portScan struct {
	cfg PortScan
	t   *tracker[scanState]
}

type scanState struct {
	ports bucket
	seen  distinct
	n     int   // events since the bucket started
	pre   []int // ports before the incident opened
	ep    *episode
}

func newPortScan(e *Engine) *portScan {
	d := &portScan{cfg: e.cfg.PortScan}
	d.t = newTracker(e, func(s *scanState) int64 {
		exp := s.ports.drainedAt(d.cfg.Ports)
		if s.ep != nil {
			exp = max(exp, s.ep.last+int64(e.cfg.Cooldown))
		}
		return exp
	})
	return d
}

func (d *portScan) sweep(now int64) { d.t.sweep(now) }
func (d *portScan) keys() int       { return d.t.keys() }

func (d *portScan) handle(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	switch ev.Kind {
	case event.KindProbe, event.KindAccept, event.KindFWDrop:
	default:
		return out
	}
	if ev.DstPort == 0 || !e.reportable(ev.SrcIP) {
		return out
	}
	st := d.t.get(ev.SrcIP, now)
	if st.ep != nil && e.over(st.ep, now) {
		st.ep = nil
	}
	if st.ep == nil && st.ports.empty(now, d.cfg.Ports) {
		st.seen.reset()
		st.n = 0
		st.pre = st.pre[:0]
	}
	st.n++
	fired := false
	if st.seen.add(uint64(ev.DstPort), max(64, 3*d.cfg.Ports.threshold())) {
		fired = st.ports.add(now, d.cfg.Ports)
		if st.ep == nil && len(st.pre) < incident.MaxList {
			st.pre = append(st.pre, int(ev.DstPort))
		}
	}
	if st.ep != nil {
		st.ep.count++
		addInt(&st.ep.inc.Evidence.Ports, int(ev.DstPort))
		return e.publish(st.ep, now, st.ep.severity(st.seen.len()), out)
	}
	if !fired {
		return out
	}
	ep := e.open("port_scan", ev.SrcIP.String(), d.cfg.Severity, d.cfg.Ports.threshold(), st.ports.since, now, st.n)
	for _, p := range st.pre {
		addInt(&ep.inc.Evidence.Ports, p)
	}
	st.pre, st.ep = nil, ep
	ep.inc.Title = "Port scan"
	ep.render = func() {
		ep.inc.Summary = plural(st.seen.len(), false, "distinct port") + " probed (" + strconv.Itoa(ep.count) +
			" packets) in " + span(ep.first, ep.last)
	}
	return e.publish(ep, now, ep.severity(st.seen.len()), out)
}
