package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/sensor/detect"
	"github.com/attackmap/attackmap/sensor/enrich/threatlist"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/kernel"
	"github.com/attackmap/attackmap/sensor/logsrc"
	"github.com/attackmap/attackmap/sensor/respond"
	"github.com/attackmap/attackmap/sensor/webrule"
	"github.com/prometheus/client_golang/prometheus"
)

// logLane is the capacity of the channel from the log collectors to the
// detectors. Log collectors block when it is full (the files are the
// buffer and nothing is lost), so it only needs to smooth bursts: 1024
// lines is a few milliseconds of detector work.
const logLane = 1024

// flushEvery is how often open incidents whose latest copy is still unsent
// (the detectors space updates by update_interval of event time) are
// written out, so the map shows final counts even when the attack stopped.
const flushEvery = 2 * time.Second

// detection is the detection stage: collectors (eBPF, log files, journald)
// feed raw events to the detectors, which write incidents to the incidents
// journal; raw events go to the events journal. The delivery side (cursor
// readers, enrichment, pushers) only sees the incidents journal, so this
// stage can be restarted or replaced without touching it.
type detection struct {
	cfg Config
	// started is closed once the eBPF programs are attached and the log
	// followers launched (nil: nobody waits), so that Run announces the
	// map only when an attack would be seen.
	started   chan struct{}
	incidents *jsonl.Writer
	events    *jsonl.Writer
	// lists answers the c2_connect detector's "is this destination on a
	// threat list?" (nil when no list is configured).
	lists *threatlist.Set
	log   *slog.Logger
	ahead uint64 // detect.Stats.Ahead when last logged
	// resp decides on blocking the incidents' sources (nil: none).
	resp *respond.Responder
	// reg takes the eBPF collector's counters and mets the engine's state
	// (nil in tests that run the stage alone).
	reg  prometheus.Registerer
	mets *detectionMetrics
	// target is the sensor's own location from the configuration (nil:
	// none), stamped on every incident by stamp.
	target *incident.Location
}

// run runs the detection stage until ctx ends.
func (d *detection) run(ctx context.Context) error {
	dcfg, err := detect.DecodeConfig(d.cfg.Detect)
	if err != nil {
		return err
	}
	if d.target, err = d.cfg.Target.Location(); err != nil {
		return err
	}
	if d.cfg.IncludePrivate {
		dcfg.IncludePrivate = true
	}
	rules, err := webrule.Load(dcfg.WebRules...)
	if err != nil {
		return fmt.Errorf("detect: web_rules: %w", err)
	}
	// Live: lines dated past the host clock (plus detect.MaxSkew) are
	// clamped, so one future line cannot sweep everyone's state.
	opts := []detect.Option{detect.WithLogger(d.log), detect.WithWebRules(rules), detect.WithHostClock(time.Now)}
	if d.lists != nil {
		opts = append(opts, detect.WithThreatLists(d.lists))
	}
	eng := detect.New(dcfg, opts...)
	// The checkpoint (checkpoint.go) carries the detectors' state across a
	// restart, tied to the log positions it corresponds to.
	var ck *checkpoint
	var resume map[string]event.FilePos
	if d.cfg.DataDir != "" {
		ck = &checkpoint{path: filepath.Join(d.cfg.DataDir, checkpointName), log: d.log, pos: map[string]event.FilePos{}}
		resume = ck.load(eng)
	}
	saveCheckpoint := func() {
		if ck == nil {
			return
		}
		if err := ck.write(eng, d.incidents); err != nil {
			// The previous checkpoint stays: a restart reads more lines
			// again, nothing is lost.
			d.log.Warn("detection checkpoint not written", "err", err)
		}
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Kernel collectors: on when permitted, else one line and logs only.
	var netc, procc <-chan event.Event
	if kc := d.startKernel(); kc != nil {
		netc, procc = kc.Net(), kc.Proc()
		wg.Go(func() {
			if err := kc.Run(ctx); err != nil {
				d.log.Error("eBPF collectors stopped", "err", err)
			}
		})
	}

	// Log collectors.
	logs := make(chan event.Event, logLane)
	if lc := d.logConfig(); !lc.Empty() {
		lc.Resume = resume
		wg.Go(func() {
			if err := lc.Run(ctx, logs); err != nil {
				d.log.Error("log collectors stopped", "err", err)
			}
		})
	} else {
		d.log.Warn("no log files found to follow (give --auth-log, --access-log, --error-log or --fw-log)")
	}
	if d.started != nil {
		close(d.started)
	}

	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-netc:
			if !ok { // the collectors stopped: a nil channel blocks for ever
				netc = nil
				continue
			}
			if ck != nil {
				ck.note(&ev)
			}
			d.handle(eng, ev)
		case ev, ok := <-procc:
			if !ok {
				procc = nil
				continue
			}
			if ck != nil {
				ck.note(&ev)
			}
			d.handle(eng, ev)
		case ev := <-logs:
			if ck != nil {
				ck.note(&ev)
			}
			if logsrc.IsMark(&ev) {
				continue
			}
			d.handle(eng, ev)
		case <-tick.C:
			d.write(eng.Flush())
			saveCheckpoint()
			d.noteStats(eng)
		case <-ctx.Done():
			d.write(eng.Flush())
			saveCheckpoint()
			return nil
		}
	}
}

