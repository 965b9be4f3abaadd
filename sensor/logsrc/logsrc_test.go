package logsrc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/attackmap/attackmap/sensor/event"
)

func write(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestRunFollowsEveryKindOfLog(t *testing.T) {
	dir := t.TempDir()
	auth, access, fw := filepath.Join(dir, "auth.log"), filepath.Join(dir, "access.log"), filepath.Join(dir, "kern.log")
	cfg := Config{AuthLogs: []string{auth}, AccessLogs: []string{access}, FWLogs: []string{fw},
		StateDir: filepath.Join(dir, "state"), FromStart: true}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan event.Event, 16)
	done := make(chan error, 1)
	go func() { done <- cfg.Run(ctx, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// FromStart: whether a file appears before or after its tailer starts,
	// it is read from its beginning.
	write(t, auth, "Mar 22 14:32:01 web-1 sshd[1]: Failed password for root from 185.220.101.34 port 41337 ssh2\n")
	write(t, access, "garbage\n185.220.101.34 - - [22/Mar/2026:14:32:01 +0000] \"GET /.env HTTP/1.1\" 404 153 \"-\" \"x\"\n")
	write(t, fw, `{"__REALTIME_TIMESTAMP":"1774189923000000","_TRANSPORT":"kernel","MESSAGE":"[UFW BLOCK] IN=eth0 OUT= SRC=185.220.101.34 DST=10.0.0.5 PROTO=TCP SPT=1 DPT=23"}`+"\n")
	kinds := map[string]bool{}
	for len(kinds) < 3 {
		select {
		case ev := <-out:
			if ev.SrcIP.String() != "185.220.101.34" {
				t.Fatalf("event %+v", ev)
			}
			kinds[ev.Kind] = true
		case <-time.After(15 * time.Second):
			t.Fatalf("timed out; got %v", kinds)
		}
	}
	if !kinds[event.KindSSHFailed] || !kinds[event.KindHTTPRequest] || !kinds[event.KindFWDrop] {
		t.Fatalf("got %v", kinds)
	}
}

func TestRunFollowsAConfiguredErrorLog(t *testing.T) {
	dir := t.TempDir()
	errLog := filepath.Join(dir, "error.log")
	cfg := Config{ErrorLogs: []string{errLog}, StateDir: filepath.Join(dir, "state"), FromStart: true}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan event.Event, 16)
	done := make(chan error, 1)
	go func() { done <- cfg.Run(ctx, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	write(t, errLog, "2026/03/22 14:32:00 [notice] 1#1: signal process started\n"+
		"2026/03/22 14:32:01 [error] 812#812: *3 access forbidden by rule, client: 185.220.101.34, server: example.org, request: \"GET /.git/config HTTP/1.1\", host: \"example.org\"\n"+
		`{"__REALTIME_TIMESTAMP":"1774189923000000","SYSLOG_IDENTIFIER":"apache2","MESSAGE":"[auth_basic:error] [pid 9:tid 9] [client 185.220.101.35:5000] AH01617: user admin: authentication failure for \"/admin\": Password Mismatch"}`+"\n")
	var got []event.Event
	for len(got) < 2 {
		select {
		case ev := <-out:
			got = append(got, ev)
		case <-time.After(15 * time.Second):
			t.Fatalf("timed out; got %+v", got)
		}
	}
	if got[0].Kind != event.KindHTTPError || got[0].Source != event.SourceErrorLog || got[0].SrcIP.String() != "185.220.101.34" || got[0].Path != "/.git/config" {
		t.Errorf("nginx line: %+v", got[0])
	}
	if got[1].Kind != event.KindHTTPError || got[1].Source != event.SourceJournald || got[1].SrcIP.String() != "185.220.101.35" || got[1].User != "admin" {
		t.Errorf("journal entry: %+v", got[1])
	}
}

func TestRunWithoutLogsIsAnError(t *testing.T) {
	if err := (Config{}).Run(context.Background(), make(chan event.Event)); err == nil {
		t.Fatal("no error")
	}
}

func TestDefaultsPicksTheUsualFiles(t *testing.T) {
	dir := t.TempDir()
	secure, nginx, messages := filepath.Join(dir, "secure"), filepath.Join(dir, "nginx.log"), filepath.Join(dir, "messages")
	nginxErr, httpdErr := filepath.Join(dir, "nginx-error.log"), filepath.Join(dir, "httpd-error_log")
	for _, p := range []string{secure, nginx, messages, nginxErr, httpdErr} {
		write(t, p, "")
	}
	defer func(a, b, c, e []string, j func() bool) {
		defaultAuth, defaultAccess, defaultFW, defaultError, journalctlOnPATH = a, b, c, e, j
	}(defaultAuth, defaultAccess, defaultFW, defaultError, journalctlOnPATH)
	defaultAuth = []string{filepath.Join(dir, "auth.log"), secure}
	defaultAccess = []string{nginx, filepath.Join(dir, "apache.log")}
	defaultError = []string{nginxErr, filepath.Join(dir, "apache2-error.log"), httpdErr}
	defaultFW = []string{filepath.Join(dir, "kern.log"), messages}
	journalctlOnPATH = func() bool { return false }
	c := Defaults()
	if len(c.AuthLogs) != 1 || c.AuthLogs[0] != secure || len(c.AccessLogs) != 1 || c.AccessLogs[0] != nginx ||
		len(c.FWLogs) != 1 || c.FWLogs[0] != messages || c.UseJournal ||
		len(c.ErrorLogs) != 2 || c.ErrorLogs[0] != nginxErr || c.ErrorLogs[1] != httpdErr {
		t.Fatalf("got %+v", c)
	}
	defaultAuth = []string{filepath.Join(dir, "none")}
	if c := Defaults(); len(c.AuthLogs) != 0 || c.UseJournal {
		t.Fatalf("without auth file or journal: %+v", c)
	}
}

func TestStateName(t *testing.T) {
	if got := stateName("/var/log/nginx/access.log"); got != "var_log_nginx_access.log" {
		t.Fatal(got)
	}
}
