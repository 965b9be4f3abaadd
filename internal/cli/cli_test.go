package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"testing"
)

func TestCodeFollowsTheConvention(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"help", flag.ErrHelp, 0},
		{"wrapped help", fmt.Errorf("run: %w", flag.ErrHelp), 0},
		{"usage", Usagef("bad flag"), 2},
		{"wrapped usage", fmt.Errorf("config: %w", Usage(errors.New("x"))), 2},
		{"runtime", errors.New("address already in use"), 1},
		{"reported", fmt.Errorf("drill failed: %w", ErrReported), 1},
		{"reported usage", Usage(ErrReported), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Code(tc.err); got != tc.want {
				t.Errorf("Code(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestFlagErrorPointsToHelpOnOneLine(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	err := FlagError("attackmap-sensor run", fs.Parse([]string{"--bogus"}))
	var stderr bytes.Buffer
	if code := Exit("attackmap-sensor", err, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	want := "attackmap-sensor: flag provided but not defined: -bogus (see 'attackmap-sensor run --help')\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}

func TestExitPrintsOnlyWhatWasNotReported(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"success", nil, ""},
		{"help", flag.ErrHelp, ""},
		{"runtime", errors.New("disk full"), "attackmap-drill: disk full\n"},
		{"reported", fmt.Errorf("drill failed: %w", ErrReported), ""},
		{"reported usage", Usage(ErrReported), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			Exit("attackmap-drill", tc.err, &stderr)
			if stderr.String() != tc.want {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.want)
			}
		})
	}
}
