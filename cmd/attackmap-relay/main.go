// Command attackmap-relay is attackmap's public edge relay: sensors push
// incidents to it over an authenticated WebSocket and browsers follow them
// as Server-Sent Events.
//
//	attackmap-relay serve --listen :8080 --data ./relay-data --token-file tokens [--allow-origin ORIGIN]...
//	attackmap-relay token add --token-file tokens NAME [--lat L --lon L]
//	attackmap-relay token list --token-file tokens
//	attackmap-relay token remove --token-file tokens NAME
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
	"strconv"
	"strings"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/cli"
	"github.com/attackmap/attackmap/relay"
	"github.com/attackmap/attackmap/relay/token"
	"github.com/attackmap/attackmap/static"
)

var version = "dev"

func main() { cli.Main("attackmap-relay", run) }

const usage = `attackmap-relay: the attackmap edge relay.

Usage:
  attackmap-relay serve --listen ADDR --data DIR --token-file FILE [--allow-origin ORIGIN]... [options]
  attackmap-relay token add --token-file FILE NAME [--lat L --lon L]
  attackmap-relay token list --token-file FILE
  attackmap-relay token remove --token-file FILE NAME
  attackmap-relay version

Examples:
  attackmap-relay token add --token-file /etc/attackmap/tokens web-1 --lat 50.11 --lon 8.68
  attackmap-relay serve --listen :8080 --data /var/lib/attackmap-relay \
      --token-file /etc/attackmap/tokens --allow-origin https://map.example.org
  attackmap-relay token list --token-file /etc/attackmap/tokens
  attackmap-relay token remove --token-file /etc/attackmap/tokens web-1

Run "attackmap-relay serve --help" or "attackmap-relay token add --help" for details.

Exit status: 0 success, 1 runtime failure (a port in use, a storage error),
2 bad command line or configuration (token file, data directory).
`

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return cli.Usagef("missing command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], env, stdout, stderr)
	case "token":
		sub := ""
		if len(args) >= 2 {
			sub = args[1]
		}
		switch sub {
		case "-h", "-help", "--help", "help":
			fmt.Fprint(stdout, usage)
			return nil
		case "add":
			return tokenAdd(args[2:], env, stdout)
		case "list":
			return tokenList(args[2:], env, stdout)
		case "remove":
			return tokenRemove(args[2:], env, stdout)
		}
		return cli.Usagef("token: want \"token add\", \"token list\" or \"token remove\" (see 'attackmap-relay token --help')")
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "attackmap-relay", version)
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return cli.Usagef("unknown command %q (see 'attackmap-relay --help')", incident.CleanText(args[0], 40))
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func envOr(env func(string) string, key, def string) string {
	if v := env(key); v != "" {
		return v
	}
	return def
}

// serveUsage is the head of `serve --help`; the flags follow it.
const serveUsage = `Usage: attackmap-relay serve --listen ADDR --data DIR --token-file FILE [options]

Runs the relay: sensors push incidents to /api/ingest (WebSocket, bearer
token), browsers read /api/live-feed, /api/live-feed/stream (SSE),
/api/live-feed.geojson and /api/stats; /live serves the map. SIGINT or
SIGTERM stops it gracefully (stop accepting, close streams, stop NATS).

Storage is a NATS JetStream stream. With no --nats flags the relay runs an
embedded single-node NATS server (file store under --data/nats, every write
fsynced before a sensor is acknowledged, no network port). --nats-listen
with --nats-routes clusters the embedded servers of several relays (the
stream then has 3 replicas; an ack means a quorum stored it); --nats joins
an existing NATS cluster instead. SSE ids are the stream's sequence numbers,
so a browser resumes on any relay of a cluster. GET /api/history reads the
stream by time.
Prometheus metrics are served on --metrics-listen only, never on --listen.

Fixed bounds against hostile clients: 10 s to send a request head; no
request may carry a body (413 at once); every answer other than a stream
gets 10 s per 32 KiB written and 2 min in all, after which the connection
is reset; idle keep-alive connections close after 60 s; a stream that
cannot take its data for 5 s, or falls 1,024 incidents behind, is cut off;
a stream whose client closes is removed at once.

Examples:
  attackmap-relay serve --listen :8080 --data /var/lib/attackmap-relay --token-file /etc/attackmap/tokens
  ATTACKMAP_TOKEN_FILE=/etc/attackmap/tokens attackmap-relay serve --mask-ip --coarse-target
  attackmap-relay serve --listen 127.0.0.1:8080 --client-ip-header X-Forwarded-For ...   (behind nginx)
  attackmap-relay serve --nats-listen 10.0.0.1:6222 \
      --nats-routes nats://10.0.0.1:6222,nats://10.0.0.2:6222,nats://10.0.0.3:6222 ...   (one of three)

Exit status: 0 after SIGINT or SIGTERM, 1 a runtime failure (a port in
use, a storage error), 2 a bad flag, token file or data directory.

Options (environment defaults in brackets):
`