// noteStats logs, once per growth, the events whose time was clamped
// because they were dated ahead of the host clock.
func (d *detection) noteStats(eng *detect.Engine) {
	st := eng.Stats()
	if d.mets != nil {
		d.mets.publish(st)
	}
	if a := st.Ahead; a > d.ahead {
		d.log.Warn("log lines dated ahead of the host clock were handled at the host's time",
			"count", a-d.ahead, "total", a, "max_skew", detect.MaxSkew)
		d.ahead = a
	}
}

// startKernel starts the eBPF collectors, or says in one line why not.
func (d *detection) startKernel() *kernel.Collector {
	if !d.cfg.EBPF.enabled() {
		d.log.Info("eBPF collectors off in the configuration; running the log collectors only")
		return nil
	}
	if err := kernel.Available(); err != nil {
		d.log.Warn("eBPF collectors unavailable, running the log collectors only: " + err.Error())
		return nil
	}
	kc, err := kernel.Start(kernel.Config{
		RingBufferBytes: d.cfg.EBPF.RingBufferKB << 10,
		IgnoreComms:     d.cfg.EBPF.IgnoreComms,
		SensitivePaths:  d.cfg.EBPF.SensitivePaths,
		Logger:          d.log.With("part", "ebpf"),
	})
	if err != nil {
		d.log.Warn("eBPF collectors failed to start, running the log collectors only: " + err.Error())
		return nil
	}
	if d.reg != nil {
		if err := kc.Register(d.reg); err != nil {
			d.log.Warn("eBPF counters not exported: " + err.Error())
		}
	}
	d.log.Info("eBPF collectors running")
	return kc
}

// logConfig turns the configured paths into the collectors' configuration.
// Lists left at the built-in defaults are the system's usual places: only
// those that exist are followed (and the journal when there is no auth
// file). Lists given by flag or config file (LogPaths.given) are followed
// even before their files exist (the tailer waits for them).
func (d *detection) logConfig() logsrc.Config {
	logs := d.cfg.Logs
	var lc logsrc.Config
	sys := logsrc.Defaults()
	pick := func(given bool, paths, found []string) []string {
		if given {
			return paths
		}
		return found
	}
	lc.AuthLogs = pick(logs.given.auth, logs.Auth, existing(logs.Auth))
	lc.AccessLogs = pick(logs.given.access, logs.Access, sys.AccessLogs)
	lc.ErrorLogs = pick(logs.given.error, logs.Error, sys.ErrorLogs)
	lc.FWLogs = pick(logs.given.firewall, logs.Firewall, existing(logs.Firewall))
	if !logs.given.auth && len(lc.AuthLogs) == 0 {
		lc.UseJournal = sys.UseJournal
	}
	if !logs.given.firewall && len(lc.FWLogs) == 0 {
		lc.JournalFirewall = sys.JournalFirewall
	}
	lc.StateDir = d.cfg.DataDir
	lc.Logger = d.log.With("part", "logs")
	lc.FromStart = d.cfg.Logs.FromStart
	if d.mets != nil {
		lc.Tailers = &d.mets.tails
	}
	return lc
}

func existing(paths []string) []string {
	var out []string
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out
}

// handle journals one raw event and the incidents it raised.
func (d *detection) handle(eng *detect.Engine, ev event.Event) {
	// A full disk is counted and reported by the journal itself, once a
	// minute: one line per event would flood the log.
	if err := d.events.AppendJSON(&ev); err != nil && !errors.Is(err, jsonl.ErrDayFull) && !errors.Is(err, jsonl.ErrNotWritten) {
		d.log.Warn("events journal", "err", err)
	}
	if d.mets != nil {
		d.mets.seen(ev.Source)
	}
	d.write(eng.Handle(ev))
}

// write stamps, journals and offers the incidents the detectors raised.
func (d *detection) write(ins []incident.Incident) {
	for i := range ins {
		in := &ins[i]
		d.stamp(in)
		if d.resp != nil {
			d.resp.Annotate(in) // a growing incident keeps its decided action
		}
		if err := appendIncident(d.incidents, in); err != nil {
			if errors.Is(err, errInvalidIncident) {
				// A detector bug must not poison the queue: the relay
				// would reject it anyway, and the line would be skipped
				// there.
				d.log.Error("detector produced an invalid incident; dropped", "id", in.ID, "err", err)
				continue
			}
			if !errors.Is(err, jsonl.ErrNotWritten) {
				d.log.Error("incidents journal", "id", in.ID, "err", err)
			}
		}
		if d.mets != nil {
			d.mets.raised(in.Source)
		}
		if d.resp != nil {
			d.resp.Offer(*in)
		}
	}
}

// stamp is the one place on the sensor that sets who saw an incident:
// the sensor's host name and its own location (the arc's end), unless
// the detector set them. The relay stamps both again from the token it
// accepted (relay/prepare.go), its one place.
func (d *detection) stamp(in *incident.Incident) {
	if in.Host == "" {
		in.Host = d.cfg.Host
	}
	if in.Target == nil && d.target != nil {
		t := *d.target
		in.Target = &t
	}
}

// errInvalidIncident marks an incident that failed Validate or CheckSize.
var errInvalidIncident = errors.New("invalid incident")

// appendIncident is the sensor's one encode of an incident: its fields
// are validated (without encoding), it is encoded once, its size is
// checked on those bytes, and the bytes become the journal line that the
// forwarders read, decode once and pass on unchanged unless enrichment
// added to them. The detection stage and the responder's updates both
// write through it.
func appendIncident(w *jsonl.Writer, in *incident.Incident) error {
	if err := in.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errInvalidIncident, err)
	}
	b, err := incident.Marshal(in)
	if err == nil {
		err = incident.CheckSize(b)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidIncident, err)
	}
	return w.Append(b)
}
