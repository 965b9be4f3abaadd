package journald

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/sensor/logparse"
)

func TestParseEntry(t *testing.T) {
	b, err := os.ReadFile("testdata/entries.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var got []Entry
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		e, err := ParseEntry(l)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if e := got[0]; e.Ident != "sshd" || e.PID != 4242 || e.Host != "web-1" || e.Cursor == "" ||
		e.TS.Format(time.RFC3339Nano) != "2026-03-22T14:32:01Z" || !strings.HasPrefix(e.Message, "Failed password") {
		t.Fatalf("entry 0: %+v", e)
	}
	if e := got[1]; e.PID != 4243 || e.Message != "Invalid user \xff from 2a01:4f8:c17:1::66 port 22" ||
		e.TS.Format(time.RFC3339Nano) != "2026-03-22T14:32:02.5Z" {
		t.Fatalf("entry 1 (byte array message): %+v", e)
	}
	if h := got[2].Header(); h.Prog != "kernel" || h.Source != "journald" {
		t.Fatalf("kernel header: %+v", h)
	}
	if got[3].Message != "" || got[4].Ident != "sshd" {
		t.Fatalf("null message / repeated field: %+v %+v", got[3], got[4])
	}
	// Through the parsers, as the sensor uses them.
	auth, fw := logparse.NewAuth(logparse.Options{}), logparse.NewFirewall(logparse.Options{})
	ev, ok := auth.Message(got[1].Header())
	if !ok || ev.SrcIP.String() != "2a01:4f8:c17:1::66" || ev.User != "\ufffd" || ev.Source != "journald" {
		t.Fatalf("sshd entry: ok=%v %+v", ok, ev)
	}
	ev, ok = fw.Message(got[2].Header())
	if !ok || ev.DstPort != 23 || ev.Source != "journald" {
		t.Fatalf("kernel entry: ok=%v %+v", ok, ev)
	}
}

func TestParseEntryRejectsGarbage(t *testing.T) {
	for _, l := range []string{"", "{", "[]", `{"MESSAGE":"x"}`, `{"__REALTIME_TIMESTAMP":"-5"}`, "Mar 22 sshd: x"} {
		if _, err := ParseEntry([]byte(l)); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: err %v, want a one-line error", l, err)
		}
	}
}

func FuzzParseEntry(f *testing.F) {
	b, err := os.ReadFile("testdata/entries.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseEntry(line)
		if err == nil && e.TS.IsZero() {
			t.Fatal("entry without time")
		}
	})
}

func TestCommandLine(t *testing.T) {
	f := &Follower{Matches: KernelMatches}
	if got := strings.Join(f.CommandLine(""), " "); got != "journalctl --output=json --follow --no-pager --quiet --lines=0 _TRANSPORT=kernel" {
		t.Fatalf("without cursor: %s", got)
	}
	if got := strings.Join(f.CommandLine("s=1;i=2"), " "); !strings.Contains(got, " --after-cursor=s=1;i=2 ") || strings.Contains(got, "--lines") {
		t.Fatalf("with cursor: %s", got)
	}
}

func TestReadLineSkipsOverlongLines(t *testing.T) {
	in := strings.Repeat("x", MaxEntryBytes+10) + "\nok\n"
	r := bufio.NewReaderSize(strings.NewReader(in), 4096)
	l, err := readLine(r)
	if err != nil || len(l) != 0 {
		t.Fatalf("overlong: %d bytes, %v", len(l), err)
	}
	l, err = readLine(r)
	if err != nil || string(l) != "ok" {
		t.Fatalf("next: %q %v", l, err)
	}
}

// journalRemote writes export-format entries into a journal file in dir,
// with the real systemd-journal-remote.
func journalRemote(t *testing.T, dir string, n int, msg string) {
	t.Helper()
	export := fmt.Sprintf("__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\n"+
		"_HOSTNAME=web-1\nSYSLOG_IDENTIFIER=sshd\n_PID=%d\n_TRANSPORT=syslog\nMESSAGE=%s\n\n",
		1774189921000000+n*1000000, n+1, 4000+n, msg)
	in := filepath.Join(t.TempDir(), "in.export")
	if err := os.WriteFile(in, []byte(export), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(remoteBin, "--output="+filepath.Join(dir, "test.journal"), in).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-journal-remote: %v: %s", err, out)
	}
}

const remoteBin = "/lib/systemd/systemd-journal-remote"

func TestFollowerWithRealJournalctl(t *testing.T) {
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("needs journalctl (Debian package systemd)")
	}
	if _, err := os.Stat(remoteBin); err != nil {
		t.Skip("needs systemd-journal-remote (Debian package systemd-journal-remote) to write journal files")
	}
	dir := t.TempDir()
	stateFile := filepath.Join(t.TempDir(), "cursor")
	journalRemote(t, dir, 0, "Failed password for root from 185.220.101.34 port 1 ssh2 (history)")

	run := func(then func(), want ...string) {
		t.Helper()
		f := &Follower{Matches: SSHDMatches, StateFile: stateFile, Args: []string{"--directory=" + dir}}
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan string, 10)
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx, func(e Entry) error { got <- e.Message; return nil }) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		for _, w := range want {
			select {
			case m := <-got:
				if m != w {
					t.Fatalf("got %q, want %q", m, w)
				}
				if then != nil {
					then() // journalctl is following now: it delivered an entry
					then = nil
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("timed out waiting for %q", w)
			}
		}
	}
	// Start after the history entry: its cursor, as a previous run left it.
	out, err := exec.Command("journalctl", "--directory="+dir, "--output=json", "--lines=1", "--no-pager").Output()
	if err != nil {
		t.Fatalf("journalctl: %v", err)
	}
	e0, err := ParseEntry(bytes.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stateFile, []byte(e0.Cursor+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	journalRemote(t, dir, 1, "Invalid user a from 185.220.101.34 port 2")
	run(func() { journalRemote(t, dir, 2, "Invalid user live from 185.220.101.34 port 9") },
		"Invalid user a from 185.220.101.34 port 2", "Invalid user live from 185.220.101.34 port 9")
	if c, _ := os.ReadFile(stateFile); !strings.HasPrefix(string(c), "s=") {
		t.Fatalf("cursor not saved: %q", c)
	}
	// Written while stopped: the next run resumes after the cursor.
	journalRemote(t, dir, 3, "Invalid user b from 185.220.101.34 port 3")
	run(nil, "Invalid user b from 185.220.101.34 port 3")
}

func TestHeaderDropsTheCRThatSSHDWritesToStderr(t *testing.T) {
	e, err := ParseEntry([]byte(`{"__REALTIME_TIMESTAMP":"1774189923000000","SYSLOG_IDENTIFIER":"sshd","_PID":"9","MESSAGE":"Failed password for root from 192.0.2.5 port 4000 ssh2\r"}`))
	if err != nil {
		t.Fatal(err)
	}
	if h := e.Header(); h.Msg != "Failed password for root from 192.0.2.5 port 4000 ssh2" {
		t.Fatalf("message %q", h.Msg)
	}
}
