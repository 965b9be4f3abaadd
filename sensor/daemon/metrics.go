package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/sensor/geoip"
	"github.com/attackmap/attackmap/sensor/push"
)

// metrics exports the daemon's delivery and durability counters to
// Prometheus, read at scrape time from the journals and forwarders (no
// counting on the hot path). Every loss the design accepts has a counter
// here: lines the disk refused past the backlog, lines dropped by the
// caps, torn lines cut or skipped.
type metrics struct {
	dataDir  string
	journals map[string]*jsonl.Writer
	// incidents is the journal the forwarders read (for their lag); geo
	// the GeoIP databases in service (set by run once they are open).
	incidents *jsonl.Writer
	geo       *geoip.DB

	mu         sync.Mutex
	forwarders []*push.Forwarder

	lost, dropped, held, failing, torn *prometheus.Desc
	free                               *prometheus.Desc
	delivered, rejected, failures      *prometheus.Desc
	malformed, readTorn, resent        *prometheus.Desc
	stuck, commitFails, indexFails     *prometheus.Desc
	journalBytes                       *prometheus.Desc
	lagBytes, lagIncidents             *prometheus.Desc
	relayUp, lastAck                   *prometheus.Desc
	authOK                             *prometheus.Desc
	urlIndex, urlInfo, failovers       *prometheus.Desc
	geoInfo, geoAge                    *prometheus.Desc
}

func newMetrics(dataDir string, journals map[string]*jsonl.Writer) *metrics {
	j := []string{"journal"}
	r := []string{"relay"}
	return &metrics{
		dataDir: dataDir, journals: journals, incidents: journals["incidents"],
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
		journalBytes: prometheus.NewDesc("attackmap_sensor_journal_bytes",
			"Bytes in the journal's files on disk (every day kept by the retention).", j, nil),
		lagBytes: prometheus.NewDesc("attackmap_sensor_push_lag_bytes",
			"Bytes of the incidents journal after the relay's stored cursor: what is not yet acknowledged (for the relay of --serve, not yet known to be on its disk: it also counts the last 3 s of acknowledged incidents).", r, nil),
		lagIncidents: prometheus.NewDesc("attackmap_sensor_push_lag_incidents",
			"Incident lines of the incidents journal after the relay's stored cursor (counted in the first 16 MiB, estimated past it).", r, nil),
		relayUp: prometheus.NewDesc("attackmap_sensor_relay_connected",
			"1 while the last delivery to the relay succeeded, 0 after a failure (relay down, token refused) or before the first delivery.", r, nil),
		authOK: prometheus.NewDesc("attackmap_sensor_relay_auth_ok",
			"1 when the relay accepted the sensor's token at the last answer, 0 while it rejects it (absent before the first answer); see GET /healthz.", r, nil),
		lastAck: prometheus.NewDesc("attackmap_sensor_relay_last_ack_timestamp_seconds",
			"When the relay last acknowledged a batch (Unix time; absent before the first ack).", r, nil),
		urlIndex: prometheus.NewDesc("attackmap_sensor_relay_url_index",
			"Which of the relay's URLs the pusher uses (0: the first; relays with several URLs fail over round robin).", r, nil),
		urlInfo: prometheus.NewDesc("attackmap_sensor_relay_url_info",
			"1 for the URL the pusher uses, labelled with it.", []string{"relay", "url"}, nil),
		failovers: prometheus.NewDesc("attackmap_sensor_relay_failovers_total",
			"Moves from one of the relay's URLs to the next (connection failure, refusal or stall).", r, nil),
		geoInfo: prometheus.NewDesc("attackmap_sensor_geoip_database_info",
			"1 for every GeoIP database in service, labelled with its path, type and geo source.", []string{"path", "type", "source"}, nil),
		geoAge: prometheus.NewDesc("attackmap_sensor_geoip_database_age_seconds",
			"Age of a GeoIP database in service, from its build time (monthly releases: alert past about 45 days).", []string{"path"}, nil),
	}
}

