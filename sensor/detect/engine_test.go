package detect

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/sensor/event"
)

func TestEngineStateStaysUnderTheCap(t *testing.T) {
	c := DefaultConfig()
	c.MaxKeys = 1000
	e := New(c)
	var b [4]byte
	for i := range 50_000 {
		binary.BigEndian.PutUint32(b[:], uint32(0x2d000000+i)) // 45.0.0.0 upwards
		ip := netip.AddrFrom4(b)
		// All within one second: nothing expires, so eviction must.
		e.Handle(sshFail(ip.String(), at(time.Duration(i)*time.Microsecond), "root", 1, "failed_password"))
		if i%997 == 0 {
			for _, d := range e.detectors {
				if d.keys() > c.MaxKeys {
					t.Fatalf("after %d addresses a detector holds %d keys, cap %d", i+1, d.keys(), c.MaxKeys)
				}
			}
		}
	}
	if e.Stats().Evicted == 0 {
		t.Fatal("no eviction counted")
	}
}

func TestEngineEvictsIdleKeys(t *testing.T) {
	e := New(DefaultConfig())
	for i := range 100 {
		ip := netip.AddrFrom4([4]byte{45, 0, 1, byte(i)})
		e.Handle(sshFail(ip.String(), at(0), "root", 1, "failed_password"))
	}
	if k := e.Stats().Keys; k < 100 {
		t.Fatalf("tracking %d keys, want at least 100", k)
	}
	// An hour of event time later every bucket has drained. (The log
	// resumes after a gap: its second line confirms the jump, clock.go.)
	e.Handle(sshFail(attacker, at(time.Hour), "root", 1, "failed_password"))
	e.Handle(sshFail(attacker, at(time.Hour+time.Second), "root", 1, "failed_password"))
	if k := e.Stats().Keys; k > 2 {
		t.Fatalf("still tracking %d keys an hour later", k)
	}
}

func TestEngineIgnoresEventsWithoutTime(t *testing.T) {
	e := New(every())
	for range 20 {
		if got := e.Handle(event.Event{Kind: event.KindSSHFailed, SrcIP: mustAddr(attacker), User: "root"}); got != nil {
			t.Fatal("raised from events without time")
		}
	}
}

func TestEngineIsDeterministic(t *testing.T) {
	run := func() string {
		e := New(DefaultConfig())
		var sb strings.Builder
		for i := range 200 {
			ts := at(time.Duration(i) * 700 * time.Millisecond)
			for _, in := range e.Handle(failedPw(attacker, ts, "u"+string(rune('a'+i%7)))) {
				sb.WriteString(in.ID + in.Summary + string(in.Severity) + "\n")
			}
			for _, in := range e.Handle(httpReq("45.1.2.3", ts, "GET", "/x"+string(rune('a'+i%26)), 404, "")) {
				sb.WriteString(in.ID + in.Summary + string(in.Severity) + "\n")
			}
		}
		for _, in := range e.Flush() {
			sb.WriteString(in.ID + in.Summary + "\n")
		}
		return sb.String()
	}
	a, b := run(), run()
	if a != b || a == "" {
		t.Fatalf("replays differ or are empty:\n%s\n---\n%s", a, b)
	}
}

func TestDecodeConfig(t *testing.T) {
	cases := []struct {
		name, json, err string
		check           func(Config) bool
	}{
		{"detect section alone", `{"include_private":true,"ssh_bruteforce":{"fast":{"capacity":3}}}`, "",
			func(c Config) bool {
				return c.IncludePrivate && c.SSHBruteforce.Fast.Capacity == 3 && c.SSHBruteforce.Fast.Leak == Duration(10*time.Second)
			}},
		{"sensor config with section", `{"data":"/var/lib/attackmap","detect":{"cooldown":"5m","allow":["10.0.0.0/8"]}}`, "",
			func(c Config) bool { return c.Cooldown == Duration(5*time.Minute) && len(c.Allow) == 1 }},
		{"sensor config without section", `{"data":"/var/lib/attackmap"}`, "",
			func(c Config) bool { return c.MaxKeys == 100_000 }},
		{"seconds as number", `{"cooldown":90}`, "", func(c Config) bool { return c.Cooldown == Duration(90*time.Second) }},
		{"unknown field", `{"cooldown":"5m","cooldwn":"1m"}`, `unknown field "cooldwn"`, nil},
		{"bad duration", `{"cooldown":"soon"}`, `"soon" is not a duration`, nil},
		{"bad allow", `{"allow":["example.com"]}`, `allow: "example.com" is not an address`, nil},
		{"bad severity", `{"port_scan":{"severity":"hgih"}}`, `port_scan.severity: unknown value "hgih"`, nil},
		{"not json", `{`, "malformed JSON", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := DecodeConfig([]byte(c.json))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err %v, want one line containing %q", err, c.err)
				}
				return
			}
			if err != nil || !c.check(cfg) {
				t.Fatalf("err %v cfg %+v", err, cfg)
			}
		})
	}
}
