package detect

import (
	"net/netip"
	"strconv"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

// C2Connect raises a critical incident when a process connects to an
// address on a loaded threat list (through the ThreatLists option).
type C2Connect struct {
	Switch
	Severity incident.Severity `json:"severity"` // default critical
}

// defaultC2Connect returns the defaults of c2_connect.
func defaultC2Connect() C2Connect { return C2Connect{Severity: incident.Critical} }

// c2ConnectDetector is the table row of c2_connect (detectors.go).
func c2ConnectDetector() registration {
	return registration{
		name:     "c2_connect",
		kinds:    []string{event.KindConnect},
		section:  func(c *Config) *Switch { return &c.C2Connect.Switch },
		severity: func(c *Config) incident.Severity { return c.C2Connect.Severity },
		build:    func(e *Engine) detector { return newC2Connect(e) },
	}
}

// c2Connect raises "c2_connect" (critical) when a local process connects
// to an address on a loaded threat list. The incident's ip is the listed
// remote address; evidence names the process, destination and lists.
type c2Connect struct {
	cfg C2Connect
	t   *tracker[c2State]
}

type c2State struct {
	ep *episode
}

func newC2Connect(e *Engine) *c2Connect {
	d := &c2Connect{cfg: e.cfg.C2Connect}
	d.t = newTracker(e, func(s *c2State) int64 {
		return e.keepUntil(0, s.ep)
	})
	return d
}

func (d *c2Connect) sweep(now int64) { d.t.sweep(now) }
func (d *c2Connect) keys() int       { return d.t.keys() }

func (d *c2Connect) handle(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	if ev.Kind != event.KindConnect || e.lists == nil || !e.reportable(ev.DstIP) {
		return out
	}
	lists := e.lists.Match(ev.DstIP)
	if len(lists) == 0 {
		return out
	}
	st := d.t.get(ev.DstIP, now)
	if st.ep != nil && e.over(st.ep, now) {
		st.ep = nil
	}
	if st.ep == nil {
		st.ep = e.open("c2_connect", ev.DstIP.String(), d.cfg.Severity, 0, now, now, 0)
		st.ep.inc.Title = "Connection to a listed C2 address"
	}
	ep := st.ep
	ep.count++
	evd := ep.inc.Evidence
	dst := netip.AddrPortFrom(ev.DstIP, ev.DstPort).String()
	if evd.Dst == "" {
		evd.Dst = dst
		evd.Comm = incident.CleanText(ev.Comm, incident.MaxEvidenceString)
		for i, a := range ev.Argv {
			if i >= incident.MaxList {
				break
			}
			evd.Argv = append(evd.Argv, incident.CleanText(a, incident.MaxEvidenceString))
		}
		if ev.ParentComm != "" {
			evd.Parent = incident.CleanText(ev.ParentComm, incident.MaxEvidenceString)
		}
	}
	for _, l := range lists {
		addText(&evd.Lists, l)
	}
	if ev.DstPort != 0 {
		addInt(&evd.Ports, int(ev.DstPort))
	}
	who := evd.Comm
	if who == "" {
		who = "a process"
	}
	if ev.PID != 0 {
		who += " (pid " + strconv.FormatUint(uint64(ev.PID), 10) + ")"
	}
	ep.inc.Summary = incident.CleanText(who+" connected to "+evd.Dst+", listed on "+joinCapped(evd.Lists, 4)+
		"; "+plural(ep.count, false, "connection"), incident.MaxSummary)
	return e.publish(ep, now, d.cfg.Severity, out)
}

func joinCapped(list []string, n int) string {
	s := ""
	for i, v := range list {
		if i == n {
			return s + " and " + strconv.Itoa(len(list)-n) + " more"
		}
		if i > 0 {
			s += ", "
		}
		s += v
	}
	return s
}
