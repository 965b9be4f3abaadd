// Command attackmap-sensor is the attackmap host daemon: `run` watches the
// host and pushes incidents to relays, `detect` replays log files through
// the same detectors and prints the incidents, `block` lists and changes
// the blocks the responder keeps. See docs/DESIGN.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/attackmap/attackmap/sensor/daemon"
	"github.com/attackmap/attackmap/sensor/detectcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "attackmap-sensor:", err)
		os.Exit(2)
	}
}

const usage = `usage: attackmap-sensor run [flags]      run the sensor daemon (run --help for flags)
       attackmap-sensor detect [flags]   replay log files through the detectors
       attackmap-sensor block list|add ADDR [--ttl D]|remove ADDR|flush
                                         manage the blocks (block --help)`

func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("no command\n" + usage)
	}
	switch args[0] {
	case "run":
		return daemon.Run(ctx, args[1:], env, stdout, stderr)
	case "detect":
		return detectcmd.Run(ctx, args[1:], stdout, stderr)
	case "block":
		return daemon.Block(ctx, args[1:], stdout)
	case "help", "-h", "--help", "-help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}
