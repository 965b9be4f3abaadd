package logparse

import (
	"strings"

	"github.com/attackmap/attackmap/sensor/event"
)

// Firewall parses the kernel's netfilter log lines (iptables LOG, nftables
// log, UFW), e.g.
//
//	Mar 22 14:32:01 web-1 kernel: [ 1234.567890] [UFW BLOCK] IN=eth0 OUT= MAC=... SRC=185.220.101.34 DST=10.0.0.5 LEN=44 ... PROTO=TCP SPT=41337 DPT=23 ...
//
// into fw_drop events. Only kernel lines count (program "kernel", or a
// journal entry of the kernel transport), so that text inside another
// program's message (an sshd username, say) cannot fake a drop. Lines whose
// log prefix says ALLOW, ACCEPT or AUDIT are not drops and are ignored.
type Firewall struct {
	st stamper
}

// NewFirewall returns a firewall log parser (source event.SourceFirewallLog).
func NewFirewall(o Options) *Firewall { return &Firewall{st: newStamper(o)} }

// Line parses a syslog line from kern.log, syslog or messages.
func (p *Firewall) Line(line string) (event.Event, bool) {
	h, ok := p.st.ParseHeader(line)
	if !ok {
		return event.Event{}, false
	}
	return p.Message(h)
}

// Message parses a kernel message. h.Prog must be "kernel"; the journal
// reader sets that for entries of the kernel transport.
func (p *Firewall) Message(h Header) (event.Event, bool) {
	if h.Prog != "kernel" {
		return event.Event{}, false
	}
	msg := h.Msg
	in := strings.Index(msg, "IN=")
	if in < 0 {
		return event.Event{}, false
	}
	prefix := msg[:in]
	if containsFold(prefix, "ALLOW") || containsFold(prefix, "ACCEPT") || containsFold(prefix, "AUDIT") {
		return event.Event{}, false
	}
	ev := event.Event{TS: h.TS, Kind: event.KindFWDrop, Source: event.SourceFirewallLog}
	if h.Source != "" {
		ev.Source = h.Source
	}
	if ev.TS.IsZero() {
		ev.TS = p.st.opts.Now().UTC()
	}
	rest := msg[in:]
	for rest != "" {
		var f string
		f, rest, _ = strings.Cut(rest, " ")
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "SRC":
			if a, ok := parseAddr(v); ok && !ev.SrcIP.IsValid() {
				ev.SrcIP = a
			}
		case "DST":
			if a, ok := parseAddr(v); ok && !ev.DstIP.IsValid() {
				ev.DstIP = a
			}
		case "PROTO":
			if ev.Proto == "" {
				ev.Proto = protoName(v)
			}
		case "SPT":
			if p := atoi(v); p > 0 && p <= 65535 && ev.SrcPort == 0 {
				ev.SrcPort = uint16(p)
			}
		case "DPT":
			if p := atoi(v); p > 0 && p <= 65535 && ev.DstPort == 0 {
				ev.DstPort = uint16(p)
			}
		}
		if ev.DstPort != 0 && ev.SrcPort != 0 && ev.Proto != "" {
			// The rest (WINDOW, flags, an ICMP error's inner
			// packet) says nothing more.
			break
		}
	}
	if !ev.SrcIP.IsValid() || ev.Proto == "" {
		return event.Event{}, false
	}
	return ev, true
}

func protoName(v string) string {
	switch v {
	case "TCP":
		return "tcp"
	case "UDP":
		return "udp"
	case "ICMP":
		return "icmp"
	case "ICMPv6":
		return "icmpv6"
	case "UDPLITE":
		return "udplite"
	case "SCTP":
		return "sctp"
	}
	if len(v) > 0 && len(v) <= 3 && allDigits(v) {
		return v // protocol number
	}
	return "other"
}

// containsFold reports whether s contains the upper-case ASCII word w,
// ignoring case.
func containsFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		j := 0
		for j < len(w) {
			c := s[i+j]
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			if c != w[j] {
				break
			}
			j++
		}
		if j == len(w) {
			return true
		}
	}
	return false
}
