package logparse

import (
	"testing"
	"time"
)

func TestAccessLines(t *testing.T) {
	cases := []struct {
		name, line                         string
		ok                                 bool
		ip, method, path, query, ua, vhost string
		user, version                      string
		status                             int
		size                               int64
		static                             bool
		ts                                 string
	}{
		{name: "nginx combined", line: `185.220.101.34 - - [22/Mar/2026:14:32:01 +0100] "GET /.env?x=1 HTTP/1.1" 404 153 "-" "Mozilla/5.0 zgrab/0.x"`,
			ok: true, ip: "185.220.101.34", method: "GET", path: "/.env", query: "x=1", ua: "Mozilla/5.0 zgrab/0.x", status: 404, size: 153, ts: "2026-03-22T13:32:01Z", version: "HTTP/1.1"},
		{name: "common", line: `2001:db8::5 - frank [22/Mar/2026:14:32:01 -0700] "POST /login HTTP/1.0" 401 -`,
			ok: true, ip: "2001:db8::5", method: "POST", path: "/login", status: 401, ts: "2026-03-22T21:32:01Z", user: "frank", version: "HTTP/1.0"},
		{name: "apache vhost_combined", line: `www.example.org:443 185.220.101.34 - - [22/Mar/2026:14:32:01 +0000] "GET /style.css HTTP/1.1" 200 512 "https://www.example.org/" "Mozilla/5.0"`,
			ok: true, ip: "185.220.101.34", method: "GET", path: "/style.css", ua: "Mozilla/5.0", vhost: "www.example.org:443", status: 200, size: 512, static: true, ts: "2026-03-22T14:32:01Z", version: "HTTP/1.1"},
		{name: "nginx host that looks like an address", line: `1.2.3.4 185.220.101.34 - - [22/Mar/2026:14:32:01 +0000] "GET / HTTP/1.1" 200 5 "-" "-"`,
			ok: true, ip: "185.220.101.34", method: "GET", path: "/", vhost: "1.2.3.4", status: 200, size: 5, ts: "2026-03-22T14:32:01Z", version: "HTTP/1.1"},
		{name: "inside syslog", line: `Mar 22 14:32:01 web-1 nginx: 185.220.101.34 - - [22/Mar/2026:14:32:01 +0000] "GET /wp-login.php HTTP/1.1" 404 0 "-" "curl/8.0"`,
			ok: true, ip: "185.220.101.34", method: "GET", path: "/wp-login.php", ua: "curl/8.0", status: 404, ts: "2026-03-22T14:32:01Z", version: "HTTP/1.1"},
		{name: "escaped quote in request and ua", line: `185.220.101.34 - - [22/Mar/2026:14:32:01 +0000] "GET /a\"b HTTP/1.1" 400 0 "-" "x\" y"`,
			ok: true, ip: "185.220.101.34", method: "GET", path: `/a\"b`, ua: `x\" y`, status: 400, ts: "2026-03-22T14:32:01Z", version: "HTTP/1.1"},
		{name: "tls bytes as request", line: `185.220.101.34 - - [22/Mar/2026:14:32:01 +0000] "\x16\x03\x01\x00\xfc\x01" 400 157 "-" "-"`,
			ok: true, ip: "185.220.101.34", path: `\x16\x03\x01\x00\xfc\x01`, status: 400, size: 157, ts: "2026-03-22T14:32:01Z"},
		{name: "user with bracket", line: `185.220.101.34 - a [b [22/Mar/2026:14:32:01 +0000] "GET / HTTP/1.1" 401 0`,
			ok: true, ip: "185.220.101.34", method: "GET", path: "/", status: 401, ts: "2026-03-22T14:32:01Z", user: "a [b", version: "HTTP/1.1"},
		{name: "quoted user and a lone user agent", line: `10.42.42.39 - "jeff" [19/Apr/1943:03:14:13 +0000] "GET /secret-base HTTP/1.1" 401 356 "EvilAgent/2.0"`,
			ok: true, ip: "10.42.42.39", method: "GET", path: "/secret-base", ua: "EvilAgent/2.0", status: 401, size: 356, ts: "1943-04-19T03:14:13Z", user: "jeff", version: "HTTP/1.1"},
		{name: "lone referer", line: `10.42.42.44 - - [19/Apr/1943:03:14:15 +0000] "GET /wp-login.php HTTP/1.1" 404 56 "-"`,
			ok: true, ip: "10.42.42.44", method: "GET", path: "/wp-login.php", status: 404, size: 56, ts: "1943-04-19T03:14:15Z", version: "HTTP/1.1"},
		{name: "lone url is a referer", line: `10.42.42.44 - - [19/Apr/1943:03:14:15 +0000] "GET /a HTTP/1.1" 200 56 "https://example.com/"`,
			ok: true, ip: "10.42.42.44", method: "GET", path: "/a", status: 200, size: 56, ts: "1943-04-19T03:14:15Z", version: "HTTP/1.1"},
		{name: "short version and no size", line: `10.42.42.41 - - [19/Apr/1943:03:14:11 +0000] "GET /wp-admin.php HTTP/1" 401 - "-" "Mozilla/5.0"`,
			ok: true, ip: "10.42.42.41", method: "GET", path: "/wp-admin.php", ua: "Mozilla/5.0", status: 401, ts: "1943-04-19T03:14:11Z", version: "HTTP/1"},
		{name: "extra quoted fields", line: `10.42.42.42 - - [19/Apr/1943:03:14:12 +0000] "GET /wordress/wp-login.php HTTP/2.0" 404 2571 "-" "Mozilla/5.0" "extra-field" "more-data"`,
			ok: true, ip: "10.42.42.42", method: "GET", path: "/wordress/wp-login.php", ua: "Mozilla/5.0", status: 404, size: 2571, ts: "1943-04-19T03:14:12Z", version: "HTTP/2.0"},
		{name: "status then size at the end of the line", line: `10.42.42.43 - - [19/Apr/1943:03:14:13 +0000] "GET /roundcube HTTP/1.1" 410 3`,
			ok: true, ip: "10.42.42.43", method: "GET", path: "/roundcube", status: 410, size: 3, ts: "1943-04-19T03:14:13Z", version: "HTTP/1.1"},
		{name: "no size field at all", line: `10.42.42.46 - - [19/Apr/1943:03:14:15 +0000] "GET /wp-login.php HTTP/1.1" 200 "-" "Mozilla/5.0"`,
			ok: true, ip: "10.42.42.46", method: "GET", path: "/wp-login.php", ua: "Mozilla/5.0", status: 200, ts: "1943-04-19T03:14:15Z", version: "HTTP/1.1"},
		{name: "one of ident and user", line: `10.42.42.44 - [19/Apr/1943:03:14:15 +0000] "GET / HTTP/2.0" 301 401 314 "-" "Mozilla/5.0"`,
			ok: true, ip: "10.42.42.44", method: "GET", path: "/", status: 301, size: 401, ts: "1943-04-19T03:14:15Z", version: "HTTP/2.0"},
		{name: "connect keeps its target", line: `185.220.101.34 - - [22/Mar/2026:14:32:01 +0000] "CONNECT www.google.com:443 HTTP/1.1" 400 150 "-" "-"`,
			ok: true, ip: "185.220.101.34", method: "CONNECT", path: "www.google.com:443", status: 400, size: 150, ts: "2026-03-22T14:32:01Z", version: "HTTP/1.1"},
		{name: "absolute uri keeps its target", line: `185.220.101.34 - - [22/Mar/2026:14:32:01 +0000] "GET http://example.com/x?a=1 HTTP/1.1" 404 150 "-" "-"`,
			ok: true, ip: "185.220.101.34", method: "GET", path: "http://example.com/x", query: "a=1", status: 404, size: 150, ts: "2026-03-22T14:32:01Z", version: "HTTP/1.1"},
		{name: "request line without a version stays whole", line: `185.220.101.34 - - [22/Mar/2026:14:32:01 +0000] "GET /w00tw00t.at.ISC.SANS.DFind:)" 400 150 "-" "-"`,
			ok: true, ip: "185.220.101.34", path: "GET /w00tw00t.at.ISC.SANS.DFind:)", status: 400, size: 150, ts: "2026-03-22T14:32:01Z"},
		{name: "hostile user is cleaned", line: "185.220.101.34 - ad\x1b[31mmin [22/Mar/2026:14:32:01 +0000] \"GET / HTTP/1.1\" 401 0",
			ok: true, ip: "185.220.101.34", method: "GET", path: "/", status: 401, ts: "2026-03-22T14:32:01Z", user: `ad\x1b[31mmin`, version: "HTTP/1.1"},
		{name: "host name", line: `crawler.example.net - - [22/Mar/2026:14:32:01 +0000] "GET / HTTP/1.1" 200 0`},
		{name: "bad status", line: `185.220.101.34 - - [22/Mar/2026:14:32:01 +0000] "GET / HTTP/1.1" abc 0`},
		{name: "no stamp", line: `185.220.101.34 - - "GET / HTTP/1.1" 200 0`},
		{name: "garbage", line: "\xff\xfe"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, ok := NewAccess(testOpts()).Line(c.line)
			if ok != c.ok {
				t.Fatalf("ok=%v, want %v (%+v)", ok, c.ok, ev)
			}
			if !ok {
				return
			}
			if ev.SrcIP.String() != c.ip || ev.Method != c.method || ev.Path != c.path || ev.Query != c.query ||
				ev.UA != c.ua || ev.Vhost != c.vhost || ev.Status != c.status || ev.Size != c.size ||
				ev.User != c.user || ev.HTTPVersion != c.version ||
				(ev.Detail == DetailStatic) != c.static || ev.TS.UTC().Format(time.RFC3339) != c.ts {
				t.Fatalf("got %+v", ev)
			}
		})
	}
}

