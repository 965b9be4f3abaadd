package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/attackmap/attackmap/drill"
	"github.com/attackmap/attackmap/incident"
)

// sensorStartTimeout bounds the wait for the sensor's relay to answer: it
// loads eBPF programs and GeoIP databases first, which takes a second or
// two on a busy machine.
const sensorStartTimeout = 30 * time.Second

// deliveryGrace is how long --once waits after the last attack before it
// stops the sensor, so the last incidents reach the relay and the map.
const deliveryGrace = 5 * time.Second

// runDemo is `make drill`: it prepares a drill sensor setup, starts the
// sensor with its relay and map, runs the drill against it and keeps the map
// up until Ctrl-C.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("attackmap-drill demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defDir := drillDir(getenv)
	dir := fs.String("dir", defDir, "directory for the drill sensor's configuration, logs, overlay and data (env ATTACKMAP_DRILL_DIR)")
	sensor := fs.String("sensor", "bin/attackmap-sensor", "the attackmap-sensor binary to start")
	listen := fs.String("listen", ":8080", "address the drill sensor serves the relay and the map on")
	rounds := fs.Int("rounds", 1, "how many times to run the drill (1 to 100)")
	interval := fs.Duration("interval", 20*time.Second, "pause between rounds")
	once := fs.Bool("once", false, "stop the sensor and exit after the drill instead of keeping the map up")
	block := fs.Bool("block", os.Geteuid() == 0, "turn the drill sensor's blocking on (nftables, table "+drill.DemoNFTable+
		", TTL "+drill.DemoBlockTTL+") and check the blocked phase: the SSH brute forcer's next connection is refused and the map says blocked (default: on when root)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: attackmap-drill demo [flags]\n\n"+
			"Starts a sensor (with the relay and the map inside, --serve) that reads the drill's\n"+
			"logs and places the drill's 127.10.0.x attackers with the drill GeoIP overlay, runs\n"+
			"the drill against this machine and keeps the map up until Ctrl-C. If the sensor does\n"+
			"not come up (a port in use, a bad configuration), it prints the sensor's error and exits 1.\n\n"+
			"Examples:\n"+
			"  sudo attackmap-drill demo                          what make drill runs\n"+
			"  sudo attackmap-drill demo --listen :8081 --rounds 3 --interval 1m\n"+
			"  attackmap-drill demo --once --block=false          one drill without root's blocking, then exit\n\n"+
			"Exit status: 0 success (Ctrl-C), 1 the sensor did not come up or stopped, or an\n"+
			"attack failed, 2 a bad command line.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if stop, err := parse(fs, args, stdout, stderr); stop {
		return err
	}
	if *rounds < 1 || *rounds > 100 {
		fmt.Fprintln(stderr, "attackmap-drill demo: --rounds must be between 1 and 100")
		return errUsage
	}
	files, err := drill.WriteDemoWith(*dir, drill.DemoOptions{Block: *block})
	if err != nil {
		return err
	}
	logPath := filepath.Join(files.Dir, "sensor.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(*sensor, "run", "--config", files.Config, "--serve", *listen)
	// The sensor prints "map at URL" once its listener is bound: until
	// then a /healthz answer on the port may come from another program
	// holding it (the sensor then dies with "address already in use").
	ready := &lineWatch{prefix: []byte("attackmap-sensor: map at "), seen: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.MultiWriter(logf, ready), logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the sensor: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-waited:
		case <-time.After(10 * time.Second): // a clean stop takes well under a second
			_ = cmd.Process.Kill()
			<-waited
		}
	}()
	base := "http://" + localAddr(*listen)
	if err := waitHealthy(ctx, base+"/healthz", ready.seen, waited); err != nil {
		if why := sensorError(logPath); why != "" {
			err = fmt.Errorf("%w: %s", err, why)
		}
		fmt.Fprintf(stderr, "attackmap-drill: the sensor did not come up (log: %s): %v\n", logPath, err)
		return errFailed
	}
	fmt.Fprintf(stdout, "drill sensor running (log: %s)\nmap at %s/live\n\n", logPath, base)

	cfg := drill.Config{AuthLog: files.AuthLog, AccessLog: files.AccessLog, Format: drill.FormatRFC3339,
		Install: true, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		ExpectBlock: *block}
	if *block {
		// Whatever happens, leave no drill block behind.
		defer unblockDrill(*sensor, files.Config, stderr)
	}
	var failed bool
	for i := range *rounds {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(*interval):
			}
		}
		rep, err := drill.Run(ctx, cfg)
		if werr := rep.WriteText(stdout); werr != nil {
			return werr
		}
		if err != nil {
			failed = true
			fmt.Fprintf(stderr, "attackmap-drill: %v\n", err)
		}
		if *block {
			if err := checkBlockedOnMap(ctx, base, rep, stdout); err != nil {
				failed = true
				fmt.Fprintf(stderr, "attackmap-drill: blocked phase: %v\n", err)
			}
			// The next round attacks from the same addresses again.
			unblockDrill(*sensor, files.Config, stderr)
		}
	}
	if *once {
		select {
		case <-ctx.Done():
		case <-time.After(deliveryGrace):
		}
	} else {
		fmt.Fprintf(stdout, "\nmap at %s/live - Ctrl-C stops the drill sensor\n", base)
		select {
		case <-ctx.Done():
		case err := <-waited:
			waited <- err
			why := sensorError(logPath)
			if why == "" && err != nil {
				why = err.Error()
			}
			fmt.Fprintf(stderr, "attackmap-drill: the sensor stopped (log: %s): %s\n", logPath, why)
			failed = true
		}
	}
	if failed {
		return errFailed
	}
	return nil
}

