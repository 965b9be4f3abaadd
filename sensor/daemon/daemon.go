// Package daemon is `attackmap-sensor run`: it opens the incidents and
// events journals, runs the detection stage that writes them, and delivers
// the incidents journal to every configured relay (and to the relay
// embedded with --serve) through a cursor reader, enrichment and a pusher
// per destination, so that one relay being down delays nobody else and
// loses nothing.
//
// A full disk is a state, not a crash: the journals hold or count what the
// disk refuses and the forwarders retry their cursors, each saying so once
// a minute with the path and the free space, and everything resumes by
// itself when space returns. With --metrics-listen (or metrics_listen) the
// daemon serves Prometheus metrics on GET /metrics: deliveries, rejections,
// journal losses by cause, the full-disk and stuck-cursor states, and the
// free space of the data directory.
package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay"
	"github.com/attackmap/attackmap/sensor/enrich"
	"github.com/attackmap/attackmap/sensor/enrich/abuseipdb"
	"github.com/attackmap/attackmap/sensor/enrich/ipapi"
	"github.com/attackmap/attackmap/sensor/enrich/threatlist"
	"github.com/attackmap/attackmap/sensor/geoip"
	"github.com/attackmap/attackmap/sensor/journal"
	"github.com/attackmap/attackmap/sensor/push"
	"github.com/attackmap/attackmap/static"
)

// incidentBacklog is how many incidents the disk refused (a full disk) are
// held in memory until it takes them again: 10,000 is hours of a busy
// sensor's incidents in about 10 MiB at most; past it incidents are lost,
// counted and logged.
const incidentBacklog = 10000

// Run implements `attackmap-sensor run` (args exclude "run"). It returns
// nil when ctx ends, or the first error of any part.
func Run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseArgs(args, env, stderr)
	if errors.Is(err, errPrintConfig) {
		_, err := stdout.Write(defaultConfig)
		return err
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return run(ctx, cfg, log, stdout)
}

// group runs goroutines and cancels them all when one fails.
type group struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
	once   sync.Once
	err    error
}

func (g *group) Go(name string, fn func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(); err != nil {
			g.once.Do(func() {
				g.err = fmt.Errorf("%s: %w", name, err)
				g.cancel()
			})
		}
	}()
}