func TestFirewallLines(t *testing.T) {
	cases := []struct {
		name, line string
		ok         bool
		src, proto string
		dpt        uint16
	}{
		{"ufw block", "Mar 22 14:32:01 web-1 kernel: [ 1234.567890] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=185.220.101.34 DST=10.0.0.5 LEN=44 TOS=0x00 PREC=0x00 TTL=245 ID=54321 PROTO=TCP SPT=41337 DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0",
			true, "185.220.101.34", "tcp", 23},
		{"iptables prefix", "2026-03-22T14:32:01.000000+00:00 web-1 kernel: IPTables-Dropped: IN=eth0 OUT= SRC=2001:db8::66 DST=2001:db8::1 LEN=60 TC=0 HOPLIMIT=50 FLOWLBL=0 PROTO=UDP SPT=5353 DPT=161 LEN=20",
			true, "2001:db8::66", "udp", 161},
		{"icmp", "Mar 22 14:32:01 web-1 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=185.220.101.34 DST=10.0.0.5 LEN=84 PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1",
			true, "185.220.101.34", "icmp", 0},
		{"ufw allow", "Mar 22 14:32:01 web-1 kernel: [UFW ALLOW] IN=eth0 OUT= SRC=185.220.101.34 DST=10.0.0.5 PROTO=TCP SPT=1 DPT=22", false, "", "", 0},
		{"ufw audit", "Mar 22 14:32:01 web-1 kernel: [UFW AUDIT] IN=eth0 OUT= SRC=185.220.101.34 DST=10.0.0.5 PROTO=TCP SPT=1 DPT=22", false, "", "", 0},
		{"not the kernel", "Mar 22 14:32:01 web-1 sshd[1]: Invalid user IN=eth0 SRC=8.8.8.8 PROTO=TCP DPT=22 from 185.220.101.34 port 1", false, "", "", 0},
		{"no src", "Mar 22 14:32:01 web-1 kernel: IN=eth0 OUT= PROTO=TCP DPT=22", false, "", "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, ok := NewFirewall(testOpts()).Line(c.line)
			if ok != c.ok {
				t.Fatalf("ok=%v, want %v (%+v)", ok, c.ok, ev)
			}
			if ok && (ev.SrcIP.String() != c.src || ev.Proto != c.proto || ev.DstPort != c.dpt) {
				t.Fatalf("got %+v", ev)
			}
		})
	}
}
