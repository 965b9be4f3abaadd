package relay

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// natsMetrics are the series of the relay's link to its stream, prefixed
// attackmap_relay_.
type natsMetrics struct {
	resets prometheus.Counter
}

func newNATSMetrics(reg prometheus.Registerer, r *Relay) *natsMetrics {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "attackmap", Subsystem: "relay", Name: name, Help: help}, f)
	}
	m := &natsMetrics{
		resets: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "attackmap", Subsystem: "relay", Name: "stream_consumer_resets_total",
			Help: "Times the ordered consumer reading the stream was recreated (a NATS node or the connection went away); it continues after the last message read."}),
	}
	cs := []prometheus.Collector{m.resets,
		gauge("nats_connected", "1 while the relay is connected to NATS (its embedded server or a cluster); 0: ingest is refused, the map is still served.", func() float64 {
			if r.nats != nil && r.nats.nc.IsConnected() {
				return 1
			}
			return 0
		}),
		gauge("stream_lag", "Stream messages the relay has not read into its ring yet (the ordered consumer's pending count).", func() float64 {
			return float64(r.pending.Load())
		}),
		gauge("nats_cluster_size", "NATS servers the relay knows of (itself included for an embedded server; 1 on a single relay).", func() float64 {
			return float64(r.clusterSize())
		}),
		gauge("stream_replicas", "The stream's replica count.", func() float64 {
			if r.nats == nil {
				return 0
			}
			return float64(r.nats.replicas)
		}),
	}
	for _, c := range cs {
		_ = reg.Register(c) // see metrics.register
	}
	return m
}

// clusterSize is how many NATS servers the relay knows of.
func (r *Relay) clusterSize() int {
	l := r.nats
	if l == nil {
		return 0
	}
	if l.ns != nil {
		if l.ns.ClusterName() == "" || r.cfg.NATSListen == "" {
			return 1
		}
		return 1 + l.ns.NumRemotes()
	}
	return len(l.nc.Servers())
}

// serveHealth answers the public /healthz: "ok" with 200, or 503 and a
// one-line reason while the relay is cut off from its stream (it then
// refuses ingest but still serves the map, so a load balancer may keep
// sending viewers and should send sensors elsewhere).
func (r *Relay) serveHealth(w http.ResponseWriter, req *http.Request) {
	r.health(w, req, false)
}

// serveHealthDetail answers /healthz on the metrics listener: the same
// first line, then the stream's state (connected, last sequence, lag,
// cluster size), one "name value" per line.
func (r *Relay) serveHealthDetail(w http.ResponseWriter, req *http.Request) {
	r.health(w, req, true)
}

func (r *Relay) health(w http.ResponseWriter, _ *http.Request, detail bool) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	var b strings.Builder
	code := http.StatusOK
	if r.nats == nil || !r.nats.nc.IsConnected() {
		code = http.StatusServiceUnavailable
		b.WriteString("stream unavailable: no connection to NATS; ingest refused, the map is served from the ring\n")
	} else {
		b.WriteString("ok\n")
	}
	if !detail {
		w.WriteHeader(code)
		_, _ = w.Write([]byte(b.String()))
		return
	}
	r.store.mu.Lock()
	seq := r.store.seq
	r.store.mu.Unlock()
	fmt.Fprintf(&b, "nats_connected %t\nstream_seq %d\nstream_lag %d\ncluster_size %d\n",
		code == http.StatusOK, seq, r.pending.Load(), r.clusterSize())
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}
