package daemon

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attackmap/attackmap/sensor/detect"
	"github.com/attackmap/attackmap/sensor/respond"
	"github.com/attackmap/attackmap/sensor/tail"
)

// detectionMetrics exports the detection stage's state and the responder's
// decisions. The engine belongs to the detection goroutine, so that
// goroutine publishes a copy of its Stats at every flush (flushEvery) and a
// scrape reads the copy; the responder's Stats are safe to read at any
// time. The eBPF collector registers its own counters (kernel.Register).
type detectionMetrics struct {
	engine atomic.Pointer[detect.Stats]
	resp   *respond.Responder

	// events counts raw events by source and incidents the incidents
	// raised by detector. The detection goroutine finds its counter in
	// a map (no label hashing, no allocation per event once a name was
	// seen); the map is only locked to add a name and to scrape.
	labelsMu  sync.Mutex
	events    map[string]*atomic.Uint64
	incidents map[string]*atomic.Uint64

	eventsBy, incidentsBy                         *prometheus.Desc
	keys, evicted, ahead                          *prometheus.Desc
	active, blocks, skips, expired, offersDropped *prometheus.Desc
	kernelDrops                                   *prometheus.Desc
	logLines, logBytes, logRotations, logTruncs   *prometheus.Desc
	logLost                                       *prometheus.Desc

	// tails holds the log files' tailers (the log collectors add them).
	tails tail.Set
}

func newDetectionMetrics(resp *respond.Responder) *detectionMetrics {
	b := []string{"backend"}
	p := []string{"path"}
	// Every detector is a label from the start, at 0: a rate or an alert
	// on one detector works before its first incident.
	incidents := map[string]*atomic.Uint64{}
	for _, name := range detect.Detectors() {
		incidents[name] = new(atomic.Uint64)
	}
	return &detectionMetrics{
		resp: resp, events: map[string]*atomic.Uint64{}, incidents: incidents,
		logLines: prometheus.NewDesc("attackmap_sensor_log_lines_total",
			"Lines read from a followed log file (rotated predecessors included).", p, nil),
		logBytes: prometheus.NewDesc("attackmap_sensor_log_bytes_total",
			"Bytes read from a followed log file (rotated predecessors included).", p, nil),
		logRotations: prometheus.NewDesc("attackmap_sensor_log_rotations_total",
			"Rotations of a followed log file seen (renamed away, or found rotated at start).", p, nil),
		logTruncs: prometheus.NewDesc("attackmap_sensor_log_truncations_total",
			"Truncations in place (copytruncate) of a followed log file seen.", p, nil),
		logLost: prometheus.NewDesc("attackmap_sensor_log_rotated_lost_total",
			"Rotated files of a followed log that could not be found again to finish (deleted, or compressed other than with gzip).", p, nil),
		eventsBy: prometheus.NewDesc("attackmap_sensor_events_total",
			"Raw events the collectors delivered to the detectors, by source (ebpf, auth_log, journald, access_log, error_log, firewall_log).", []string{"source"}, nil),
		incidentsBy: prometheus.NewDesc("attackmap_sensor_incidents_total",
			"Incident copies written to the incidents journal (a new incident or an update), by detector.", []string{"detector"}, nil),
		keys: prometheus.NewDesc("attackmap_sensor_detector_keys",
			"Source addresses the detectors track, summed over detectors (capped per detector by detect.max_keys).", nil, nil),
		evicted: prometheus.NewDesc("attackmap_sensor_detector_evicted_total",
			"Tracked addresses dropped because a detector was full (a flood of sources).", nil, nil),
		ahead: prometheus.NewDesc("attackmap_sensor_events_ahead_total",
			"Events dated more than the allowed skew ahead of the host clock, handled at their source's time instead.", nil, nil),
		active: prometheus.NewDesc("attackmap_sensor_blocks_active",
			"Addresses blocked now (would-be blocks in a dry run).", b, nil),
		blocks: prometheus.NewDesc("attackmap_sensor_blocks_total",
			"Blocks made (would-be blocks in a dry run).", b, nil),
		skips: prometheus.NewDesc("attackmap_sensor_block_skips_total",
			"Incidents whose source was not blocked, by reason (allow list, private, ssh session, caps, ...).", []string{"backend", "reason"}, nil),
		expired: prometheus.NewDesc("attackmap_sensor_blocks_expired_total",
			"Blocks that reached the end of their time.", b, nil),
		offersDropped: prometheus.NewDesc("attackmap_sensor_block_offers_dropped_total",
			"Incidents not considered for blocking because the responder's queue was full (offered again at their next update).", b, nil),
		kernelDrops: prometheus.NewDesc("attackmap_sensor_block_kernel_drops_total",
			"Packets the blocking backend dropped in the kernel (nftables rule counters, XDP drop counters).", b, nil),
	}
}