// mapWait bounds the wait for the blocked incident to reach the map: the
// block follows the detection by milliseconds and the update is pushed like
// any incident, so 15 s only trips when something is broken.
const mapWait = 15 * time.Second

// checkBlockedOnMap waits until the relay's feed shows the SSH brute
// forcer's incident with a "blocked" action.
func checkBlockedOnMap(ctx context.Context, base string, rep drill.Report, stdout io.Writer) error {
	res, ok := rep.Result(drill.Blocked)
	if !ok || res.Skipped != "" || res.Error != "" {
		return errors.New("the attacker was not refused, so the map cannot show it blocked")
	}
	ctx, cancel := context.WithTimeout(ctx, mapWait)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/live-feed?limit=500", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var feed []incident.Incident
			err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&feed)
			resp.Body.Close()
			for i := len(feed) - 1; err == nil && i >= 0; i-- {
				in := feed[i]
				if in.IP == res.Addr.String() && in.Source == res.Source && strings.HasPrefix(in.Action, "blocked") {
					fmt.Fprintf(stdout, "blocked phase: %s refused %s after the brute force's last line; the map says %q\n",
						res.Addr, res.Duration.Round(time.Millisecond), in.Action)
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the map does not show %s as blocked after %s", res.Addr, mapWait)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// unblockDrill removes the drill sensor's blocks and table
// (`attackmap-sensor block flush`).
func unblockDrill(sensor, config string, stderr io.Writer) {
	out, err := exec.Command(sensor, "block", "flush", "--config", config).CombinedOutput()
	if err != nil {
		fmt.Fprintf(stderr, "attackmap-drill: block flush: %v: %s", err, out)
	}
}

// localAddr turns a listen address into one to connect to.
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// waitHealthy waits until the sensor said its listener is bound (ready)
// and url answers 200, or the sensor exits, or the start timeout passes.
// Polling is fine here: it is a one-off start-up wait.
func waitHealthy(ctx context.Context, url string, ready <-chan struct{}, exited chan error) error {
	ctx, cancel := context.WithTimeout(ctx, sensorStartTimeout)
	defer cancel()
	select {
	case <-ready:
	case err := <-exited:
		exited <- err
		return fmt.Errorf("sensor exited: %v", err)
	case <-ctx.Done():
		return fmt.Errorf("the sensor did not start serving within %s", sensorStartTimeout)
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("sensor exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lineWatch closes seen when a line written to it starts with prefix.
type lineWatch struct {
	prefix []byte
	seen   chan struct{}
	buf    []byte
	done   bool
}

func (l *lineWatch) Write(p []byte) (int, error) {
	if l.done {
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		if bytes.HasPrefix(l.buf[:i], l.prefix) {
			l.done, l.buf = true, nil
			close(l.seen)
			return len(p), nil
		}
		l.buf = l.buf[i+1:]
	}
	// A line is at most a few hundred bytes; a writer that never ends one
	// is not the sensor.
	if len(l.buf) > 64<<10 {
		l.buf = l.buf[len(l.buf)-len(l.prefix):]
	}
	return len(p), nil
}

// sensorError is the sensor's fatal error from its log: the last line
// starting "attackmap-sensor: " other than the map line (cli.Exit prints
// it as the process ends), or "" when there is none.
func sensorError(logPath string) string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if strings.HasPrefix(l, "attackmap-sensor: ") && !strings.HasPrefix(l, "attackmap-sensor: map at ") {
			return incident.CleanText(l, 400)
		}
	}
	return ""
}
