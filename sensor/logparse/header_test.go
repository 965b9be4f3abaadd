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
		{"Mar 22 01:02:03 web-1", "", "", "web-1", 0, true},
		{"Mar 22", "", "", "Mar 22", 0, false},
	}
	for _, c := range cases {
		h, ok := st.ParseHeader(c.line)
		if ok != c.ok || h.Host != c.host || h.Prog != c.prog || h.Msg != c.msg || h.PID != c.pid {
			t.Errorf("%q: got %+v ok=%v", c.line, h, ok)
		}
	}
}

func TestParseHeaderSyslogVariants(t *testing.T) {
	cases := []struct {
		name, line      string
		ts              string // RFC 3339 (nano) in UTC
		host, prog, msg string
		pid             int
	}{
		{"bsd", "Jun 20 02:18:39 vps sshd[13482]: Invalid user admin from 192.0.2.2",
			"2026-06-20T02:18:39Z", "vps", "sshd", "Invalid user admin from 192.0.2.2", 13482},
		{"facility.level between host and program", "Jun 20 02:18:39 vps auth.info sshd[13482]: Invalid user admin from 192.0.2.2",
			"2026-06-20T02:18:39Z", "vps", "sshd", "Invalid user admin from 192.0.2.2", 13482},
		{"solaris message id", "Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed keyboard-interactive for james from 192.0.2.30 port 54520 ssh2",
			"2026-03-29T05:59:23Z", "dusky", "sshd", "Failed keyboard-interactive for james from 192.0.2.30 port 54520 ssh2", 20878},
		{"svlogd facility instead of host and program", "2015-05-27T04:31:27.46667 auth.info: Invalid user admin from 192.0.2.1",
			"2015-05-27T04:31:27.46667Z", "", "", "Invalid user admin from 192.0.2.1", 0},
		{"date space time nanoseconds then bare message", "2018-06-26 13:22:02.108781500 Failed password for woold from 192.0.2.76 port 34718 ssh2",
			"2018-06-26T13:22:02.1087815Z", "", "", "Failed password for woold from 192.0.2.76 port 34718 ssh2", 0},
		{"macOS", "2018-12-20 10:09:05.180218+0000 localhost sshd[67566]: Invalid user git from 192.0.2.9 port 35968",
			"2018-12-20T10:09:05.180218Z", "localhost", "sshd", "Invalid user git from 192.0.2.9 port 35968", 67566},
		{"sshd-session", "2026-03-22T14:32:01.5+01:00 web-1 sshd-session[7]: Connection closed by 192.0.2.1 port 1 [preauth]",
			"2026-03-22T13:32:01.5Z", "web-1", "sshd-session", "Connection closed by 192.0.2.1 port 1 [preauth]", 7},
		{"no host", "Nov 23 21:50:37 sshd[8148]: Connection closed by 192.0.2.1 [preauth]",
			"2026-11-23T21:50:37Z", "", "sshd", "Connection closed by 192.0.2.1 [preauth]", 8148},
		{"bracketed program", "Mar  3 00:17:22 [sshd]: User root from 192.0.2.49 not allowed because not listed in AllowUsers",
			"2026-03-03T00:17:22Z", "", "sshd", "User root from 192.0.2.49 not allowed because not listed in AllowUsers", 0},
		{"bracketed program without colon", "Jun 25 23:53:34 [sshd] User root from 192.0.2.4 not allowed because not listed in AllowUsers",
			"2026-06-25T23:53:34Z", "", "sshd", "User root from 192.0.2.4 not allowed because not listed in AllowUsers", 0},
		{"kernel brackets are message", "Mar  2 01:02:03 web-1 kernel: [ 12.5] IN=eth0",
			"2026-03-02T01:02:03Z", "web-1", "kernel", "[ 12.5] IN=eth0", 0},
		{"host without tag is a bare message", "Mar  2 01:02:03 web-1 some text",
			"2026-03-02T01:02:03Z", "", "", "web-1 some text", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newStamper(testOpts())
			h, ok := st.ParseHeader(c.line)
			if !ok {
				t.Fatalf("not parsed: %+v", h)
			}
			if got := h.TS.UTC().Format(time.RFC3339Nano); got != c.ts {
				t.Errorf("stamp %s, want %s", got, c.ts)
			}
			if h.Host != c.host || h.Prog != c.prog || h.PID != c.pid || h.Msg != c.msg {
				t.Errorf("got host=%q prog=%q pid=%d msg=%q\nwant host=%q prog=%q pid=%d msg=%q",
					h.Host, h.Prog, h.PID, h.Msg, c.host, c.prog, c.pid, c.msg)
			}
		})
	}
}
