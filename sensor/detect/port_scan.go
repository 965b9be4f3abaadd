package detect

import (
	"strconv"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

// PortScan counts distinct destination ports per source from eBPF probe and
// accept events and firewall drops. A port is a (transport, number) pair:
// UDP 53 and TCP 53 are two ports.
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
// destination ports: eBPF probe events (a TCP reset or an ICMP port
// unreachable sent for a closed port), accept events and firewall drops.
// The 15th distinct (transport, port) pair within a bucket leaking one per
// 5 s fires; hits on a port already seen add nothing, so many connections
// to one service are never a scan. The title is "UDP port scan" while every
// port probed was UDP (nmap -sU), "Port scan" otherwise; the summary counts
// the ports by transport.
//
// A UDP datagram from a well-known port (below 1024) to an ephemeral port
// (32768 and up) is not counted: that is a server's late answer (DNS, NTP)
// to a client socket that has already closed, which draws a port
// unreachable too, and a resolver under load sends many of them to as many
// ports. A scanner that picks a well-known source port (nmap -g 53) is
// still counted on the ports below 32768, where the common services are.
type portScan struct {
	cfg PortScan
	t   *tracker[scanState]
}

type scanState struct {
	ports bucket
	seen  distinct // scanKey of each distinct (transport, port)
	n     int      // events since the bucket started
	pre   []int    // ports before the incident opened
	ep    *episode
}

func newPortScan(e *Engine) *portScan {
	d := &portScan{cfg: e.cfg.PortScan}
	d.t = newTracker(e, func(s *scanState) int64 {
		return e.keepUntil(s.ports.drainedAt(d.cfg.Ports), s.ep)
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
	if ev.DstPort == 0 || lateReply(ev) || !e.reportable(ev.SrcIP) {
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
	if st.seen.add(scanKey(ev.Proto, ev.DstPort), d.seenCap()) {
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
	ep.render = func() { d.render(st, ep) }
	return e.publish(ep, now, ep.severity(st.seen.len()), out)
}

// seenCap bounds the distinct ports remembered per source: three times
// the threshold reaches the top severity; beyond that a longer list only
// costs memory and the summary says "64+".
func (d *portScan) seenCap() int { return max(64, 3*d.cfg.Ports.threshold()) }

// Transport classes in a scanKey, above the 16 bits of the port.
const (
	scanUnknown = iota // no transport given
	scanTCP
	scanUDP
	scanOther // sctp, udplite, ...: counted, not named
	scanClasses
)

var scanClassNames = [scanClasses]string{"unknown", "tcp", "udp", "other"}

// scanKey is the distinct-set key of a (transport, port) pair.
func scanKey(proto string, port uint16) uint64 {
	c := scanOther
	switch proto {
	case "":
		c = scanUnknown
	case "tcp":
		c = scanTCP
	case "udp":
		c = scanUDP
	}
	return uint64(c)<<16 | uint64(port)
}

// lateReply reports a UDP datagram from a well-known port to an ephemeral
// one (see portScan). 32768 is the start of Linux's default ephemeral
// range (net.ipv4.ip_local_port_range); the 49152 and up that other
// systems use lies inside it.
func lateReply(ev *event.Event) bool {
	return ev.Proto == "udp" && ev.SrcPort != 0 && ev.SrcPort < 1024 && ev.DstPort >= 32768
}

// render fills in the title and the summary: "15 distinct udp ports
// probed (15 packets) in 3 s", or with several transports "30 distinct
// ports probed: 20 tcp, 10 udp (32 packets) in 5 s". It runs only when a
// copy of the incident is returned.
func (d *portScan) render(st *scanState, ep *episode) {
	var n [scanClasses]int
	classes := 0
	for _, k := range st.seen.h {
		if n[k>>16] == 0 {
			classes++
		}
		n[k>>16]++
	}
	total := st.seen.len()
	word, split := "distinct port", ""
	switch {
	case classes == 1 && (n[scanTCP] == total || n[scanUDP] == total):
		word = "distinct " + scanClassNames[st.seen.h[0]>>16] + " port"
	case classes > 1:
		for c, name := range scanClassNames {
			if n[c] == 0 {
				continue
			}
			if split == "" {
				split = ": "
			} else {
				split += ", "
			}
			split += strconv.Itoa(n[c]) + " " + name
		}
	}
	ep.inc.Title = "Port scan"
	if total > 0 && n[scanUDP] == total {
		ep.inc.Title = "UDP port scan"
	}
	ep.inc.Summary = plural(total, total >= d.seenCap(), word) + " probed" + split + " (" + strconv.Itoa(ep.count) +
		" packets) in " + span(ep.first, ep.last)
}
