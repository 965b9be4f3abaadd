// Command attackmap-drill attacks this machine for real, on loopback only,
// so a running attackmap sensor lights up the map: SSH brute force and
// credential stuffing against an OpenSSH server it starts, a port scan of
// closed ports, a web scan, exploit probes and login stuffing against a
// small web server writing an nginx access log. See package drill.
//
//	attackmap-drill demo [flags]     start a drill sensor with the map, run the drill (make drill)
//	attackmap-drill run [flags]      run the drill only
//	attackmap-drill overlay FILE     write the drill GeoIP overlay
//	attackmap-drill plan [--json]    list the attacks and what they should raise
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/attackmap/attackmap/drill"
	"github.com/attackmap/attackmap/internal/cli"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() { cli.Main("attackmap-drill", run) }

// errUsage marks a bad command line already explained on stderr: exit
// status 2, nothing more printed.
var errUsage = cli.Usage(cli.ErrReported)

// errFailed marks a drill whose failures were printed where they happened
// (a demo may report several attacks and the sensor's own error): exit
// status 1 without repeating them.
var errFailed = fmt.Errorf("drill failed: %w", cli.ErrReported)

const usage = `usage: attackmap-drill COMMAND [flags]

Real attacks against this machine, on loopback only, from 127.10.0.x
addresses, bounded in count and time, so a running attackmap sensor has
something to report. Commands:

  demo      start a sensor with the map that watches the drill, run the
            drill against it and keep the map up (what make drill does)
  run       run the drill only, for a sensor you started yourself
  overlay   FILE: write the drill GeoIP overlay (GeoIP2-City mmdb) to FILE
  plan      list the attacks, their source addresses, the incidents they
            should raise and where the overlay places them
  version   print the version (also --version)

Examples:
  sudo make drill                                  build, then attackmap-drill demo
  sudo attackmap-drill demo --listen :8081 --once  one drill, then stop
  attackmap-drill run --only web-scan,exploit-probe --dir /tmp/drill
  attackmap-drill plan

Run "attackmap-drill COMMAND --help" for a command's flags.

Exit status: 0 success, 1 an attack or the drill sensor failed (the sensor's
error is printed), 2 a bad command line.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "run":
		return runDrill(ctx, args[1:], getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], getenv, stdout, stderr)
	case "overlay":
		return runOverlay(args[1:], stdout, stderr)
	case "plan":
		return runPlan(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "attackmap-drill", version)
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "attackmap-drill: unknown command %q\n%s", args[0], usage)
	return errUsage
}

// parse parses a flag set. stop is true when the command must end here:
// -h printed the command's help on stdout (a clean exit, err nil), or a bad
// flag was one line on stderr pointing to the help (err is errUsage).
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (stop bool, err error) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return true, nil
		}
		fmt.Fprintf(stderr, "%s: %v (see '%s --help')\n", fs.Name(), err, fs.Name())
		return true, errUsage
	}
	fs.SetOutput(stderr)
	return false, nil
}

// drillDir is the default directory for the drill's files: env
// ATTACKMAP_DRILL_DIR, else data/drill (next to the sensor's data/).
func drillDir(getenv func(string) string) string {
	if d := getenv("ATTACKMAP_DRILL_DIR"); d != "" {
		return d
	}
	return filepath.Join("data", "drill")
}

func runDrill(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("attackmap-drill run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defDir := drillDir(getenv)
	dir := fs.String("dir", defDir, "directory for the drill's files (env ATTACKMAP_DRILL_DIR); the defaults below are in it")
	authLog := fs.String("auth-log", "", "file the drill sshd's log lines are appended to, in auth.log format\n(default DIR/auth.log; point the sensor's --auth-log at it)")
	accessLog := fs.String("access-log", "", "file the drill web server's nginx combined lines are appended to\n(default DIR/access.log; point the sensor's --access-log at it)")
	overlay := fs.String("overlay", "", "where to write the drill GeoIP overlay before attacking\n(default DIR/geoip-drill.mmdb; \"-\" writes none)")
	only := fs.String("only", "", "comma-separated attacks to run (default all): "+strings.Join(drill.Names(), ","))
	format := fs.String("format", drill.FormatBSD, "auth log stamps: bsd (\"Mar  2 14:32:01 host sshd[812]: ...\", Debian's rsyslog default)\nor rfc3339 (\"2026-03-02T14:32:01.123456+00:00 host sshd[812]: ...\")")
	hostname := fs.String("hostname", "", "syslog HOST field of the auth log lines (default the short host name)")
	sshd := fs.String("sshd", "", "OpenSSH server binary (default /usr/sbin/sshd, else sshd on PATH)")
	noInstall := fs.Bool("no-install", false, "do not apt-get install openssh-server when sshd is missing (it is installed\nonly when running as root; Debian's ssh service it starts is then disabled again)")
	timeout := fs.Duration("timeout", drill.DefaultTimeout, "bound on the whole drill (a run takes a few seconds; the rest is room for\ninstalling openssh-server)")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	verbose := fs.Bool("v", false, "log progress to stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: attackmap-drill run [flags]\n\n"+
			"Runs each attack from its own 127.10.0.x address against this machine on loopback:\n"+
			"a real sshd on a spare 127.0.0.1 port (Debian package openssh-server), closed ports\n"+
			"on 127.0.0.1, a web server on a spare 127.0.0.1 port. The sensor must read the two\n"+
			"log files, load the overlay first in its GeoIP list, and report loopback sources.\n\n"+
			"Examples:\n"+
			"  attackmap-drill run --dir /tmp/drill   then: attackmap-sensor run --auth-log /tmp/drill/auth.log \\\n"+
			"      --access-log /tmp/drill/access.log --include-private (GeoIP: /tmp/drill/geoip-drill.mmdb first)\n"+
			"  attackmap-drill run --only ssh-bruteforce,port-scan -v\n"+
			"  attackmap-drill run --json > report.json\n\n"+
			"Exit status: 0 every attack ran, 1 an attack failed, 2 a bad command line.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if stop, err := parse(fs, args, stdout, stderr); stop {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "attackmap-drill run: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	orDefault := func(v, name string) string {
		if v == "" {
			return filepath.Join(*dir, name)
		}
		return v
	}
	cfg := drill.Config{
		AuthLog:   orDefault(*authLog, "auth.log"),
		AccessLog: orDefault(*accessLog, "access.log"),
		Format:    *format,
		Hostname:  *hostname,
		SSHD:      *sshd,
		Install:   !*noInstall,
		Timeout:   *timeout,
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, p := range []string{cfg.AuthLog, cfg.AccessLog} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
	}
	if ov := orDefault(*overlay, "geoip-drill.mmdb"); ov != "-" {
		if err := drill.WriteOverlay(ov); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "overlay:    %s\n", ov)
	}
	fmt.Fprintf(stdout, "auth log:   %s\naccess log: %s\n\n", cfg.AuthLog, cfg.AccessLog)
	rep, err := drill.Run(ctx, cfg)
	if rep.Results == nil && err != nil {
		return cli.Usage(err) // bad configuration
	}
	var werr error
	if *asJSON {
		werr = rep.WriteJSON(stdout)
	} else {
		werr = rep.WriteText(stdout)
	}
	if werr != nil {
		return werr
	}
	if err != nil {
		return errFailed
	}
	return nil
}

func runOverlay(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("attackmap-drill overlay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: attackmap-drill overlay FILE\n\n"+
			"Writes the drill GeoIP overlay, a GeoIP2-City mmdb placing the drill's 127.10.0.x\n"+
			"attackers in real cities, to FILE (atomically). Only drills should load it.\n\n"+
			"Example:\n  attackmap-drill overlay /tmp/drill/geoip-drill.mmdb\n\n"+
			"Exit status: 0 written, 1 the file could not be written, 2 a bad command line.\n")
	}
	if stop, err := parse(fs, args, stdout, stderr); stop {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	if err := drill.WriteOverlay(fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintln(stdout, fs.Arg(0))
	return nil
}

func runPlan(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("attackmap-drill plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the plan as a JSON array")
	if stop, err := parse(fs, args, stdout, stderr); stop {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "attackmap-drill plan: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(drill.Plan())
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTACK\tFROM\tCOUNT\tEXPECT\tPLACED IN\tWHAT")
	for _, a := range drill.Plan() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s %s\t%s, %s (%.4f, %.4f)\t%s\n", a.Name, a.Addr, a.Planned,
			a.Source, a.Severity, a.Place.City, a.Place.Country, a.Place.Lat, a.Place.Lon, a.What)
	}
	return tw.Flush()
}
