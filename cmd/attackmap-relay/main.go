// Command attackmap-relay is attackmap's public edge relay: sensors push
// incidents to it over an authenticated WebSocket and browsers follow them
// as Server-Sent Events.
//
//	attackmap-relay serve --listen :8080 --data ./relay-data --token-file tokens [--allow-origin ORIGIN]...
//	attackmap-relay token add --token-file tokens NAME [--lat L --lon L]
//
// Run "attackmap-relay serve -h" for every option.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay"
	"github.com/attackmap/attackmap/relay/token"
	"github.com/attackmap/attackmap/static"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is a bad command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "attackmap-relay:", err)
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

const usage = `attackmap-relay: the attackmap edge relay.

Usage:
  attackmap-relay serve --listen ADDR --data DIR --token-file FILE [--allow-origin ORIGIN]... [options]
  attackmap-relay token add --token-file FILE NAME [--lat L --lon L]
  attackmap-relay version

Run "attackmap-relay serve -h" or "attackmap-relay token add -h" for details.
`

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("missing command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], env, stderr)
	case "token":
		if len(args) < 2 || args[1] != "add" {
			fmt.Fprint(stderr, usage)
			return usagef("token: want \"token add\"")
		}
		return tokenAdd(args[2:], env, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "attackmap-relay", version)
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", incident.CleanText(args[0], 40))
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func envOr(env func(string) string, key, def string) string {
	if v := env(key); v != "" {
		return v
	}
	return def
}

func serve(ctx context.Context, args []string, env func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	// A bad flag is one line on stderr (exitCode prints it); only -h
	// prints the usage.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: attackmap-relay serve --listen ADDR --data DIR --token-file FILE [options]

Runs the relay: sensors push incidents to /api/ingest (WebSocket, bearer
token), browsers read /api/live-feed, /api/live-feed/stream (SSE),
/api/live-feed.geojson and /api/stats; /live serves the map. SIGINT or
SIGTERM stops it gracefully (stop accepting, close streams, flush history).

Options (environment defaults in brackets):
`)
		fs.PrintDefaults()
	}
	var origins listFlag
	listen := fs.String("listen", envOr(env, "ATTACKMAP_LISTEN", ":8080"), "address to listen on, host:port [ATTACKMAP_LISTEN]")
	data := fs.String("data", envOr(env, "ATTACKMAP_DATA", "./relay-data"), "directory for the history (history-YYYY-MM-DD.jsonl), sequence state and mask key [ATTACKMAP_DATA]")
	tokenFile := fs.String("token-file", env("ATTACKMAP_TOKEN_FILE"), "sensor token file, one \"NAME SHA256-HEX [LAT LON]\" line per host; create lines with \"token add\"; re-read when it changes [ATTACKMAP_TOKEN_FILE]")
	fs.Var(&origins, "allow-origin", "origin allowed to read the API from a browser (CORS), e.g. https://map.example.org; repeatable; \"*\" allows any [ATTACKMAP_ALLOW_ORIGIN, comma-separated]")
	maskIP := fs.Bool("mask-ip", false, "mask attacker addresses before publishing: IPv4 to /24, IPv6 to /48; ids become keyed hashes")
	coarse := fs.Bool("coarse-target", false, "round target (sensor host) coordinates to whole degrees before publishing")
	ring := fs.Int("ring", relay.DefaultRingSize, "recent incidents kept in memory for the feed, GeoJSON, de-duplication and Last-Event-ID resume")
	retention := fs.Int("retention-days", relay.DefaultRetentionDays, "days of history files to keep; -1 keeps them for ever")
	maxSubs := fs.Int("max-subscribers", relay.DefaultMaxSubscribers, "SSE streams in total, beyond which the relay answers 503 with Retry-After; -1 for no cap")
	maxPerAddr := fs.Int("max-subscribers-per-addr", relay.DefaultMaxSubscribersPerAddr, "SSE streams per client address (IPv6 per /64), beyond which the relay answers 429 with Retry-After; -1 for no cap")
	clientIPHeader := fs.String("client-ip-header", "", "take the client address for the per-address cap from this header set by a trusted reverse proxy (X-Forwarded-For, X-Real-IP); only behind a proxy that overwrites it")
	rate := fs.Float64("ingest-rate", relay.DefaultIngestRate, "incidents per second per sensor token; a faster sensor is slowed down, never refused; -1 for no limit")
	burst := fs.Int("ingest-burst", relay.DefaultIngestBurst, "token bucket size for --ingest-rate (at least 100, one full batch)")
	logLevel := fs.String("log-level", envOr(env, "ATTACKMAP_LOG_LEVEL", "info"), "debug, info, warn or error [ATTACKMAP_LOG_LEVEL]")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.Usage()
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("serve: unexpected argument %q", incident.CleanText(fs.Arg(0), 40))
	}
	if len(origins) == 0 {
		for _, o := range strings.Split(env("ATTACKMAP_ALLOW_ORIGIN"), ",") {
			if o = strings.TrimSpace(o); o != "" {
				origins = append(origins, o)
			}
		}
	}
	if *tokenFile == "" {
		return usagef("serve: --token-file is required (create one with \"attackmap-relay token add --token-file FILE NAME\")")
	}
	if *ring < 1 {
		return usagef("serve: --ring must be at least 1")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("serve: --log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *retention == 0 {
		*retention = -1 // 0 on the command line also means "keep"
	}
	r, err := relay.New(relay.Config{
		DataDir:               *data,
		TokenFile:             *tokenFile,
		AllowOrigins:          origins,
		MaskIP:                *maskIP,
		CoarseTarget:          *coarse,
		RingSize:              *ring,
		RetentionDays:         *retention,
		Site:                  static.Handler(), // the map, embedded (make static)
		Logger:                log,
		MaxSubscribers:        *maxSubs,
		MaxSubscribersPerAddr: *maxPerAddr,
		ClientIPHeader:        *clientIPHeader,
		IngestRate:            *rate,
		IngestBurst:           *burst,
	})
	if err != nil {
		// An unreadable or malformed token file, an unusable data
		// directory: configuration the operator must fix, status 2.
		return usageError{err}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		_ = r.Close()
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("relay listening", "addr", ln.Addr().String(), "version", version)
	serr := r.Serve(ctx, ln)
	cerr := r.Close()
	if serr != nil {
		return serr
	}
	if cerr == nil {
		log.Info("relay stopped")
	}
	return cerr
}

func tokenAdd(args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token add", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // see serve
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: attackmap-relay token add --token-file FILE NAME [--lat L --lon L]

Creates a token for the sensor host NAME, appends "NAME SHA256-HEX [LAT LON]"
to FILE (created with mode 0600) and prints the token once on stdout. The
relay keeps only the hash. NAME becomes the "host" of that sensor's
incidents; --lat/--lon its "target" on the map.

Options:
`)
		fs.PrintDefaults()
	}
	file := fs.String("token-file", env("ATTACKMAP_TOKEN_FILE"), "token file to append to [ATTACKMAP_TOKEN_FILE]")
	lat := fs.String("lat", "", "latitude of the host, -90 to 90")
	lon := fs.String("lon", "", "longitude of the host, -180 to 180")
	// Flags may come before or after NAME.
	var names []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stderr)
				fs.Usage()
				return err
			}
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(names) != 1 {
		fs.Usage()
		return usagef("token add: want exactly one NAME, got %d", len(names))
	}
	if *file == "" {
		return usagef("token add: --token-file is required")
	}
	var target *incident.Location
	switch {
	case *lat == "" && *lon == "":
	case *lat == "" || *lon == "":
		return usagef("token add: give both --lat and --lon, or neither")
	default:
		la, err1 := strconv.ParseFloat(*lat, 64)
		lo, err2 := strconv.ParseFloat(*lon, 64)
		if err1 != nil || err2 != nil {
			return usagef("token add: --lat and --lon must be numbers")
		}
		if err := token.CheckLocation(la, lo); err != nil {
			return usagef("token add: %v", err)
		}
		target = &incident.Location{Lat: la, Lon: lo}
	}
	if err := token.CheckName(names[0]); err != nil {
		return usagef("token add: %v", err)
	}
	tok, err := token.Add(*file, names[0], target)
	if err != nil {
		return usageError{err} // an unreadable or malformed token file: status 2
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
