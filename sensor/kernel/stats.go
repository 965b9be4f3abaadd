package kernel

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attackmap/attackmap/sensor/event"
)

// Kernel drop reasons (enum drop_reason in collector.bpf.c).
const (
	kdropNetFull  = 0 // network record: ring buffer full
	kdropProcFull = 1 // exec/open record: ring buffer full
	kdropProcShed = 2 // exec/open record: shed to keep room for network records
	kdropMax      = 3
)

var kdropNames = [kdropMax]string{"net_ring_full", "proc_ring_full", "proc_shed"}

// kinds are the event kinds this package emits, in metric order.
var kinds = [...]string{event.KindExec, event.KindOpen, event.KindConnect, event.KindAccept, event.KindProbe}

func kindIndex(k string) int {
	for i, s := range kinds {
		if s == k {
			return i
		}
	}
	return 0
}

// stats are the collector's counters.
type stats struct {
	read         [len(kinds)]atomic.Uint64 // events decoded, by kind
	userDrops    [2]atomic.Uint64          // events dropped at a full lane, by lane
	decodeErrors atomic.Uint64             // records that did not decode

	mu         sync.Mutex
	released   bool             // the kernel maps are gone
	lastKernel [kdropMax]uint64 // kernel drops at the last read
	logged     [kdropMax + 2]uint64
}

// metrics exports stats as Prometheus counters, read at scrape time.
type metrics struct {
	st          *stats
	kernelDrops func() [kdropMax]uint64
	events      *prometheus.Desc
	dropped     *prometheus.Desc
	decodeErrs  *prometheus.Desc
}

func newMetrics(st *stats, kernelDrops func() [kdropMax]uint64) *metrics {
	return &metrics{
		st:          st,
		kernelDrops: kernelDrops,
		events: prometheus.NewDesc("attackmap_ebpf_events_total",
			"Events read from the eBPF ring buffer and decoded, by kind.", []string{"kind"}, nil),
		dropped: prometheus.NewDesc("attackmap_ebpf_dropped_total",
			"eBPF events lost: stage=kernel (ring buffer full, or process records shed to keep room for network records) or stage=user (a lane's channel full).",
			[]string{"stage", "reason"}, nil),
		decodeErrs: prometheus.NewDesc("attackmap_ebpf_decode_errors_total",
			"Ring-buffer records that could not be decoded.", nil, nil),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.events
	ch <- m.dropped
	ch <- m.decodeErrs
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for i, k := range kinds {
		ch <- prometheus.MustNewConstMetric(m.events, prometheus.CounterValue, float64(m.st.read[i].Load()), k)
	}
	for i, n := range m.kernelDrops() {
		ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(n), "kernel", kdropNames[i])
	}
	ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(m.st.userDrops[laneNet].Load()), "user", "net_lane_full")
	ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(m.st.userDrops[laneProc].Load()), "user", "proc_lane_full")
	ch <- prometheus.MustNewConstMetric(m.decodeErrs, prometheus.CounterValue, float64(m.st.decodeErrors.Load()))
}
