package detect

import (
	"net/netip"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

// prefixLists is a minimal ThreatLists: named networks.
type prefixLists map[string][]netip.Prefix

func (l prefixLists) Match(a netip.Addr) []string {
	var out []string
	for name, ps := range l {
		for _, p := range ps {
			if p.Contains(a) {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

func connect(dst string, port uint16, ts time.Time) event.Event {
	return event.Event{TS: ts, Kind: event.KindConnect, Source: event.SourceEBPF, PID: 4242, Comm: "kworkerds",
		Argv: []string{"/tmp/.x/kworkerds", "-o", "pool"}, DstIP: mustAddr(dst), DstPort: port}
}

func TestC2ConnectRaisesCriticalForAListedAddress(t *testing.T) {
	lists := prefixLists{"feodo": {netip.MustParsePrefix("45.9.148.0/24")}}
	e := New(every(), WithThreatLists(lists))
	got := feed(t, e, connect("45.9.148.7", 443, t0), connect("45.9.148.7", 443, at(time.Second)))
	if len(got) != 2 || got[0].ID != got[1].ID {
		t.Fatalf("got %+v", got)
	}
	in := got[1]
	if in.Source != "c2_connect" || in.Severity != incident.Critical || in.IP != "45.9.148.7" ||
		in.Evidence.Dst != "45.9.148.7:443" || in.Evidence.Comm != "kworkerds" || in.Evidence.Lists[0] != "feodo" || in.Count != 2 {
		t.Fatalf("got %+v %+v", in, in.Evidence)
	}
}

func TestC2ConnectIgnoresUnlistedAddressesAndNoLists(t *testing.T) {
	lists := prefixLists{"feodo": {netip.MustParsePrefix("45.9.148.0/24")}}
	if got := feed(t, New(every(), WithThreatLists(lists)), connect("1.1.1.1", 443, t0)); len(got) != 0 {
		t.Fatalf("unlisted address raised %+v", got)
	}
	if got := feed(t, New(every()), connect("45.9.148.7", 443, t0)); len(got) != 0 {
		t.Fatalf("raised without lists: %+v", got)
	}
}
