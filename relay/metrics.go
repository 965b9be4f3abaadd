package relay

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the relay's Prometheus series, all prefixed attackmap_relay_.
type metrics struct {
	in          prometheus.Counter
	duplicates  prometheus.Counter
	rejected    prometheus.Counter
	sent        prometheus.Counter
	disconnects *prometheus.CounterVec
	refused     *prometheus.CounterVec
	ingestAuth  prometheus.Counter
	ingestBad   *prometheus.CounterVec
	histErrors  prometheus.Counter
	fanout      prometheus.Histogram
	connRefused *prometheus.CounterVec
	bodies      prometheus.Counter
	resets      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "attackmap", Subsystem: "relay", Name: name, Help: help})
	}
	m := &metrics{
		in:         c("incidents_in_total", "Incidents accepted into the stream (new and updated copies)."),
		duplicates: c("incidents_duplicate_total", "Incidents acknowledged and dropped as exact repeats."),
		rejected:   c("incidents_rejected_total", "Incidents rejected by validation."),
		sent:       c("events_sent_total", "SSE events handed to subscriber sockets (one per subscriber per incident)."),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "attackmap", Subsystem: "relay",
			Name: "subscriber_disconnects_total", Help: "SSE subscribers removed, by reason: slow (cut off: could not keep up), error (went away), shutdown, closed."},
			[]string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "attackmap", Subsystem: "relay",
			Name: "subscribers_refused_total", Help: "SSE requests refused by the subscriber limits, by limit (total: 503, per_addr and per_net: 429)."},
			[]string{"limit"}),
		ingestAuth: c("ingest_auth_failures_total", "Ingest connections closed for a missing or bad token."),
		ingestBad: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "attackmap", Subsystem: "relay",
			Name: "ingest_bad_messages_total", Help: "Ingest messages that closed the socket, by kind (too_big, malformed, binary)."},
			[]string{"kind"}),
		histErrors: c("history_errors_total", "Batches the stream did not acknowledge (not stored, not broadcast, not acknowledged to the sensor; see batches_not_stored_total for why)."),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "attackmap", Subsystem: "relay", Name: "fanout_seconds",
			Help:    "Time from an incident entering the hub until a writer handed it to all its subscribers' sockets (one observation per incident and writer).",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .15, .2, .3, .5, 1, 2, 5}}),
		connRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "attackmap", Subsystem: "relay",
			Name: "connections_refused_total", Help: "Connections (or, behind a proxy, requests) closed at once by the connection limits, by limit (total: 503, per_addr: 429)."},
			[]string{"limit"}),
		bodies: c("request_bodies_refused_total", "Requests refused with 413 because they carried a body (no endpoint takes one)."),
		resets: c("stream_resets_total", "Streams whose resume point was too old: sent \"event: reset\" and the recent window."),
	}
	return m
}

// register adds the series and the gauges that read live state.
func (m *metrics) register(reg prometheus.Registerer, r *Relay) {
	opts := func(name, help string) prometheus.GaugeOpts {
		return prometheus.GaugeOpts{Namespace: "attackmap", Subsystem: "relay", Name: name, Help: help}
	}
	prepared := func(path string, n *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "attackmap", Subsystem: "relay", Name: "incidents_prepared_total",
			Help: "Incidents decoded, validated and encoded again by this relay, by path: ingest (from a sensor), stream (read from the stream: " +
				"other relays' and writers' messages, history reads, catch-ups; this relay's own ingest is not prepared twice).",
			ConstLabels: prometheus.Labels{"path": path}}, func() float64 { return float64(n.Load()) })
	}
	cs := []prometheus.Collector{m.in, m.duplicates, m.rejected, m.sent, m.disconnects, m.refused, m.ingestAuth, m.ingestBad, m.histErrors, m.fanout,
		m.connRefused, m.bodies, m.resets, prepared("ingest", &r.preparedIngest), prepared("stream", &r.preparedStream),
		prometheus.NewGaugeFunc(opts("connections", "Open connections counted by the connection limits (API, streams, ingest, unfinished requests)."), func() float64 { return float64(r.conns.open()) }),
		prometheus.NewGaugeFunc(opts("subscribers", "Connected SSE subscribers."), func() float64 { return float64(r.hub.Len()) }),
		prometheus.NewGaugeFunc(opts("ingest_connections", "Open sensor ingest sockets."), func() float64 {
			r.mu.Lock()
			defer r.mu.Unlock()
			return float64(len(r.ingest))
		}),
		prometheus.NewGaugeFunc(opts("sequence", "Last SSE sequence number assigned."), func() float64 {
			r.store.mu.Lock()
			defer r.store.mu.Unlock()
			return float64(r.store.seq)
		}),
	}
	for _, c := range cs {
		// A second relay on the same registry (tests) keeps the first's
		// series; registration errors are not fatal to serving.
		_ = reg.Register(c)
	}
}

func registerProcessCollectors(reg *prometheus.Registry) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}
