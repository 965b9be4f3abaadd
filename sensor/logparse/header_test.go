package logparse

import (
	"net/netip"
	"testing"
	"time"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestYearlessStampsAcrossNewYear(t *testing.T) {
	st := newStamper(Options{Year: 2025, Location: time.UTC})
	lines := []struct {
		line string
		want string
	}{
		{"Dec 31 23:59:58 h sshd[1]: x", "2025-12-31T23:59:58Z"},
		{"Jan  1 00:00:01 h sshd[1]: x", "2026-01-01T00:00:01Z"},
		{"Dec 31 23:59:59 h sshd[1]: late line", "2025-12-31T23:59:59Z"},
		{"Jan  1 00:00:02 h sshd[1]: x", "2026-01-01T00:00:02Z"},
		{"Feb  3 10:00:00 h sshd[1]: x", "2026-02-03T10:00:00Z"},
	}
	for _, l := range lines {
		h, ok := st.ParseHeader(l.line)
		if !ok {
			t.Fatalf("%q: not parsed", l.line)
		}
		if got := h.TS.UTC().Format(time.RFC3339); got != l.want {
			t.Fatalf("%q: got %s, want %s", l.line, got, l.want)
		}
	}
}

func TestYearGuessedFromTheClockIsNeverInTheFuture(t *testing.T) {
	now := time.Date(2026, 1, 2, 8, 0, 0, 0, time.UTC)
	st := newStamper(Options{Location: time.UTC, Now: func() time.Time { return now }})
	h, _ := st.ParseHeader("Dec 30 10:00:00 h sshd[1]: x")
	if h.TS.Year() != 2025 {
		t.Fatalf("got %v, want December 2025", h.TS)
	}
	h, _ = st.ParseHeader("Jan  2 07:59:00 h sshd[1]: x")
	if h.TS.Year() != 2026 {
		t.Fatalf("got %v, want January 2026", h.TS)
	}
}

func TestZonelessStampsTakeTheConfiguredZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("needs tzdata (Debian package tzdata):", err)
	}
	st := newStamper(Options{Year: 2026, Location: berlin})
	h, _ := st.ParseHeader("Mar 22 14:32:01 h sshd[1]: x")
	if got := h.TS.UTC().Format(time.RFC3339); got != "2026-03-22T13:32:01Z" {
		t.Fatalf("BSD: got %s", got)
	}
	h, _ = st.ParseHeader("2026-03-22T14:32:01 h sshd[1]: x")
	if got := h.TS.UTC().Format(time.RFC3339); got != "2026-03-22T13:32:01Z" {
		t.Fatalf("ISO without zone: got %s", got)
	}
	h, _ = st.ParseHeader("2026-03-22T14:32:01.5-04:00 h sshd[1]: x")
	if got := h.TS.UTC().Format(time.RFC3339Nano); got != "2026-03-22T18:32:01.5Z" {
		t.Fatalf("ISO with zone: got %s", got)
	}
}

func TestParseHeaderFields(t *testing.T) {
	st := newStamper(testOpts())
	cases := []struct {
		line, host, prog, msg string
		pid                   int
		ok                    bool
	}{
		{"Mar  2 01:02:03 web-1 sshd[42]: hello world", "web-1", "sshd", "hello world", 42, true},
		{"Mar 2 01:02:03 web-1 kernel: [ 12.5] IN=eth0", "web-1", "kernel", "[ 12.5] IN=eth0", 0, true},
		{"<13>Mar 22 01:02:03 web-1 CRON[7]: x", "web-1", "CRON", "x", 7, true},
		{"<13>1 2026-03-22T01:02:03Z web-1 nginx 7 access [x@1 a=\"\\]\\\"x\"] msg", "web-1", "nginx", "msg", 7, true},
		{"Foo 22 01:02:03 web-1 sshd[42]: x", "", "", "Foo 22 01:02:03 web-1 sshd[42]: x", 0, false},
		{"Mar 22 01:02:03 web-1", "", "", "Mar 22 01:02:03 web-1", 0, false},
	}
	for _, c := range cases {
		h, ok := st.ParseHeader(c.line)
		if ok != c.ok || h.Host != c.host || h.Prog != c.prog || h.Msg != c.msg || h.PID != c.pid {
			t.Errorf("%q: got %+v ok=%v", c.line, h, ok)
		}
	}
}
