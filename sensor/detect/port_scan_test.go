package detect

import (
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

func probe(ip string, ts time.Time, kind string, port uint16) event.Event {
	return event.Event{TS: ts, Kind: kind, Source: event.SourceEBPF, SrcIP: mustAddr(ip), DstPort: port, Proto: "tcp"}
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
	if l := last(t, got); l.Severity != incident.High || l.Summary != "45 distinct ports probed (45 packets) in under a second" {
		t.Fatalf("got %s %q", l.Severity, l.Summary)
	}
}
