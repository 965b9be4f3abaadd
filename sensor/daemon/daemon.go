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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/sensor/enrich"
	"github.com/attackmap/attackmap/sensor/enrich/abuseipdb"
	"github.com/attackmap/attackmap/sensor/enrich/ipapi"
	"github.com/attackmap/attackmap/sensor/enrich/threatlist"
	"github.com/attackmap/attackmap/sensor/geoip"
	"github.com/attackmap/attackmap/sensor/journal"
	"github.com/attackmap/attackmap/sensor/push"
)

// incidentBacklog is how many incidents the disk refused (a full disk) are
// held in memory until it takes them again: 10,000 is hours of a busy
// sensor's incidents in about 10 MiB at most; past it incidents are lost,
// counted and logged.
const incidentBacklog = 10000

// Run implements `attackmap-sensor run` (args exclude "run"). embed builds
// the relay for --serve (see Embedded; nil refuses --serve). It returns nil
// when ctx ends, or the first error of any part.
func Run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer, embed EmbedFunc) error {
	cfg, err := parseArgs(args, env, stdout)
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
	return run(ctx, cfg, embed, log, stdout)
}

// named prefixes a part's error with its name, so that the error Run
// returns says which part failed.
func named(name string, fn func() error) func() error {
	return func() error {
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
}

func run(ctx context.Context, cfg Config, embed EmbedFunc, log *slog.Logger, stdout io.Writer) error {
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

	incidents, events, err := openJournals(cfg, log)
	if err != nil {
		return err
	}
	defer incidents.Close()
	defer events.Close()
	reg := prometheus.NewRegistry()
	mets := newMetrics(cfg.DataDir, map[string]*jsonl.Writer{"incidents": incidents, "events": events})
	reg.MustRegister(mets)

	geo, lists, enricher, err := openEnrichment(cfg, log)
	if err != nil {
		return err
	}
	mets.geo = geo
	defer geo.Close()

	// Every part runs in g: the first to fail cancels the others, and Run
	// returns its error.
	ctx, cancel := context.WithCancel(ctx)
	g, ctx := errgroup.WithContext(ctx)
	// On the way out: stop every goroutine, then close what they used.
	var closers []func()
	defer func() {
		cancel()
		_ = g.Wait() // the error is returned below, or replaced by the one that stopped us
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	if cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		switch {
		case err != nil && cfg.MetricsListen == DefaultMetricsListen:
			// Left at the default (DefaultMetricsListen): another sensor
			// or a drill holds it; run on without metrics.
			log.Warn("metrics not served: the default address is busy; give --metrics-listen ADDR, or \"\" to turn them off",
				"addr", cfg.MetricsListen, "err", err)
		case err != nil:
			return fmt.Errorf("--metrics-listen: %w", err)
		default:
			g.Go(named("metrics", func() error { return serveMetrics(ctx, ln, reg, mets.healthz, log) }))
		}
	}
	g.Go(named("geoip", func() error { return geo.Run(ctx) }))
	if lists != nil {
		g.Go(named("threat lists", func() error { return lists.Run(ctx) }))
	}
	resp, err := startResponse(ctx, g, cfg, incidents, log)
	if err != nil {
		return err
	}
	detMets := newDetectionMetrics(resp)
	reg.MustRegister(detMets)
	det := &detection{cfg: cfg, incidents: incidents, events: events, lists: lists, log: log, resp: resp,
		reg: reg, mets: detMets, started: make(chan struct{})}
	g.Go(named("detection", func() error { return det.run(ctx) }))

	// The embedded relay.
	if cfg.Serve.Listen != "" {
		r, ln, err := startRelay(cfg, embed, target, reg, log)
		if err != nil {
			return err
		}
		// After the relay closed with its store synced, the local
		// cursor may move to the last ack (see Embedded.Close).
		var local *push.Forwarder
		closers = append(closers, func() {
			if err := r.Close(); err != nil {
				log.Warn("relay: not closed cleanly; the last incidents are sent again at the next start", "err", err)
				return
			}
			if local == nil {
				return
			}
			if err := local.Synced(); err != nil {
				log.Warn("push: cannot store the local cursor; the last incidents are sent again at the next start", "err", err)
			}
		})
		// The map line tells scripts (the drill) the sensor is up: it
		// waits until an attack would be seen, not only served.
		select {
		case <-det.started:
		case <-ctx.Done():
			return g.Wait()
		}
		fmt.Fprintf(stdout, "attackmap-sensor: map at http://%s/live\n", displayAddr(ln.Addr()))
		g.Go(named("relay", func() error { return r.Serve(ctx, ln) }))
		// PublishDurable: a batch the relay could not store is not
		// acknowledged, so the forwarder keeps it and sends it again.
		sink := push.SinkFunc(func(_ context.Context, batch []json.RawMessage) (incident.Ack, error) {
			return r.PublishDurable(batch)
		})
		local, err = startForwarder(ctx, g, cfg, "local", "cursor-local.json", sink,
			embedDurableAfter(EmbedSyncInterval), incidents, enricher, mets, log)
		if err != nil {
			return err
		}
	}
	for _, rc := range cfg.Relays {
		// One destination, one cursor, however many URLs: it is named
		// after the first URL, so adding URLs to an entry keeps the
		// cursor (and the metrics' relay label).
		ws := push.NewWS(rc.URLs, rc.Token, push.WSOptions{Logger: log})
		closers = append(closers, func() { ws.Close() })
		if _, err := startForwarder(ctx, g, cfg, rc.URL, cursorName(rc.URL), ws, 0, incidents, enricher, mets, log); err != nil {
			return err
		}
	}
	if cfg.Serve.Listen == "" && len(cfg.Relays) == 0 {
		log.Warn("no relay configured (--relay, ATTACKMAP_RELAY or --serve): incidents are journaled, not delivered")
	}
	log.Info("sensor running", "data", cfg.DataDir, "host", cfg.Host, "relays", len(cfg.Relays),
		"serve", cfg.Serve.Listen, "geoip", len(geo.Loaded()))
	<-ctx.Done()
	return g.Wait()
}

// openJournals opens the incidents and events journals.
func openJournals(cfg Config, log *slog.Logger) (incidents, events *jsonl.Writer, err error) {
	// Incidents are fsynced within a second (group commit): a
	// crash of the process loses nothing (the line is in the page cache),
	// a power cut at most the last second. Events are many and cheap: the
	// OS decides, and a daily size cap bounds them.
	//
	// A full disk is a state: incidents the disk refuses are held in
	// memory (incidentBacklog) and written when space returns; events are
	// dropped and counted. Each journal logs the state once a minute.
	incidents, err = jsonl.Open(cfg.DataDir, jsonl.Options{Prefix: "incidents",
		RetentionDays: cfg.Retention.Days, SyncInterval: time.Second, Backlog: incidentBacklog,
		Logger: log.With("journal", "incidents")})
	if err != nil {
		return nil, nil, err
	}
	events, err = jsonl.Open(cfg.DataDir, jsonl.Options{Prefix: "events",
		RetentionDays: cfg.Retention.Days, MaxDailyBytes: cfg.Retention.EventsMaxDailyMB << 20, SyncInterval: -1,
		Logger: log.With("journal", "events")})
	if err != nil {
		incidents.Close()
		return nil, nil, err
	}
	return incidents, events, nil
}

// openEnrichment opens the GeoIP databases and threat lists and builds the
// enricher the forwarders share. The caller closes geo.
func openEnrichment(cfg Config, log *slog.Logger) (*geoip.DB, *threatlist.Set, *enrich.Enricher, error) {
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
		return nil, nil, nil, err
	}
	fail := func(err error) (*geoip.DB, *threatlist.Set, *enrich.Enricher, error) {
		geo.Close()
		return nil, nil, nil, err
	}
	var lists *threatlist.Set
	if len(cfg.ThreatLists) > 0 {
		srcs := append([]threatlist.Source(nil), cfg.ThreatLists...)
		for i := range srcs {
			if srcs[i].Path != "" {
				srcs[i].Path = cfg.dataPath(srcs[i].Path)
			}
		}
		if lists, err = threatlist.New(threatlist.Options{Sources: srcs, Logger: log}); err != nil {
			return fail(err)
		}
	}
	ecfg := enrich.Config{Geo: geo, Lists: lists, Logger: log}
	if cfg.IPAPI.Enabled {
		ecfg.IPAPI = ipapi.New(ipapi.Options{URL: cfg.IPAPI.URL, Logger: log})
	}
	if cfg.AbuseIPDB.Enabled {
		if ecfg.Abuse, err = abuseipdb.New(abuseipdb.Options{Key: cfg.AbuseIPDB.Key, DailyBudget: cfg.AbuseIPDB.DailyBudget, Logger: log}); err != nil {
			return fail(err)
		}
	}
	return geo, lists, enrich.New(ecfg), nil
}