func serve(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	// A bad flag is one line on stderr (cli.Exit prints it); only -h
	// prints the usage.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	var origins listFlag
	listen := fs.String("listen", envOr(env, "ATTACKMAP_LISTEN", ":8080"), "address to listen on, host:port [ATTACKMAP_LISTEN]")
	data := fs.String("data", envOr(env, "ATTACKMAP_DATA", "./relay-data"), "directory for the embedded NATS server's stream (nats/) and the mask key; history files of an older relay found there are imported once [ATTACKMAP_DATA]")
	tokenFile := fs.String("token-file", env("ATTACKMAP_TOKEN_FILE"), "sensor token file, one \"NAME SHA256-HEX [LAT LON]\" line per host; create lines with \"token add\"; re-read when it changes [ATTACKMAP_TOKEN_FILE]")
	fs.Var(&origins, "allow-origin", "origin allowed to read the API from a browser (CORS), e.g. https://map.example.org; repeatable; \"*\" allows any [ATTACKMAP_ALLOW_ORIGIN, comma-separated]")
	maskIP := fs.Bool("mask-ip", false, "mask attacker addresses before publishing: IPv4 to /24, IPv6 to /48; ids become keyed hashes")
	coarse := fs.Bool("coarse-target", false, "round target (sensor host) coordinates to whole degrees before publishing")
	ring := fs.Int("ring", relay.DefaultRingSize, "recent incidents kept in memory for the feed, GeoJSON, de-duplication and Last-Event-ID resume")
	retention := fs.Int("retention-days", relay.DefaultRetentionDays, "days of history the stream keeps; -1 keeps it for ever (within the byte budget)")
	maxSubs := fs.Int("max-subscribers", relay.DefaultMaxSubscribers, "SSE streams in total, beyond which the relay answers 503 with Retry-After; -1 for no cap")
	maxPerAddr := fs.Int("max-subscribers-per-addr", relay.DefaultMaxSubscribersPerAddr, "SSE streams per client address (IPv6 per /64), beyond which the relay answers 429 with Retry-After; -1 for no cap")
	maxPerNet := fs.Int("max-subscribers-per-net", relay.DefaultMaxSubscribersPerNet, "SSE streams per network (IPv4 /24, IPv6 /48), beyond which the relay answers 429, so one site cannot fill --max-subscribers from many IPv6 /64s; -1 for no cap")
	maxConns := fs.Int("max-conns", 0, "open connections of every kind (API, streams, ingest, unfinished requests), beyond which a new one gets 503 and is closed at once; 0 means the open file limit minus 128 descriptors kept for the relay's files; -1 for no cap")
	maxConnsPerAddr := fs.Int("max-conns-per-addr", relay.DefaultMaxConnsPerAddr, "open connections per client address (IPv6 per /64), beyond which a new one gets 429 and is closed at once; with --client-ip-header, requests in progress per forwarded address; keep it above --max-subscribers-per-addr; -1 for no cap")
	resumeWindow := fs.Int("resume-window", relay.DefaultResumeWindow, "most incidents replayed to a stream resuming from Last-Event-ID; an older resume point gets \"event: reset\" and the newest this many")
	metricsListen := fs.String("metrics-listen", envOr(env, "ATTACKMAP_METRICS_LISTEN", "127.0.0.1:9464"), "address for Prometheus metrics (GET /metrics), kept off the public --listen; empty disables [ATTACKMAP_METRICS_LISTEN]")
	clientIPHeader := fs.String("client-ip-header", "", "take the client address for the per-address caps from this header set by a trusted reverse proxy (X-Forwarded-For, X-Real-IP); only behind a proxy that overwrites it")
	maxIngest := fs.Int("max-ingest-per-token", relay.DefaultMaxIngestPerToken, "ingest connections one sensor token may hold at once; a further one is closed with 1013 (try again later); -1 for no cap")
	histCapToken := fs.Int64("history-cap-per-token", relay.DefaultHistoryCapPerToken, "bytes of history one sensor token may add per UTC day; a batch over it is not acknowledged (the sensor keeps it and retries) and is logged; -1 for no cap")
	histCap := fs.Int64("history-cap", relay.DefaultHistoryCapTotal, "bytes of history all sensors together may add per UTC day; the stream keeps at most this times (retention days + 1), 12 GiB with the defaults; -1 for no cap")
	rate := fs.Float64("ingest-rate", relay.DefaultIngestRate, "incidents per second per sensor token; a faster sensor is slowed down, never refused; -1 for no limit")
	burst := fs.Int("ingest-burst", relay.DefaultIngestBurst, "token bucket size for --ingest-rate (at least 100, one full batch)")
	logLevel := fs.String("log-level", envOr(env, "ATTACKMAP_LOG_LEVEL", "info"), "debug, info, warn or error [ATTACKMAP_LOG_LEVEL]")
	natsURLs := fs.String("nats", env("ATTACKMAP_NATS"), "join an existing NATS cluster instead of running the embedded server: comma-separated URLs, e.g. nats://10.0.0.1:4222,nats://10.0.0.2:4222; empty runs an embedded single-node server with its file store under --data/nats and no listener [ATTACKMAP_NATS]")
	natsCreds := fs.String("nats-creds", env("ATTACKMAP_NATS_CREDS"), "NATS credentials file (user JWT and seed) for --nats [ATTACKMAP_NATS_CREDS]")
	natsCA := fs.String("nats-tls-ca", "", "PEM file of the CA that signed the NATS servers' certificates, for --nats with tls://")
	natsCert := fs.String("nats-tls-cert", "", "PEM client certificate for --nats (with --nats-tls-key)")
	natsKey := fs.String("nats-tls-key", "", "PEM client key for --nats-tls-cert")
	natsListen := fs.String("nats-listen", env("ATTACKMAP_NATS_LISTEN"), "let the embedded NATS server form a cluster with other relays: listen for their routes on host:port (e.g. 10.0.0.1:6222; firewall it to the other relays); needs --nats-routes [ATTACKMAP_NATS_LISTEN]")
	natsRoutes := fs.String("nats-routes", env("ATTACKMAP_NATS_ROUTES"), "comma-separated route URLs of every relay of the cluster (this one may be listed too), e.g. nats://10.0.0.1:6222,nats://10.0.0.2:6222,nats://10.0.0.3:6222 [ATTACKMAP_NATS_ROUTES]")
	natsCluster := fs.String("nats-cluster-name", envOr(env, "ATTACKMAP_NATS_CLUSTER_NAME", "attackmap"), "the cluster's name, the same on every relay [ATTACKMAP_NATS_CLUSTER_NAME]")
	natsName := fs.String("nats-name", env("ATTACKMAP_NATS_NAME"), "this relay's server name in the cluster, unique and stable across restarts; default: the host name and the --nats-listen port [ATTACKMAP_NATS_NAME]")
	natsClient := fs.String("nats-client-listen", "", "also open the embedded server's client port on host:port (for the nats CLI, or relays joining with --nats); off loopback it needs --nats-client-token; empty opens none")
	natsClientToken := fs.String("nats-client-token", env("ATTACKMAP_NATS_CLIENT_TOKEN"), "token clients of --nats-client-listen must present (nats://TOKEN@host:port) [ATTACKMAP_NATS_CLIENT_TOKEN]")
	syncInterval := fs.Duration("nats-sync-interval", 0, "single relay: fsync the embedded store at this interval instead of before every ack (about 9x the ingest rate, but a power cut loses what was acknowledged since the last fsync; a process crash or a clean stop loses nothing); 0 fsyncs every write")
	replicas := fs.Int("replicas", 0, "the stream's replica count; 0: 3 in a cluster of three or more relays, else the cluster's size")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return err
		}
		return cli.FlagError("attackmap-relay serve", err)
	}
	if fs.NArg() > 0 {
		return cli.Usagef("serve: unexpected argument %q", incident.CleanText(fs.Arg(0), 40))
	}
	if len(origins) == 0 {
		for _, o := range strings.Split(env("ATTACKMAP_ALLOW_ORIGIN"), ",") {
			if o = strings.TrimSpace(o); o != "" {
				origins = append(origins, o)
			}
		}
	}
	if *natsListen != "" && *natsRoutes == "" || *natsListen == "" && *natsRoutes != "" {
		return cli.Usagef("serve: --nats-listen and --nats-routes go together (the embedded server's cluster)")
	}
	if *natsURLs != "" && *natsListen != "" {
		return cli.Usagef("serve: --nats joins an external cluster; --nats-listen clusters the embedded server: pick one")
	}
	if *tokenFile == "" {
		return cli.Usagef("serve: --token-file is required (create one with \"attackmap-relay token add --token-file FILE NAME\")")
	}
	if *ring < 1 {
		return cli.Usagef("serve: --ring must be at least 1")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return cli.Usagef("serve: --log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *retention == 0 {
		*retention = -1 // 0 on the command line also means "keep"
	}
	cfg := relay.Config{
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
		MaxSubscribersPerNet:  *maxPerNet,
		MaxConns:              *maxConns,
		MaxConnsPerAddr:       *maxConnsPerAddr,
		ResumeWindow:          *resumeWindow,
		ClientIPHeader:        *clientIPHeader,
		IngestRate:            *rate,
		MaxIngestPerToken:     *maxIngest,
		HistoryCapPerToken:    *histCapToken,
		HistoryCapTotal:       *histCap,
		IngestBurst:           *burst,
		NATSURLs:              splitList(*natsURLs),
		NATSCreds:             *natsCreds,
		NATSTLSCA:             *natsCA,
		NATSTLSCert:           *natsCert,
		NATSTLSKey:            *natsKey,
		NATSListen:            *natsListen,
		NATSRoutes:            splitList(*natsRoutes),
		NATSClusterName:       *natsCluster,
		NATSName:              *natsName,
		NATSClientListen:      *natsClient,
		NATSClientToken:       *natsClientToken,
		Replicas:              *replicas,
		NATSSyncInterval:      *syncInterval,
	}
	return runRelay(ctx, cfg, *listen, *metricsListen, log)
}