// maxLabels caps the distinct sources and detectors counted by name:
// both come from code, not from input (a few dozen at most), so the cap
// only guards the metric's cardinality against a future bug; names past it
// are counted as "other".
const maxLabels = 64

// seen counts one raw event of source.
func (m *detectionMetrics) seen(source string) { m.bump(m.events, source) }

// raised counts one incident copy of detector.
func (m *detectionMetrics) raised(detector string) { m.bump(m.incidents, detector) }

func (m *detectionMetrics) bump(by map[string]*atomic.Uint64, name string) {
	m.labelsMu.Lock()
	c := by[name]
	if c == nil {
		if len(by) >= maxLabels {
			name = "other"
		}
		if c = by[name]; c == nil {
			c = new(atomic.Uint64)
			by[name] = c
		}
	}
	m.labelsMu.Unlock()
	c.Add(1)
}

// publish records the engine's state for the next scrape.
func (m *detectionMetrics) publish(s detect.Stats) { m.engine.Store(&s) }

func (m *detectionMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.eventsBy, m.incidentsBy, m.keys, m.evicted, m.ahead, m.active, m.blocks, m.skips, m.expired,
		m.offersDropped, m.kernelDrops, m.logLines, m.logBytes, m.logRotations, m.logTruncs, m.logLost} {
		ch <- d
	}
}

func (m *detectionMetrics) Collect(ch chan<- prometheus.Metric) {
	m.labelsMu.Lock()
	for name, c := range m.events {
		ch <- prometheus.MustNewConstMetric(m.eventsBy, prometheus.CounterValue, float64(c.Load()), name)
	}
	for name, c := range m.incidents {
		ch <- prometheus.MustNewConstMetric(m.incidentsBy, prometheus.CounterValue, float64(c.Load()), name)
	}
	m.labelsMu.Unlock()
	for path, s := range m.tails.Stats() {
		ch <- prometheus.MustNewConstMetric(m.logLines, prometheus.CounterValue, float64(s.Lines), path)
		ch <- prometheus.MustNewConstMetric(m.logBytes, prometheus.CounterValue, float64(s.Bytes), path)
		ch <- prometheus.MustNewConstMetric(m.logRotations, prometheus.CounterValue, float64(s.Rotations), path)
		ch <- prometheus.MustNewConstMetric(m.logTruncs, prometheus.CounterValue, float64(s.Truncations), path)
		ch <- prometheus.MustNewConstMetric(m.logLost, prometheus.CounterValue, float64(s.Lost), path)
	}
	if s := m.engine.Load(); s != nil {
		ch <- prometheus.MustNewConstMetric(m.keys, prometheus.GaugeValue, float64(s.Keys))
		ch <- prometheus.MustNewConstMetric(m.evicted, prometheus.CounterValue, float64(s.Evicted))
		ch <- prometheus.MustNewConstMetric(m.ahead, prometheus.CounterValue, float64(s.Ahead))
	}
	if m.resp == nil {
		return
	}
	s := m.resp.Stats()
	be := s.Backend
	if s.DryRun {
		be += " (dry run)"
	}
	ch <- prometheus.MustNewConstMetric(m.active, prometheus.GaugeValue, float64(s.Active), be)
	ch <- prometheus.MustNewConstMetric(m.blocks, prometheus.CounterValue, float64(s.Blocks), be)
	ch <- prometheus.MustNewConstMetric(m.expired, prometheus.CounterValue, float64(s.Expired), be)
	ch <- prometheus.MustNewConstMetric(m.offersDropped, prometheus.CounterValue, float64(s.Dropped), be)
	ch <- prometheus.MustNewConstMetric(m.kernelDrops, prometheus.CounterValue, float64(s.KernelDrops), be)
	reasons := make([]string, 0, len(s.Skips))
	for r := range s.Skips {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		ch <- prometheus.MustNewConstMetric(m.skips, prometheus.CounterValue, float64(s.Skips[r]), be, r)
	}
}
