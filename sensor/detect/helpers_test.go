package detect

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

var t0 = time.Date(2026, 3, 22, 14, 31, 2, 0, time.UTC)

const attacker = "185.220.101.34"

func at(d time.Duration) time.Time { return t0.Add(d) }

func sshFail(ip string, ts time.Time, user string, port uint16, detail string) event.Event {
	return event.Event{TS: ts, Kind: event.KindSSHFailed, Source: event.SourceAuthLog,
		SrcIP: netip.MustParseAddr(ip), SrcPort: port, User: user, Detail: detail}
}

func failedPw(ip string, ts time.Time, user string) event.Event {
	return sshFail(ip, ts, user, 40000, logparse.DetailFailedPassword)
}

func httpReq(ip string, ts time.Time, method, path string, status int, ua string) event.Event {
	ev := event.Event{TS: ts, Kind: event.KindHTTPRequest, Source: event.SourceAccessLog,
		SrcIP: netip.MustParseAddr(ip), Method: method, Status: status, UA: ua}
	ev.Path, ev.Query, _ = strings.Cut(path, "?")
	if logparse.IsStatic(ev.Path) {
		ev.Detail = logparse.DetailStatic
	}
	return ev
}

// feed runs events through e and returns every incident, each checked
// against incident.Validate.
func feed(t *testing.T, e *Engine, evs ...event.Event) []incident.Incident {
	t.Helper()
	var all []incident.Incident
	for _, ev := range evs {
		all = append(all, e.Handle(ev)...)
	}
	for _, in := range all {
		if err := in.Validate(); err != nil {
			t.Fatalf("incident %s does not validate: %v", in.ID, err)
		}
	}
	return all
}

func bySource(ins []incident.Incident, src string) []incident.Incident {
	var out []incident.Incident
	for _, in := range ins {
		if in.Source == src {
			out = append(out, in)
		}
	}
	return out
}

func last(t *testing.T, ins []incident.Incident) incident.Incident {
	t.Helper()
	if len(ins) == 0 {
		t.Fatal("no incident")
	}
	return ins[len(ins)-1]
}

// every returns a config that publishes every update, so tests see each.
func every() Config {
	c := DefaultConfig()
	c.UpdateInterval = 0
	return c
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