// runRelay builds the relay, serves it on listen (and its metrics on
// metricsListen unless empty) until ctx ends, and closes it.
func runRelay(ctx context.Context, cfg relay.Config, listen, metricsListen string, log *slog.Logger) error {
	// New waits for the stream (a cluster's quorum, up to two minutes);
	// a signal meanwhile stops the wait.
	type made struct {
		r   *relay.Relay
		err error
	}
	madec := make(chan made, 1)
	go func() {
		r, err := relay.New(cfg)
		madec <- made{r, err}
	}()
	var r *relay.Relay
	var err error
	select {
	case m := <-madec:
		r, err = m.r, m.err
	case <-ctx.Done():
		return errors.New("serve: stopped while waiting for the NATS stream")
	}
	if err != nil {
		// An unreadable or malformed token file, an unusable data
		// directory: configuration the operator must fix, status 2.
		return cli.Usage(err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		_ = r.Close()
		return fmt.Errorf("serve: %w", err)
	}
	// The metrics server stops with the relay, whichever way it stops.
	mctx, stopMetrics := context.WithCancel(ctx)
	defer stopMetrics()
	merr := make(chan error, 1)
	if metricsListen != "" {
		mln, err := net.Listen("tcp", metricsListen)
		if err != nil {
			_ = ln.Close()
			_ = r.Close()
			return fmt.Errorf("serve: --metrics-listen: %w", err)
		}
		log.Info("metrics listening", "addr", mln.Addr().String())
		go func() { merr <- r.ServeMetrics(mctx, mln) }()
	} else {
		merr <- nil
	}
	log.Info("relay listening", "addr", ln.Addr().String(), "version", version)
	serr := r.Serve(ctx, ln)
	stopMetrics()
	if err := <-merr; err != nil && serr == nil {
		serr = err
	}
	cerr := r.Close()
	if serr != nil {
		return serr
	}
	if cerr == nil {
		log.Info("relay stopped")
	}
	return cerr
}

func tokenAdd(args []string, env func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token add", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // see serve
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: attackmap-relay token add --token-file FILE NAME [--lat L --lon L]

Creates a token for the sensor host NAME, appends "NAME SHA256-HEX [LAT LON]"
to FILE (created with mode 0600) and prints the token once on stdout. The
relay keeps only the hash. NAME becomes the "host" of that sensor's
incidents; --lat/--lon its "target" on the map.

Examples:
  attackmap-relay token add --token-file /etc/attackmap/tokens web-1
  attackmap-relay token add --token-file /etc/attackmap/tokens web-2 --lat 52.37 --lon 4.90

Exit status: 0 success, 2 a bad name, location or token file.

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
				fs.SetOutput(stdout)
				fs.Usage()
				return err
			}
			return cli.FlagError("attackmap-relay token add", err)
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(names) != 1 {
		fs.Usage()
		return cli.Usagef("token add: want exactly one NAME, got %d", len(names))
	}
	if *file == "" {
		return cli.Usagef("token add: --token-file is required")
	}
	var target *incident.Location
	switch {
	case *lat == "" && *lon == "":
	case *lat == "" || *lon == "":
		return cli.Usagef("token add: give both --lat and --lon, or neither")
	default:
		la, err1 := strconv.ParseFloat(*lat, 64)
		lo, err2 := strconv.ParseFloat(*lon, 64)
		if err1 != nil || err2 != nil {
			return cli.Usagef("token add: --lat and --lon must be numbers")
		}
		if err := token.CheckLocation(la, lo); err != nil {
			return cli.Usagef("token add: %v", err)
		}
		target = &incident.Location{Lat: la, Lon: lo}
	}
	if err := token.CheckName(names[0]); err != nil {
		return cli.Usagef("token add: %v", err)
	}
	tok, err := token.Add(*file, names[0], target)
	if err != nil {
		return cli.Usage(err) // an unreadable or malformed token file: status 2
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// tokenFlags parses the flags of "token list" and "token remove": only
// --token-file, before or after the names.
func tokenFlags(cmd, help string, args []string, env func(string) string, stdout io.Writer) (file string, names []string, err error) {
	fs := flag.NewFlagSet("token "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // see serve
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help)
		fs.PrintDefaults()
	}
	f := fs.String("token-file", env("ATTACKMAP_TOKEN_FILE"), "the relay's token file [ATTACKMAP_TOKEN_FILE]")
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fs.Usage()
				return "", nil, err
			}
			return "", nil, cli.FlagError("attackmap-relay token "+cmd, err)
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *f == "" {
		return "", nil, cli.Usagef("token %s: --token-file is required", cmd)
	}
	return *f, names, nil
}