func run(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	if cfg.Host == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "sensor"
		}
		cfg.Host = h
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	target, _ := cfg.Target.Location() // checked by parseArgs

	// Journals. Incidents are fsynced within a second (group commit): a
	// crash of the process loses nothing (the line is in the page cache),
	// a power cut at most the last second. Events are many and cheap: the
	// OS decides, and a daily size cap bounds them.
	//
	// A full disk is a state: incidents the disk refuses are held in
	// memory (incidentBacklog) and written when space returns; events are
	// dropped and counted. Each journal logs the state once a minute.
	incidents, err := journal.Open(cfg.DataDir, journal.Options{Prefix: "incidents",
		RetentionDays: cfg.Retention.Days, SyncInterval: time.Second, Backlog: incidentBacklog,
		Logger: log.With("journal", "incidents")})
	if err != nil {
		return err
	}
	defer incidents.Close()
	events, err := journal.Open(cfg.DataDir, journal.Options{Prefix: "events",
		RetentionDays: cfg.Retention.Days, MaxDailyBytes: cfg.Retention.EventsMaxDailyMB << 20, SyncInterval: -1,
		Logger: log.With("journal", "events")})
	if err != nil {
		return err
	}
	defer events.Close()
	reg := prometheus.NewRegistry()
	mets := newMetrics(cfg.DataDir, map[string]*journal.Writer{"incidents": incidents, "events": events})
	reg.MustRegister(mets)

	// Enrichment.
	var geoPaths []string
	for _, p := range cfg.GeoIP.Paths {
		geoPaths = append(geoPaths, cfg.dataPath(p))
		if !filepath.IsAbs(p) {
			// So that databases dropped in later (make geoip) are seen.
			_ = os.MkdirAll(filepath.Dir(cfg.dataPath(p)), 0o750)
		}
	}
	geo, err := geoip.Open(geoPaths, geoip.Options{Logger: log})
	if err != nil {
		return err
	}
	defer geo.Close()
	var lists *threatlist.Set
	if len(cfg.ThreatLists) > 0 {
		srcs := append([]threatlist.Source(nil), cfg.ThreatLists...)
		for i := range srcs {
			if srcs[i].Path != "" {
				srcs[i].Path = cfg.dataPath(srcs[i].Path)
			}
		}
		if lists, err = threatlist.New(threatlist.Options{Sources: srcs, Logger: log}); err != nil {
			return err
		}
	}
	ecfg := enrich.Config{Geo: geo, Lists: lists, Target: target, Logger: log}
	if cfg.IPAPI.Enabled {
		ecfg.IPAPI = ipapi.New(ipapi.Options{URL: cfg.IPAPI.URL, Logger: log})
	}
	if cfg.AbuseIPDB.Enabled {
		if ecfg.Abuse, err = abuseipdb.New(abuseipdb.Options{Key: cfg.AbuseIPDB.Key, DailyBudget: cfg.AbuseIPDB.DailyBudget, Logger: log}); err != nil {
			return err
		}
	}
	enricher := enrich.New(ecfg)

	ctx, cancel := context.WithCancel(ctx)
	g := &group{cancel: cancel}
	// On the way out: stop every goroutine, then close what they used.
	var closers []func()
	defer func() {
		cancel()
		g.wg.Wait()
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	if cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		g.Go("metrics", func() error { return serveMetrics(ctx, ln, reg, log) })
	}
	g.Go("geoip", func() error { return geo.Run(ctx) })
	if lists != nil {
		g.Go("threat lists", func() error { return lists.Run(ctx) })
	}
	resp, err := startResponse(ctx, g, cfg, incidents, log)
	if err != nil {
		return err
	}
	detMets := newDetectionMetrics(resp)
	reg.MustRegister(detMets)
	det := &detection{cfg: cfg, incidents: incidents, events: events, lists: lists, log: log, resp: resp,
		reg: reg, mets: detMets}
	g.Go("detection", func() error { return det.run(ctx) })

	// The embedded relay.
	if cfg.Serve.Listen != "" {
		r, ln, err := startRelay(cfg, log)
		if err != nil {
			return err
		}
		closers = append(closers, func() { r.Close() })
		fmt.Fprintf(stdout, "attackmap-sensor: map at http://%s/live\n", displayAddr(ln.Addr()))
		g.Go("relay", func() error { return r.Serve(ctx, ln) })
		host := relay.Host{Name: cfg.Host, Target: target}
		// PublishDurable: a batch the relay could not store is not
		// acknowledged, so the forwarder keeps it and sends it again.
		sink := push.SinkFunc(func(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
			return r.PublishDurable(host, batch)
		})
		if err := startForwarder(ctx, g, cfg, "local", "cursor-local.json", sink, incidents, enricher, mets, log); err != nil {
			return err
		}
	}
	for _, rc := range cfg.Relays {
		ws := push.NewWS(rc.URL, rc.Token, push.WSOptions{Logger: log})
		closers = append(closers, func() { ws.Close() })
		if err := startForwarder(ctx, g, cfg, rc.URL, cursorName(rc.URL), ws, incidents, enricher, mets, log); err != nil {
			return err
		}
	}
	if cfg.Serve.Listen == "" && len(cfg.Relays) == 0 {
		log.Warn("no relay configured (--relay, ATTACKMAP_RELAY or --serve): incidents are journaled, not delivered")
	}
	log.Info("sensor running", "data", cfg.DataDir, "host", cfg.Host, "relays", len(cfg.Relays),
		"serve", cfg.Serve.Listen, "geoip", len(geo.Loaded()))
	<-ctx.Done()
	g.wg.Wait()
	return g.err
}

// startForwarder opens a cursor reader for one destination and runs its
// forwarder in g.
func startForwarder(ctx context.Context, g *group, cfg Config, name, cursor string, sink push.Sink,
	w *journal.Writer, e *enrich.Enricher, mets *metrics, log *slog.Logger) error {
	wake, unsubscribe := w.Subscribe()
	r, err := journal.OpenReader(cfg.DataDir, journal.ReaderOptions{
		Prefix: "incidents", CursorPath: filepath.Join(cfg.DataDir, cursor),
		Wake: wake, Check: push.CheckLine, Logger: log,
	})
	if err != nil {
		unsubscribe()
		return err
	}
	f := &push.Forwarder{Name: name, Reader: r, Sink: sink, Enricher: e, Logger: log}
	mets.add(f)
	g.Go("push "+name, func() error {
		defer unsubscribe()
		defer r.Close()
		return f.Run(ctx)
	})
	return nil
}

// cursorName gives each relay its own cursor file, named after its host so
// an operator can tell them apart, plus a hash of the whole URL so two
// relays on one host do not share one.
func cursorName(u string) string {
	host := "relay"
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		host = p.Host
	}
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, host)
	sum := sha256.Sum256([]byte(u))
	return "cursor-" + host + "-" + hex.EncodeToString(sum[:4]) + ".json"
}

func startRelay(cfg Config, log *slog.Logger) (*relay.Relay, net.Listener, error) {
	tokenFile := cfg.Serve.TokenFile
	if tokenFile != "" {
		tokenFile = cfg.dataPath(tokenFile)
	}
	r, err := relay.New(relay.Config{
		DataDir:      filepath.Join(cfg.DataDir, "relay"),
		TokenFile:    tokenFile,
		AllowOrigins: cfg.Serve.AllowOrigins,
		Site:         static.Handler(),
		Logger:       log.With("part", "relay"),
	})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", cfg.Serve.Listen)
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("--serve: %w", err)
	}
	return r, ln, nil
}

// displayAddr turns a listener address into one a browser can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
