// Package cli holds what the attackmap binaries share about their command
// lines: the exit status convention (docs/DESIGN.md, "Command lines") and
// one-line flag errors that point to the command's --help.
//
//	0  success (and --help)
//	1  runtime failure: something failed while running (a port in use, a
//	   relay unreachable, a disk full, a file that cannot be read)
//	2  usage or configuration: a bad flag, argument or configuration file,
//	   fixed by changing the command line or the file
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// ExitHelp is the paragraph each --help ends with.
const ExitHelp = `Exit status: 0 success, 1 runtime failure, 2 bad command line or configuration.
`

// UsageError marks a bad command line or configuration: exit status 2.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usage marks err as a usage or configuration error (nil stays nil).
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return UsageError{err}
}

// Usagef is fmt.Errorf marked as a usage error.
func Usagef(format string, a ...any) error { return UsageError{fmt.Errorf(format, a...)} }

// FlagError turns a flag.FlagSet parse error into a one-line usage error
// that points to the command's help, e.g. "flag provided but not defined:
// -bogus (see 'attackmap-sensor run --help')".
func FlagError(cmd string, err error) error {
	return Usagef("%v (see '%s --help')", err, cmd)
}

// Code is the exit status for err: 0 for nil and flag.ErrHelp, 2 for a
// UsageError, 1 for anything else.
func Code(err error) int {
	var u UsageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &u):
		return ExitUsage
	}
	return ExitFailure
}

// ErrReported marks a failure the command already explained on stderr
// where it happened (a drill prints each attack that failed): Exit prints
// nothing more for it. Wrapped in a UsageError it is a bad command line
// already explained: exit status 2.
var ErrReported = errors.New("failure already reported")

// Exit prints err (unless it is nil, flag.ErrHelp or ErrReported) as
// "prog: err" on stderr and returns its exit status.
func Exit(prog string, err error, stderr io.Writer) int {
	code := Code(err)
	if code != ExitOK && !errors.Is(err, ErrReported) {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	}
	return code
}

// Main is a command's whole main: it calls run with the process's
// arguments, environment and output and a context that ends on SIGINT or
// SIGTERM, and exits with Exit's status.
func Main(prog string, run func(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(Exit(prog, err, os.Stderr))
}