func tokenList(args []string, env func(string) string, stdout io.Writer) error {
	file, names, err := tokenFlags("list", `Usage: attackmap-relay token list --token-file FILE

Lists the sensor hosts in FILE, one a line: NAME, then LAT LON when the
host has a location. Tokens are never shown (the file holds only hashes).

Example:
  attackmap-relay token list --token-file /etc/attackmap/tokens

Exit status: 0 success, 2 a bad command line or token file.

Options:
`, args, env, stdout)
	if err != nil {
		return err
	}
	if len(names) != 0 {
		return cli.Usagef("token list: takes no NAME")
	}
	entries, err := token.List(file)
	if err != nil {
		return cli.Usage(err)
	}
	for _, e := range entries {
		line := e.Name
		if e.Target != nil {
			line += "\t" + strconv.FormatFloat(e.Target.Lat, 'f', -1, 64) + " " + strconv.FormatFloat(e.Target.Lon, 'f', -1, 64)
		}
		fmt.Fprintln(stdout, line)
	}
	return nil
}

func tokenRemove(args []string, env func(string) string, stdout io.Writer) error {
	file, names, err := tokenFlags("remove", `Usage: attackmap-relay token remove --token-file FILE NAME

Removes the sensor host NAME from FILE (atomically; other lines and
comments are kept). A running relay notices within a second and closes
that sensor's connections; its token is refused from then on.

Example:
  attackmap-relay token remove --token-file /etc/attackmap/tokens web-1

Exit status: 0 success, 2 a bad command line, an unknown NAME or an
unusable token file.

Options:
`, args, env, stdout)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return cli.Usagef("token remove: want exactly one NAME, got %d", len(names))
	}
	if err := token.Remove(file, names[0]); err != nil {
		return cli.Usage(err)
	}
	fmt.Fprintf(stdout, "removed %s\n", names[0])
	return nil
}
