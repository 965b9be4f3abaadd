// Command attackmap-sensor is the attackmap host daemon: `run` watches the
// host and pushes incidents to relays, `detect` replays log files through
// the same detectors and prints the incidents, `block` lists and changes
// the blocks the responder keeps, `geoip status` says which GeoIP databases
// the sensor would load. See docs/DESIGN.md ("Command lines").
package main

import (
	"context"
	"fmt"
	"io"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/cli"
	"github.com/attackmap/attackmap/sensor/daemon"
	"github.com/attackmap/attackmap/sensor/detectcmd"
)

// version is set at build time (-ldflags "-X main.version=...", see the
// Makefile).
var version = "dev"

func main() { cli.Main("attackmap-sensor", run) }

const usage = `attackmap-sensor: the attackmap host sensor.

Usage:
  attackmap-sensor run [flags]        watch this host and push incidents to relays
  attackmap-sensor detect [flags]     replay log files through the detectors, print incidents
  attackmap-sensor block COMMAND      list, add, remove or flush the responder's blocks
  attackmap-sensor geoip status       which GeoIP databases the sensor loads, how old
  attackmap-sensor version            print the version (also --version)

Examples:
  # everything on one machine, map at http://localhost:8080/live
  attackmap-sensor run --serve :8080
  # push to a relay (token from "attackmap-relay token add")
  ATTACKMAP_TOKEN=... attackmap-sensor run --relay wss://relay.example.org --data /var/lib/attackmap
  # what would yesterday's auth.log have raised?
  attackmap-sensor detect --auth-log /var/log/auth.log.1
  # is a GeoIP database in place?
  attackmap-sensor geoip status --data /var/lib/attackmap

Run "attackmap-sensor COMMAND --help" for a command's flags and examples.

` + cli.ExitHelp

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return cli.Usagef("no command (see 'attackmap-sensor --help')")
	}
	switch args[0] {
	case "run":
		return daemon.Run(ctx, args[1:], env, stdout, stderr, embedRelay)
	case "detect":
		return detectcmd.Run(ctx, args[1:], stdout, stderr)
	case "block":
		return daemon.Block(ctx, args[1:], stdout)
	case "geoip":
		return daemon.GeoIP(args[1:], stdout)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "attackmap-sensor", version)
		return nil
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return cli.Usagef("unknown command %q (see 'attackmap-sensor --help')", incident.CleanText(args[0], 40))
}
