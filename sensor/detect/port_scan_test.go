package detect

import (
	"slices"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

func probe(ip string, ts time.Time, kind string, port uint16) event.Event {
	return event.Event{TS: ts, Kind: kind, Source: event.SourceEBPF, SrcIP: mustAddr(ip), DstPort: port, Proto: "tcp"}
}

// udpProbe is what the kernel collector reports for a port unreachable
// sent to ip's datagram from srcPort to port.
func udpProbe(ip string, ts time.Time, srcPort, port uint16) event.Event {
	return event.Event{TS: ts, Kind: event.KindProbe, Source: event.SourceEBPF, SrcIP: mustAddr(ip), SrcPort: srcPort,
		DstIP: mustAddr("203.0.113.5"), DstPort: port, Proto: "udp"}
}

func TestPortScanRaisesAtTheFifteenthDistinctPort(t *testing.T) {
	e := New(every())
	kinds := []string{event.KindProbe, event.KindFWDrop, event.KindAccept}
	for i := range 15 {
		got := feed(t, e, probe(attacker, at(time.Duration(i)*100*time.Millisecond), kinds[i%3], uint16(20+i)))
		if i < 14 && len(got) != 0 {
			t.Fatalf("raised at port %d", i+1)
		}
		if i == 14 {
			if len(got) != 1 || got[0].Source != "port_scan" || got[0].Severity != incident.Low || len(got[0].Evidence.Ports) != 15 {
				t.Fatalf("15th port: %+v", got)
			}
		}
	}
}

func TestPortScanIgnoresManyHitsOnOnePort(t *testing.T) {
	e := New(every())
	for i := range 500 {
		if got := feed(t, e, probe(attacker, at(time.Duration(i)*10*time.Millisecond), event.KindFWDrop, 23)); len(got) != 0 {
			t.Fatal("one port raised a scan")
		}
	}
}

func TestPortScanIgnoresASlowTrickle(t *testing.T) {
	e := New(every())
	for i := range 100 {
		if got := feed(t, e, probe(attacker, at(time.Duration(i)*6*time.Second), event.KindProbe, uint16(1000+i))); len(got) != 0 {
			t.Fatal("one port every 6 s raised a scan")
		}
	}
}

func TestPortScanEscalatesWithDistinctPorts(t *testing.T) {
	e := New(every())
	var got []incident.Incident
	for i := range 45 {
		got = append(got, feed(t, e, probe(attacker, at(time.Duration(i)*10*time.Millisecond), event.KindProbe, uint16(1+i)))...)
	}
	if l := last(t, got); l.Severity != incident.High || l.Summary != "45 distinct tcp ports probed (45 packets) in under a second" {
		t.Fatalf("got %s %q", l.Severity, l.Summary)
	}
}

func TestPortScanCountsUDPProbes(t *testing.T) {
	e := New(every())
	var got []incident.Incident
	for i := range 15 {
		got = append(got, feed(t, e, udpProbe(attacker, at(time.Duration(i)*100*time.Millisecond), 51234, uint16(1000+i)))...)
	}
	if len(got) != 1 {
		t.Fatalf("%d incidents after 15 UDP ports, want 1", len(got))
	}
	in := got[0]
	if in.Source != "port_scan" || in.Title != "UDP port scan" || len(in.Evidence.Ports) != 15 ||
		in.Summary != "15 distinct udp ports probed (15 packets) in 1 s" {
		t.Errorf("got %q %q %v", in.Title, in.Summary, in.Evidence.Ports)
	}
}

func TestPortScanCountsOnePortNumberOnTCPAndUDPTwice(t *testing.T) {
	e := New(every())
	var got []incident.Incident
	// Eight port numbers, each probed over TCP and over UDP (nmap -sS -sU):
	// sixteen distinct ports, so the 15th fires.
	for i := range 16 {
		ev := probe(attacker, at(time.Duration(i)*100*time.Millisecond), event.KindProbe, uint16(50+i/2))
		if i%2 == 1 {
			ev = udpProbe(attacker, ev.TS, 40000, ev.DstPort)
		}
		got = append(got, feed(t, e, ev)...)
		if i < 14 && len(got) != 0 {
			t.Fatalf("raised at the %d. distinct port", i+1)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d incidents, want the first and one update", len(got))
	}
	in := last(t, got)
	if in.Title != "Port scan" || in.Summary != "16 distinct ports probed: 8 tcp, 8 udp (16 packets) in 2 s" {
		t.Errorf("got %q %q", in.Title, in.Summary)
	}
	if want := []int{50, 51, 52, 53, 54, 55, 56, 57}; !slices.Equal(in.Evidence.Ports, want) {
		t.Errorf("evidence ports %v, want %v (each number once)", in.Evidence.Ports, want)
	}
}

func TestPortScanTitle(t *testing.T) {
	for _, c := range []struct {
		name  string
		proto func(i int) string
		title string
	}{
		{"all UDP", func(int) string { return "udp" }, "UDP port scan"},
		{"all TCP", func(int) string { return "tcp" }, "Port scan"},
		{"UDP then one TCP port", func(i int) string {
			if i == 19 {
				return "tcp"
			}
			return "udp"
		}, "Port scan"},
		{"transport unknown", func(int) string { return "" }, "Port scan"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := New(every())
			var got []incident.Incident
			for i := range 20 {
				ev := probe(attacker, at(time.Duration(i)*100*time.Millisecond), event.KindFWDrop, uint16(100+i))
				ev.Proto, ev.SrcPort = c.proto(i), 40000
				got = append(got, feed(t, e, ev)...)
			}
			if l := last(t, got); l.Title != c.title {
				t.Errorf("title %q, want %q (%s)", l.Title, c.title, l.Summary)
			}
		})
	}
}

func TestPortScanIgnoresLateUDPReplies(t *testing.T) {
	// A resolver's answers arriving after the asking sockets closed: from
	// port 53 to as many ephemeral ports, each drawing a port unreachable.
	e := New(every())
	for i := range 100 {
		if got := feed(t, e, udpProbe("8.8.8.8", at(time.Duration(i)*10*time.Millisecond), 53, uint16(33000+i*97))); len(got) != 0 {
			t.Fatalf("late DNS answers raised %q", got[0].Summary)
		}
	}
	// The same scanner source port on the well-known ports still counts.
	var got []incident.Incident
	for i := range 15 {
		got = append(got, feed(t, e, udpProbe(attacker, at(2*time.Second+time.Duration(i)*10*time.Millisecond), 53, uint16(100+i)))...)
	}
	if len(got) != 1 || got[0].Title != "UDP port scan" {
		t.Fatalf("nmap -g 53 on low ports: %+v", got)
	}
}

func TestPortScanSummarySaysWhenTheCountIsALowerBound(t *testing.T) {
	e := New(every())
	var got []incident.Incident
	for i := range 100 {
		got = append(got, feed(t, e, probe(attacker, at(time.Duration(i)*10*time.Millisecond), event.KindProbe, uint16(1+i)))...)
	}
	if l := last(t, got); l.Summary != "64+ distinct tcp ports probed (100 packets) in under a second" {
		t.Errorf("summary %q", l.Summary)
	}
}
