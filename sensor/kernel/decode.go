package kernel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

// Record kinds (enum ev_kind in collector.bpf.c).
const (
	evExec    = 1
	evOpen    = 2
	evConnect = 3
	evAccept  = 4
	evProbe   = 5
)

// IP protocol numbers in struct net_event's proto.
const (
	ipprotoTCP = 6
	ipprotoUDP = 17
)

// Record flags.
const (
	flagArgsTruncated = 1
	flagWrite         = 2
)

// Record sizes and field offsets, from the C structs. layout_linux_test.go
// checks them against the bpf2go-generated Go types.
const (
	netEventSize  = 72
	execEventSize = 1336
	openEventSize = 296

	offKind = 8 // every record: __u64 ts_ns, then __u8 kind

	// struct net_event
	netIPVer = 9
	netLPort = 10
	netRPort = 12
	netProto = 14
	netPID   = 16
	netUID   = 20
	netLAddr = 24
	netRAddr = 40
	netComm  = 56

	// struct exec_event
	execFlags   = 9
	execArgsLen = 10
	execPID     = 12
	execPPID    = 16
	execUID     = 20
	execComm    = 24
	execPComm   = 40
	execPath    = 56
	execArgs    = 312
	execArgsMax = 1024

	// struct open_event
	openFlags = 9
	openPID   = 12
	openUID   = 20
	openComm  = 24
	openPath  = 40
	pathMax   = 256
)

// Caps on decoded strings, after escaping (CleanText may quadruple a byte).
const (
	maxCommText = 64   // 15 raw bytes, escaped
	maxPathText = 1024 // 255 raw bytes, escaped
	maxArgText  = 1024 // one argument
	maxArgs     = 64   // argv entries kept; the rest of a long argv is cut
)

// lane says which channel an event travels in.
type lane int

const (
	laneNet lane = iota
	laneProc
)

// decoder turns ring-buffer records into events. bootOffset converts the
// records' CLOCK_BOOTTIME stamps into wall-clock time.
type decoder struct {
	bootOffset func() int64 // wall-clock ns minus CLOCK_BOOTTIME ns
}

// decode parses one record. Records come from our own programs, but the
// decoder still treats them as untrusted bytes: every length is checked and
// every string is made valid, escaped UTF-8 and capped.
func (d decoder) decode(rec []byte) (event.Event, lane, error) {
	if len(rec) <= offKind {
		return event.Event{}, 0, fmt.Errorf("kernel: record of %d bytes is too short", len(rec))
	}
	le := binary.LittleEndian
	ev := event.Event{
		TS:     time.Unix(0, int64(le.Uint64(rec))+d.bootOffset()).UTC(),
		Source: event.SourceEBPF,
	}
	switch kind := rec[offKind]; kind {
	case evConnect, evAccept, evProbe:
		if len(rec) < netEventSize {
			return event.Event{}, 0, fmt.Errorf("kernel: network record of %d bytes, want %d", len(rec), netEventSize)
		}
		laddr, ok1 := ipAddr(rec[netIPVer], rec[netLAddr:netLAddr+16])
		raddr, ok2 := ipAddr(rec[netIPVer], rec[netRAddr:netRAddr+16])
		if !ok1 || !ok2 {
			return event.Event{}, 0, fmt.Errorf("kernel: network record with IP version %d", rec[netIPVer])
		}
		lport, rport := le.Uint16(rec[netLPort:]), le.Uint16(rec[netRPort:])
		switch p := rec[netProto]; {
		case p == ipprotoTCP:
			ev.Proto = "tcp"
		case p == ipprotoUDP && kind == evProbe:
			ev.Proto = "udp"
		default:
			return event.Event{}, 0, fmt.Errorf("kernel: network record of kind %d with protocol %d", kind, p)
		}
		if kind == evConnect {
			ev.Kind = event.KindConnect
			ev.PID = le.Uint32(rec[netPID:])
			ev.UID = ptr(le.Uint32(rec[netUID:]))
			ev.Comm = cText(rec[netComm:netComm+commLen], maxCommText)
			ev.SrcIP, ev.SrcPort, ev.DstIP, ev.DstPort = laddr, lport, raddr, rport
		} else {
			// accept and probe: the remote side is the one that came to us.
			ev.Kind = event.KindAccept
			if kind == evProbe {
				ev.Kind = event.KindProbe
			}
			ev.SrcIP, ev.SrcPort, ev.DstIP, ev.DstPort = raddr, rport, laddr, lport
		}
		return ev, laneNet, nil
	case evExec:
		if len(rec) < execEventSize {
			return event.Event{}, 0, fmt.Errorf("kernel: exec record of %d bytes, want %d", len(rec), execEventSize)
		}
		ev.Kind = event.KindExec
		ev.PID = le.Uint32(rec[execPID:])
		ev.PPID = le.Uint32(rec[execPPID:])
		ev.UID = ptr(le.Uint32(rec[execUID:]))
		ev.Comm = cText(rec[execComm:execComm+commLen], maxCommText)
		ev.ParentComm = cText(rec[execPComm:execPComm+commLen], maxCommText)
		ev.Path = cText(rec[execPath:execPath+pathMax], maxPathText)
		n := min(int(le.Uint16(rec[execArgsLen:])), execArgsMax)
		ev.Argv = splitArgs(rec[execArgs:execArgs+n], rec[execFlags]&flagArgsTruncated != 0)
		return ev, laneProc, nil
	case evOpen:
		if len(rec) < openEventSize {
			return event.Event{}, 0, fmt.Errorf("kernel: open record of %d bytes, want %d", len(rec), openEventSize)
		}
		ev.Kind = event.KindOpen
		ev.PID = le.Uint32(rec[openPID:])
		ev.UID = ptr(le.Uint32(rec[openUID:]))
		ev.Comm = cText(rec[openComm:openComm+commLen], maxCommText)
		ev.Path = cText(rec[openPath:openPath+pathMax], maxPathText)
		ev.Detail = "read"
		if rec[openFlags]&flagWrite != 0 {
			ev.Detail = "write"
		}
		return ev, laneProc, nil
	default:
		return event.Event{}, 0, fmt.Errorf("kernel: record of unknown kind %d", kind)
	}
}

func ptr[T any](v T) *T { return &v }

// ipAddr reads a 4- or 16-byte address; IPv4-mapped IPv6 addresses (an
// IPv6 socket talking IPv4) are reported as IPv4.
func ipAddr(ver byte, b []byte) (netip.Addr, bool) {
	switch ver {
	case 4:
		return netip.AddrFrom4([4]byte(b[:4])), true
	case 6:
		return netip.AddrFrom16([16]byte(b[:16])).Unmap(), true
	}
	return netip.Addr{}, false
}

// cText returns the NUL-terminated string at the start of b, cleaned.
func cText(b []byte, max int) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return incident.CleanText(string(b), max)
}

// splitArgs splits the NUL-separated argv area. When the kernel cut it, the
// last argument is partial and gets an ellipsis.
func splitArgs(b []byte, truncated bool) []string {
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	if len(parts) > maxArgs {
		parts, truncated = parts[:maxArgs], true
	}
	argv := make([]string, len(parts))
	for i, p := range parts {
		argv[i] = incident.CleanText(string(p), maxArgText)
	}
	if truncated {
		argv[len(argv)-1] += "…"
	}
	return argv
}
