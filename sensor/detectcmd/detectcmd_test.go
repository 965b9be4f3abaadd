package detectcmd

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixedNow stamps lines that carry no time (sshd -E files) in the tests.
func fixedNow() time.Time { return time.Date(2026, 3, 22, 14, 40, 0, 0, time.UTC) }

// TestGolden replays every testdata/<case>/ through the command: inputs
// by file name (auth.log and journal.jsonl -> --auth-log, access.log ->
// --access-log, error.log -> --error-log, fw.log -> --fw-log, events.jsonl
// -> --events), extra flags
// from args.txt; the incidents must equal want.jsonl and the raw events
// want-events.jsonl. Run with -update to rewrite them after a reviewed
// change.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/args.txt")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, a := range dirs {
		dir := filepath.Dir(a)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var args []string
			for name, flag := range map[string]string{"auth.log": "--auth-log", "journal.jsonl": "--auth-log",
				"access.log": "--access-log", "error.log": "--error-log", "fw.log": "--fw-log", "events.jsonl": "--events"} {
				if p := filepath.Join(dir, name); exists(p) {
					args = append(args, flag, p)
				}
			}
			extra, _ := os.ReadFile(a)
			args = append(args, strings.Fields(string(extra))...)
			evOut := filepath.Join(t.TempDir(), "events.jsonl")
			args = append(args, "--events-out", evOut)
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), args, &stdout, &stderr, fixedNow); err != nil {
				t.Fatalf("run: %v", err)
			}
			for i, l := range bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n")) {
				if len(l) == 0 {
					continue
				}
				in, err := incident.Decode(l)
				if err != nil {
					t.Fatalf("line %d: %v", i+1, err)
				}
				if err := in.Validate(); err != nil {
					t.Fatalf("line %d: %v", i+1, err)
				}
			}
			events, err := os.ReadFile(evOut)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(dir, "want.jsonl"), stdout.Bytes())
			golden(t, filepath.Join(dir, "want-events.jsonl"), events)
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"cooldwn":"5m","cooldown":"1m"}`), 0o644)
	log := filepath.Join(dir, "auth.log")
	os.WriteFile(log, nil, 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no input"},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"--auth-log", filepath.Join(dir, "missing.log")}, "no such file or directory"},
		{[]string{"--auth-log", dir}, "is a directory"},
		{[]string{"--auth-log", log, "--tz", "Mars/Olympus"}, `--tz "Mars/Olympus": unknown zone`},
		{[]string{"--auth-log", log, "--year", "12"}, "--year 12 is not a year"},
		{[]string{"--auth-log", log, "--config", bad}, `unknown field "cooldwn"`},
		{[]string{"--auth-log", log, "extra"}, `unexpected argument "extra"`},
		{[]string{"--auth-log", log, "--events-out", filepath.Join(dir, "no", "such", "dir")}, "--events-out"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), c.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err %v, want one line containing %q", c.args, err, c.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: wrote %q to stdout", c.args, stdout.String())
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout bytes.Buffer
	if err := Run(context.Background(), []string{"-h"}, &stdout, &bytes.Buffer{}); err != nil || !strings.Contains(stdout.String(), "--events-out FILE") {
		t.Fatalf("err %v, help %q", err, stdout.String())
	}
}

func TestConfigFileSection(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	var sb strings.Builder
	for i := range 4 {
		sb.WriteString("Mar 22 14:31:0" + string(rune('0'+i)) + " web-1 sshd[1]: Failed password for root from 185.220.101.34 port 1 ssh2\n")
	}
	os.WriteFile(log, []byte(sb.String()), 0o644)
	cfg := filepath.Join(dir, "sensor.json")
	os.WriteFile(cfg, []byte(`{"data":"/var/lib/attackmap","detect":{"ssh_bruteforce":{"fast":{"capacity":3}}}}`), 0o644)
	var stdout bytes.Buffer
	if err := Run(context.Background(), []string{"--auth-log", log, "--year", "2026", "--tz", "UTC", "--config", cfg}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), `"source":"ssh_bruteforce"`) {
		t.Fatalf("capacity 3 did not fire on the 4th failure: %q", stdout.String())
	}
}
