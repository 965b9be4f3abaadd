package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/cli"
	"github.com/attackmap/attackmap/sensor/respond"
)

const blockUsage = `usage: attackmap-sensor block list|stats [--config FILE] [--data DIR] [--json]
       attackmap-sensor block add ADDR [--ttl D] [--force] [--config FILE] [--data DIR]
       attackmap-sensor block remove ADDR [--config FILE] [--data DIR]
       attackmap-sensor block flush [--config FILE] [--data DIR]

Manages the sensor's blocks. With the sensor running, the command goes
through its control socket (DATA/response.sock), so the sensor's state and
the kernel change together; with the sensor stopped, it edits the state
file and the kernel directly.

  list    the blocks in place: address, expiry, TTL, the incident that
          caused it, and whether the kernel holds it
  stats   the responder's counters (running sensor only)
  add     block ADDR for --ttl (default: the TTL ladder's step for ADDR:
          1h, then 24h, then 7d); refuses the addresses the safety rules
          protect (allow list, own, relay, private, SSH session) unless
          --force
  remove  unblock ADDR
  flush   remove the kernel table (or XDP program) and every block

Examples:
  attackmap-sensor block list --config /etc/attackmap/sensor.json
  attackmap-sensor block add 203.0.113.7 --ttl 24h
  attackmap-sensor block remove 203.0.113.7
  attackmap-sensor block flush --data /var/lib/attackmap

Exit status: 0 success, 1 the change failed (kernel, socket, state file),
2 a bad command line or configuration.

Flags:
`

// Block implements `attackmap-sensor block` (args exclude "block").
func Block(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("attackmap-sensor block", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		configPath = fs.String("config", "", "the sensor's JSON configuration `file` (for data_dir and the response section)")
		dataDir    = fs.String("data", "", "the sensor's data `directory` (default: the configuration's, ./data)")
		ttl        = fs.String("ttl", "", "with add: how long to block, e.g. 90m, 24h, 7d")
		force      = fs.Bool("force", false, "with add: block even an address the safety rules protect")
		asJSON     = fs.Bool("json", false, "with list and stats: print JSON")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), blockUsage)
		fs.PrintDefaults()
	}
	// Flags may come before or after the positional arguments.
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fs.Usage()
				return nil
			}
			return cli.FlagError("attackmap-sensor block", err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) == 0 {
		return cli.Usagef("block: no command: want list, stats, add, remove or flush (see 'attackmap-sensor block --help')")
	}
	req := respond.Request{Op: pos[0], TTL: *ttl, Force: *force}
	switch req.Op {
	case "list", "flush", "stats":
		if len(pos) != 1 {
			return cli.Usagef("block %s: unexpected argument %q", req.Op, incident.CleanText(pos[1], 40))
		}
	case "add", "remove":
		if len(pos) != 2 {
			return cli.Usagef("block %s: want one address", req.Op)
		}
		req.Addr = pos[1]
	default:
		return cli.Usagef("block: unknown command %q (see 'attackmap-sensor block --help')", incident.CleanText(req.Op, 40))
	}
	if req.TTL != "" && req.Op != "add" {
		return cli.Usagef("block: --ttl goes with add")
	}
	if req.TTL != "" {
		if d, err := respond.ParseDuration(req.TTL); err != nil || d < time.Second {
			return cli.Usagef("block: --ttl %q: want a duration of at least 1s (90m, 24h, 7d)", req.TTL)
		}
	}

	cfg, err := loadConfig(*configPath)
	if err != nil {
		return cli.Usage(err)
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if err := cfg.check(); err != nil {
		return cli.Usage(err)
	}

	rep, err := respond.Call(ctx, cfg.DataDir, req)
	if errors.Is(err, respond.ErrNotRunning) {
		if req.Op == "stats" {
			return errors.New("block stats: no sensor running on " + cfg.DataDir)
		}
		relays := make([]string, 0, len(cfg.Relays))
		for _, rc := range cfg.Relays {
			relays = append(relays, rc.URL)
		}
		rep, err = respond.Direct(ctx, respond.Options{Config: cfg.Response, DataDir: cfg.DataDir,
			Relays: relays, RetentionDays: cfg.Retention.Days}, req)
	}
	if err != nil {
		return err
	}
	if rep.Error != "" {
		return errors.New("block " + req.Op + ": " + rep.Error)
	}
	return printBlock(stdout, req, rep, *asJSON)
}

func printBlock(w io.Writer, req respond.Request, rep respond.Reply, asJSON bool) error {
	switch req.Op {
	case "list":
		if asJSON {
			if rep.Entries == nil {
				rep.Entries = []respond.ListEntry{}
			}
			return json.NewEncoder(w).Encode(rep.Entries)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ADDRESS\tEXPIRES\tTTL\tSOURCE\tKERNEL\tINCIDENT")
		for _, e := range rep.Entries {
			kernel := "yes"
			switch {
			case e.Unknown:
				kernel = "yes (not in state)"
			case !e.InKernel:
				kernel = "no"
			}
			exp := "-"
			if !e.Expires.IsZero() {
				exp = e.Expires.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Addr, exp, dash(e.TTL), dash(e.Source), kernel, dash(e.Incident))
		}
		return tw.Flush()
	case "stats":
		enc := json.NewEncoder(w)
		if !asJSON {
			enc.SetIndent("", "  ")
		}
		return enc.Encode(rep.Stats)
	case "add":
		if rep.Entry != nil {
			fmt.Fprintf(w, "blocked %s until %s\n", rep.Entry.Addr, rep.Entry.Expires.UTC().Format(time.RFC3339))
		}
	case "remove":
		fmt.Fprintf(w, "unblocked %s\n", req.Addr)
	case "flush":
		fmt.Fprintln(w, "flushed: table and blocks removed")
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
