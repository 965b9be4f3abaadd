package main

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/internal/cli"
)

// runCmd runs the command line as main does: the exit status and what
// main would print.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &out, &errb)
	code = cli.Exit("attackmap-sensor", err, &errb)
	return out.String(), errb.String(), code
}

func TestExitStatusAndMessages(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout for 0, in stderr otherwise
	}{
		{"no command", nil, 2, "no command (see 'attackmap-sensor --help')"}, // after the usage
		{"unknown command", []string{"fly"}, 2, `unknown command "fly"`},
		{"help", []string{"--help"}, 0, "Examples:"},
		{"help lists exit codes", []string{"help"}, 0, "Exit status: 0 success, 1 runtime failure, 2"},
		{"version", []string{"version"}, 0, "attackmap-sensor dev"},
		{"--version", []string{"--version"}, 0, "attackmap-sensor dev"},
		{"print config", []string{"run", "--print-config"}, 0, `"data_dir"`},
		{"run help", []string{"run", "--help"}, 0, ""},
		{"unknown run flag", []string{"run", "--bogus"}, 2, "flag provided but not defined: -bogus (see 'attackmap-sensor run --help')"},
		{"run bad config", []string{"run", "--config", filepath.Join(data, "missing.json")}, 2, "no such file"},
		{"detect help", []string{"detect", "--help"}, 0, "Examples:"},
		{"unknown detect flag", []string{"detect", "--bogus"}, 2, "(see 'attackmap-sensor detect --help')"},
		{"detect bad year", []string{"detect", "--auth-log", "x", "--year", "12"}, 2, "not a year"},
		{"detect missing input", []string{"detect", "--auth-log", "/nonexistent/auth.log"}, 1, "nonexistent"},
		{"block help", []string{"block", "--help"}, 0, "Examples:"},
		{"unknown block flag", []string{"block", "list", "--bogus"}, 2, "(see 'attackmap-sensor block --help')"},
		{"block no command", []string{"block"}, 2, "block: no command"},
		{"geoip help", []string{"geoip", "--help"}, 0, "geoipupdate"},
		{"geoip no subcommand", []string{"geoip"}, 2, `want "geoip status"`},
		{"geoip nothing loaded", []string{"geoip", "status", "--data", data}, 1, "no GeoIP location database loaded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			where := stdout
			if code != 0 {
				where = stderr
				if tc.name != "no command" && strings.Count(stderr, "\n") != 1 {
					t.Errorf("stderr is not one line: %q", stderr)
				}
			}
			if !strings.Contains(where, tc.want) {
				t.Errorf("output %q lacks %q", where, tc.want)
			}
		})
	}
}

// Every command's --help carries examples and the exit statuses.
func TestEveryHelpHasExamplesAndExitStatus(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"detect", "--help"}, {"block", "--help"}, {"geoip", "--help"}} {
		stdout, _, code := runCmd(t, args...)
		if code != 0 || !strings.Contains(stdout, "Example") || !strings.Contains(stdout, "Exit status") {
			t.Errorf("%q: exit %d, help:\n%s", args, code, stdout)
		}
	}
}

// TestHelpGoesToStdoutAndUsageErrorsToStderr: asking for help is a
// success, so it is printed on stdout with status 0 and nothing on
// stderr, for every command and both spellings; a bad flag is a usage
// error: one line on stderr, nothing on stdout, status 2.
func TestHelpGoesToStdoutAndUsageErrorsToStderr(t *testing.T) {
	for _, cmd := range [][]string{nil, {"run"}, {"detect"}, {"block"}, {"block", "list"}, {"geoip"}, {"geoip", "status"}} {
		name := strings.Join(append([]string{"attackmap-sensor"}, cmd...), " ")
		for _, h := range []string{"--help", "-h"} {
			t.Run(name+" "+h, func(t *testing.T) {
				stdout, stderr, code := runCmd(t, append(slices.Clone(cmd), h)...)
				if code != 0 || stderr != "" || !strings.Contains(strings.ToLower(stdout), "usage") {
					t.Errorf("exit %d, stderr %q, stdout %q: want the usage on stdout, status 0", code, stderr, stdout)
				}
			})
		}
		if len(cmd) == 0 {
			continue // a flag before the command is an unknown command, tested above
		}
		t.Run(name+" --bogus", func(t *testing.T) {
			stdout, stderr, code := runCmd(t, append(slices.Clone(cmd), "--bogus")...)
			if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "-bogus") {
				t.Errorf("exit %d, stdout %q, stderr %q: want one line on stderr, status 2", code, stdout, stderr)
			}
		})
	}
}