// startForwarder opens a cursor reader for one destination and runs its
// forwarder in g. durableAfter is the destination's AckDurableAfter (0 for
// a relay that syncs before it acknowledges).
func startForwarder(ctx context.Context, g *errgroup.Group, cfg Config, name, cursor string, sink push.Sink,
	durableAfter time.Duration, w *jsonl.Writer, e *enrich.Enricher, mets *metrics, log *slog.Logger) (*push.Forwarder, error) {
	wake, unsubscribe := w.Subscribe()
	r, err := journal.OpenReader(cfg.DataDir, journal.ReaderOptions{
		Prefix: "incidents", CursorPath: filepath.Join(cfg.DataDir, cursor),
		Wake: wake, Check: push.CheckLine, Logger: log,
	})
	if err != nil {
		unsubscribe()
		return nil, err
	}
	f := &push.Forwarder{Name: name, Reader: r, Sink: sink, Enricher: e, Logger: log, Host: cfg.Host,
		AckDurableAfter: durableAfter}
	if t, ok := sink.(interface{ TokenID() string }); ok {
		f.TokenID = t.TokenID()
	}
	mets.add(f)
	g.Go(named("push "+name, func() error {
		defer unsubscribe()
		defer r.Close()
		return f.Run(ctx)
	}))
	return f, nil
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
