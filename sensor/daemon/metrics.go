package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attackmap/attackmap/sensor/journal"
	"github.com/attackmap/attackmap/sensor/push"
)

// metrics exports the daemon's delivery and durability counters to
// Prometheus, read at scrape time from the journals and forwarders (no
// counting on the hot path). Every loss the design accepts has a counter
// here: lines the disk refused past the backlog, lines dropped by the
// caps, torn lines cut or skipped.
type metrics struct {
	dataDir  string
	journals map[string]*journal.Writer

	mu         sync.Mutex
	forwarders []*push.Forwarder

	lost, dropped, held, failing, torn *prometheus.Desc
	free                               *prometheus.Desc
	delivered, rejected, failures      *prometheus.Desc
	malformed, readTorn, resent        *prometheus.Desc
	stuck, commitFails, indexFails     *prometheus.Desc
}

func newMetrics(dataDir string, journals map[string]*journal.Writer) *metrics {
	j := []string{"journal"}
	r := []string{"relay"}
	return &metrics{
		dataDir: dataDir, journals: journals,
		lost: prometheus.NewDesc("attackmap_sensor_journal_lost_total",
			"Journal lines lost because the disk refused them (full disk) and the in-memory backlog was full.", j, nil),
		dropped: prometheus.NewDesc("attackmap_sensor_journal_dropped_total",
			"Journal lines dropped by the size caps (daily cap, line length).", j, nil),
		held: prometheus.NewDesc("attackmap_sensor_journal_held_lines",
			"Journal lines held in memory while the disk refuses writes.", j, nil),
		failing: prometheus.NewDesc("attackmap_sensor_journal_disk_full",
			"1 while the disk refuses the journal's writes (full disk), else 0.", j, nil),
		torn: prometheus.NewDesc("attackmap_sensor_journal_torn_cut_total",
			"Torn last lines (a crash or power cut mid-write) cut off when the journal file was opened.", j, nil),
		free: prometheus.NewDesc("attackmap_sensor_data_free_bytes",
			"Free bytes on the file system of the data directory.", nil, nil),
		delivered: prometheus.NewDesc("attackmap_sensor_delivered_total",
			"Incidents a relay acknowledged as accepted.", r, nil),
		rejected: prometheus.NewDesc("attackmap_sensor_rejected_total",
			"Incidents a relay refused (logged with its reason, skipped).", r, nil),
		failures: prometheus.NewDesc("attackmap_sensor_delivery_failures_total",
			"Failed delivery attempts (retried).", r, nil),
		malformed: prometheus.NewDesc("attackmap_sensor_journal_malformed_total",
			"Journal lines that are not incidents, skipped by the reader.", r, nil),
		readTorn: prometheus.NewDesc("attackmap_sensor_journal_torn_read_total",
			"Torn journal lines skipped by the reader (the whole line glued to one is still delivered).", r, nil),
		resent: prometheus.NewDesc("attackmap_sensor_resend_skipped_total",
			"Journal lines read again (unreadable cursor, replaced file, crash) and skipped because the sent index has them.", r, nil),
		stuck: prometheus.NewDesc("attackmap_sensor_cursor_stuck",
			"1 while the delivery cursor cannot be stored (full disk), else 0.", r, nil),
		commitFails: prometheus.NewDesc("attackmap_sensor_cursor_write_failures_total",
			"Failed cursor writes (retried).", r, nil),
		indexFails: prometheus.NewDesc("attackmap_sensor_sent_index_failures_total",
			"Failed sent-index writes; each may cost a resend, which the relay drops.", r, nil),
	}
}

func (m *metrics) add(f *push.Forwarder) {
	m.mu.Lock()
	m.forwarders = append(m.forwarders, f)
	m.mu.Unlock()
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.lost, m.dropped, m.held, m.failing, m.torn, m.free,
		m.delivered, m.rejected, m.failures, m.malformed, m.readTorn, m.resent, m.stuck, m.commitFails, m.indexFails} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, label string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label)
	}
	gauge := func(d *prometheus.Desc, v float64, label string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, label)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for name, w := range m.journals {
		s := w.Stats()
		counter(m.lost, s.Lost, name)
		counter(m.dropped, s.Dropped, name)
		gauge(m.held, float64(s.Held), name)
		gauge(m.failing, b2f(s.Failing), name)
		counter(m.torn, s.Torn, name)
	}
	ch <- prometheus.MustNewConstMetric(m.free, prometheus.GaugeValue, float64(journal.FreeBytes(m.dataDir)))
	m.mu.Lock()
	fs := append([]*push.Forwarder(nil), m.forwarders...)
	m.mu.Unlock()
	for _, f := range fs {
		s := f.Stats()
		counter(m.delivered, s.Delivered, f.Name)
		counter(m.rejected, s.Rejected, f.Name)
		counter(m.failures, s.Failures, f.Name)
		counter(m.malformed, s.Malformed, f.Name)
		counter(m.readTorn, s.Torn, f.Name)
		counter(m.resent, s.Resent, f.Name)
		gauge(m.stuck, b2f(s.CursorStuck), f.Name)
		counter(m.commitFails, s.CommitFailures, f.Name)
		counter(m.indexFails, s.IndexFailures, f.Name)
	}
}

// metricsReadHeader bounds reading a scrape request's head: Prometheus
// sends it at once; 10 s covers a slow network.
const metricsReadHeader = 10 * time.Second

// serveMetrics serves reg on ln until ctx ends.
func serveMetrics(ctx context.Context, ln net.Listener, reg *prometheus.Registry, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: metricsReadHeader}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("metrics on http://" + ln.Addr().String() + "/metrics")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