func (m *metrics) add(f *push.Forwarder) {
	m.mu.Lock()
	m.forwarders = append(m.forwarders, f)
	m.mu.Unlock()
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.lost, m.dropped, m.held, m.failing, m.torn, m.free,
		m.delivered, m.rejected, m.failures, m.malformed, m.readTorn, m.resent, m.stuck, m.commitFails, m.indexFails,
		m.journalBytes, m.lagBytes, m.lagIncidents, m.relayUp, m.lastAck, m.authOK, m.urlIndex, m.urlInfo, m.failovers, m.geoInfo, m.geoAge} {
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
		if files, err := jsonl.List(w.Dir(), w.Prefix()); err == nil {
			gauge(m.journalBytes, float64(filesBytes(w.Dir(), files)), name)
		}
	}
	ch <- prometheus.MustNewConstMetric(m.free, prometheus.GaugeValue, float64(jsonl.FreeBytes(m.dataDir)))
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
		gauge(m.relayUp, b2f(s.Connected), f.Name)
		if s.AuthKnown {
			// A relay that cannot be reached says nothing of the
			// token: only a rejection makes this 0.
			gauge(m.authOK, b2f(!s.TokenRejected), f.Name)
		}
		if s.URLCount > 0 {
			gauge(m.urlIndex, float64(s.URLIndex), f.Name)
			ch <- prometheus.MustNewConstMetric(m.urlInfo, prometheus.GaugeValue, 1, f.Name, s.URL)
			counter(m.failovers, s.Failovers, f.Name)
		}
		if !s.LastAck.IsZero() {
			gauge(m.lastAck, float64(s.LastAck.UnixNano())/1e9, f.Name)
		}
		if m.incidents != nil && f.Reader != nil {
			if b, n, err := lag(m.incidents.Dir(), m.incidents.Prefix(), f.Reader.Committed().File, f.Reader.Committed().Offset); err == nil {
				gauge(m.lagBytes, float64(b), f.Name)
				gauge(m.lagIncidents, float64(n), f.Name)
			}
		}
	}
	if m.geo != nil {
		now := time.Now()
		for _, st := range m.geo.Status() {
			if !st.Loaded {
				continue
			}
			ch <- prometheus.MustNewConstMetric(m.geoInfo, prometheus.GaugeValue, 1, st.Path, st.Type, st.Source)
			ch <- prometheus.MustNewConstMetric(m.geoAge, prometheus.GaugeValue, now.Sub(st.Built).Seconds(), st.Path)
		}
	}
}

// filesBytes sums the sizes of the named files in dir.
func filesBytes(dir string, names []string) int64 {
	var n int64
	for _, name := range names {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// lagScan caps the bytes a scrape reads to count the lines behind one
// cursor: 16 MiB is about 16,000 incidents and takes a few milliseconds;
// past it the count is extrapolated from the lines in that much, so a
// relay that has been down for days does not make every scrape read the
// whole journal.
const lagScan = 16 << 20

// lag measures what follows the cursor (file, off) in the journal: bytes
// on disk, and incident lines (complete lines, counted up to lagScan and
// estimated past it). A cursor on no file (a new reader) is behind
// everything.
func lag(dir, prefix, file string, off int64) (behind, lines int64, err error) {
	names, err := jsonl.List(dir, prefix)
	if err != nil {
		return 0, 0, err
	}
	var scanned, counted int64
	buf := make([]byte, 64<<10)
	for _, name := range names {
		if file != "" && name < file {
			continue
		}
		start := int64(0)
		if name == file {
			start = off
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			continue // removed by the retention since List
		}
		fi, err := f.Stat()
		if err != nil || fi.Size() <= start {
			f.Close()
			continue
		}
		behind += fi.Size() - start
		r := io.NewSectionReader(f, start, fi.Size()-start)
		for scanned < lagScan {
			n, err := r.Read(buf[:min(int64(len(buf)), lagScan-scanned)])
			scanned += int64(n)
			counted += int64(bytes.Count(buf[:n], []byte{'\n'}))
			if err != nil {
				break
			}
		}
		f.Close()
	}
	if behind > scanned && scanned > 0 {
		return behind, counted * behind / scanned, nil
	}
	return behind, counted, nil
}

// metricsReadHeader bounds reading a scrape request's head: Prometheus
// sends it at once; 10 s covers a slow network.
const metricsReadHeader = 10 * time.Second

// serveMetrics serves reg on ln until ctx ends (GET /metrics), and health
// on GET /healthz.
func serveMetrics(ctx context.Context, ln net.Listener, reg *prometheus.Registry, health http.HandlerFunc, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /healthz", health)
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
