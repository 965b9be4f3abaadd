// Package drill attacks this machine for real, on loopback only, so that a
// running sensor has something to see and the map lights up: SSH brute force
// and credential stuffing against a real OpenSSH server the drill starts, a
// TCP port scan of closed ports, and a web scan, exploit probes and login
// stuffing against a small HTTP server that writes an nginx combined access
// log. Each attack comes from its own 127.10.0.x address, is bounded in
// count and time, and is placed in a real city by a GeoIP overlay (Overlay,
// WriteOverlay) that only drills load.
//
// The sshd log lines go to Config.AuthLog with a syslog prefix, the access
// log lines to Config.AccessLog: point the sensor's --auth-log and
// --access-log at them (and let it report loopback sources). The port scan
// is seen by the sensor's eBPF probe events, so it needs no file.
//
// Plan lists what each attack should raise; Run returns when each attack's
// last log line was written (or last reset received), which is where the
// end-to-end test starts its latency clock.
package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// DefaultTimeout bounds a whole drill. A full run takes a second or two;
// the rest is room for a slow machine and for installing openssh-server.
const DefaultTimeout = 10 * time.Minute

// Config configures Run. The zero value runs nothing useful: set AuthLog
// and AccessLog.
type Config struct {
	// AuthLog receives the drill sshd's log lines, appended with a syslog
	// prefix (see Format). Empty skips the SSH attacks.
	AuthLog string
	// AccessLog receives the web server's nginx combined lines, appended.
	// Empty skips the web attacks.
	AccessLog string
	// Format of the auth log stamps: FormatBSD (default, Debian 12's
	// rsyslog) or FormatRFC3339.
	Format string
	// Hostname is the syslog HOST field; default the short host name.
	Hostname string
	// Only lists the attacks to run (PortScan, WebScan, ...); empty runs all.
	Only []string
	// SSHD is the sshd binary; default FindSSHD.
	SSHD string
	// Install lets Run install openssh-server with apt-get when sshd is
	// missing and Run is root.
	Install bool
	// ScanTarget is the address the port scan knocks on; default 127.0.0.1.
	// It must be a loopback address.
	ScanTarget netip.Addr
	// Timeout bounds the whole drill; default DefaultTimeout.
	Timeout time.Duration
	// Logger receives progress at debug level and problems; default discards.
	Logger *slog.Logger
	// ExpectBlock adds the Blocked phase after the SSH brute force: the
	// sensor watching the drill blocks the attacker (its response section
	// enabled, see DemoOptions.Block), and the attacker's next SSH
	// connection must be refused.
	ExpectBlock bool
}

// Result is what one attack did.
type Result struct {
	Attack
	// Count is the attempts made: failed SSH passwords, refused knocks,
	// answered HTTP requests.
	Count int `json:"count"`
	// Lines is the log lines written for the attacker's address (sshd lines
	// in the auth log, combined lines in the access log); 0 for the scan.
	Lines int `json:"lines"`
	// Statuses are the HTTP statuses of a web attack, in order.
	Statuses []int `json:"statuses,omitempty"`
	// Ports are the closed ports the scan knocked on.
	Ports []int `json:"ports,omitempty"`
	// Start is when the attack began; Last when its last log line was
	// written (SSH, web) or its last reset came back (scan).
	Start time.Time `json:"start"`
	Last  time.Time `json:"last,omitzero"`
	// Duration is Last - Start.
	Duration time.Duration `json:"duration_ns"`
	// Skipped says why the attack did not run; empty when it ran.
	Skipped string `json:"skipped,omitempty"`
	// Error says why the attack failed; empty when it succeeded.
	Error string `json:"error,omitempty"`
}

func (r *Result) fail(err error) {
	if r.Error == "" {
		r.Error = err.Error()
	}
}

// Report is what a drill did.
type Report struct {
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	AuthLog   string    `json:"auth_log,omitempty"`
	AccessLog string    `json:"access_log,omitempty"`
	SSHD      string    `json:"sshd,omitempty"` // "OpenSSH 9.2" when it ran
	Results   []Result  `json:"results"`
}

// Result returns the result of the named attack and whether it is there.
func (r *Report) Result(name string) (Result, bool) {
	for _, res := range r.Results {
		if res.Name == name {
			return res, true
		}
	}
	return Result{}, false
}

// WriteText writes the report as a table: per attack the source address,
// count, duration and the moment of its last line or packet.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTACK\tFROM\tCOUNT\tDURATION\tLAST LINE/PACKET (UTC)\tEXPECT\tPLACED IN")
	for _, res := range r.Results {
		status := ""
		switch {
		case res.Skipped != "":
			status = "skipped: " + res.Skipped
		case res.Error != "":
			status = "FAILED: " + res.Error
		}
		last := "-"
		if !res.Last.IsZero() {
			last = res.Last.UTC().Format("2006-01-02T15:04:05.000000Z")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s %s\t%s, %s\n", res.Name, res.Addr, res.Count,
			res.Duration.Round(time.Millisecond), last, res.Source, res.Severity, res.Place.City, res.Place.Country)
		if status != "" {
			fmt.Fprintf(tw, "  %s\t\t\t\t\t\t\n", status)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "drill ran %s", r.Finished.Sub(r.Started).Round(time.Millisecond))
	if r.SSHD != "" {
		fmt.Fprintf(w, " (sshd: %s)", r.SSHD)
	}
	fmt.Fprintln(w)
	return err
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Run performs the drill's attacks in plan order and returns what they did.
// The error joins every attack's failure; skipped attacks (no log file
// configured, not in Only) are not failures. Every process and temporary
// file Run creates is gone when it returns.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return Report{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	rep := Report{Started: time.Now(), AuthLog: cfg.AuthLog, AccessLog: cfg.AccessLog}

	errs := cfg.runAttacks(ctx, &rep)
	// Finished after the servers stopped: sshd's last line ("Received
	// signal 15; terminating.") is part of the drill.
	rep.Finished = time.Now()
	return rep, errors.Join(errs...)
}

// runAttacks starts the servers the selected attacks need, runs the
// attacks into rep.Results and stops the servers again.
func (cfg *Config) runAttacks(ctx context.Context, rep *Report) []error {
	log := cfg.Logger
	var needSSH, needWeb bool
	for _, a := range attacks {
		if cfg.runs(a.Name) {
			needSSH = needSSH || isSSH(a.Name) && cfg.AuthLog != ""
			needWeb = needWeb || isWeb(a.Name) && cfg.AccessLog != ""
		}
	}
	t := newTally()
	var srvSSH *sshd
	var errSSH error
	if needSSH {
		srvSSH, errSSH = cfg.startSSHD(ctx, t)
		defer srvSSH.stop()
		if srvSSH != nil {
			rep.SSHD = srvSSH.Version
		}
	}
	var srvWeb *webServer
	var errWeb error
	if needWeb {
		srvWeb, errWeb = startWeb(cfg.AccessLog, t, log)
		defer srvWeb.stop()
	}

	var errs []error
	for _, a := range attacks {
		var res Result
		switch {
		case !cfg.runs(a.Name):
			continue
		case isSSH(a.Name) && cfg.AuthLog == "":
			res = Result{Attack: a, Skipped: "no auth log configured"}
		case isWeb(a.Name) && cfg.AccessLog == "":
			res = Result{Attack: a, Skipped: "no access log configured"}
		case isSSH(a.Name) && errSSH != nil:
			res = Result{Attack: a, Error: errSSH.Error()}
		case isWeb(a.Name) && errWeb != nil:
			res = Result{Attack: a, Error: errWeb.Error()}
		case ctx.Err() != nil:
			res = Result{Attack: a, Error: fmt.Sprintf("not started: %v", ctx.Err())}
		case isSSH(a.Name):
			res = runSSHAttack(ctx, a, srvSSH, cfg.ExpectBlock && a.Name == SSHBruteForce)
		case isWeb(a.Name):
			res = runWebAttack(ctx, a, srvWeb)
		case a.Name == PortScan:
			res = runPortScan(ctx, a, cfg.ScanTarget)
		}
		if res.Error != "" {
			errs = append(errs, fmt.Errorf("%s: %s", a.Name, res.Error))
		}
		log.Debug("drill attack done", "attack", a.Name, "from", a.Addr, "count", res.Count,
			"duration", res.Duration, "err", res.Error, "skipped", res.Skipped)
		rep.Results = append(rep.Results, res)
		if a.Name == SSHBruteForce && cfg.ExpectBlock && res.Skipped == "" {
			b := runBlocked(ctx, res, srvSSH)
			if b.Error != "" {
				errs = append(errs, fmt.Errorf("%s: %s", Blocked, b.Error))
			}
			rep.Results = append(rep.Results, b)
		}
	}
	return errs
}

func (cfg *Config) setDefaults() error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch cfg.Format {
	case "":
		cfg.Format = FormatBSD
	case FormatBSD, FormatRFC3339:
	default:
		return fmt.Errorf("drill: unknown auth log format %q (want %s or %s)", cfg.Format, FormatBSD, FormatRFC3339)
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		// rsyslog writes the short name.
		cfg.Hostname, _, _ = strings.Cut(h, ".")
	}
	if !cfg.ScanTarget.IsValid() {
		cfg.ScanTarget = netip.MustParseAddr("127.0.0.1")
	}
	if !cfg.ScanTarget.Unmap().Is4() || !cfg.ScanTarget.IsLoopback() {
		return fmt.Errorf("drill: scan target %s is not an IPv4 loopback address", cfg.ScanTarget)
	}
	for _, n := range cfg.Only {
		if !slices.Contains(Names(), n) {
			return fmt.Errorf("drill: unknown attack %q (want one of %s)", n, strings.Join(Names(), ", "))
		}
	}
	return nil
}

func (cfg *Config) runs(name string) bool {
	return len(cfg.Only) == 0 || slices.Contains(cfg.Only, name)
}

// startSSHD finds (or installs) sshd and starts it.
func (cfg *Config) startSSHD(ctx context.Context, t *tally) (*sshd, error) {
	path := cfg.SSHD
	if path == "" {
		var err error
		path, err = FindSSHD()
		if err != nil && cfg.Install {
			if ierr := installSSHD(ctx, cfg.Logger); ierr != nil {
				return nil, ierr
			}
			path, err = FindSSHD()
		}
		if err != nil {
			return nil, err
		}
	}
	if os.Geteuid() != 0 {
		cfg.Logger.Warn("drill sshd runs unprivileged: it cannot read /etc/shadow, so its lines call root an invalid user; run as root for the lines a real server writes")
	}
	s, err := startSSHD(ctx, sshdOptions{
		Path: path, AuthLog: cfg.AuthLog, Format: cfg.Format, Hostname: cfg.Hostname, Log: cfg.Logger,
	}, t)
	if err != nil && os.Geteuid() != 0 {
		// OpenSSH runs unprivileged for password checks of its own, but
		// a distribution may build it otherwise: name the likely cause.
		err = fmt.Errorf("%w (running as uid %d; try as root)", err, os.Geteuid())
	}
	return s, err
}
