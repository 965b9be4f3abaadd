package relay

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
)

// What the relay promises about storage, and how it keeps it:
//
//   - An incident is acknowledged to the sensor only after JetStream
//     acknowledged its message: on a single relay (the embedded server)
//     that means written and fsynced (the server runs with sync always),
//     unless Config.NATSSyncInterval is set (`run --serve`, whose sensor
//     keeps its journal and resends from a cursor that trails the acks;
//     or --nats-sync-interval): then written, and on disk within the
//     interval or once Close returns; in a cluster, that a quorum of the
//     stream's replicas stored it. A
//     batch that was not stored whole is refused: no ack, a
//     {"type":"error"} message with the reason, and a close; the sensor
//     sends it again and what was stored of it is dropped by the stream's
//     de-duplication (Nats-Msg-Id, see versionID), the rest stored.
//   - Nothing is broadcast before it is stored: every relay (this one
//     too) broadcasts what it reads from the stream, and the stream only
//     delivers stored messages.
//   - A sequence number is never reused: SSE ids are the stream's
//     sequence numbers, which JetStream never hands out twice (they keep
//     growing when old messages expire, and across restarts).
//   - A full disk is a state: the relay starts and serves the map, feed
//     and stream from what it holds, refuses every batch it cannot store
//     (under an embedded file store, when the disk has less than
//     diskReserve plus the batch free; elsewhere when JetStream refuses
//     the write), logs once a minute with the path and the free space,
//     exports attackmap_relay_disk_full, and takes batches again as soon
//     as one is stored (each sensor retry tries).
//   - A relay that lost its stream (the NATS connection is down, the
//     cluster has no quorum) refuses ingest with a one-line reason and
//     keeps serving what it holds; it resumes by itself.

// diskLogEvery spaces the log lines about a disk that refuses writes: one a
// minute says the state is still there without one line per batch.
const diskLogEvery = time.Minute

// ErrNotStored is the cause of a batch the relay could not store (the
// stream did not acknowledge it: a full disk, a lost stream, a write
// JetStream refused). Nothing of it that was not stored was broadcast, and
// it was not acknowledged: send it again.
var ErrNotStored = errors.New("not stored")

// ErrStreamUnavailable is returned (wrapped with ErrNotStored) for a batch
// refused because the relay is cut off from its stream (no NATS connection,
// no stream leader, no ack in time).
var ErrStreamUnavailable = errors.New("the stream is unavailable")

// ErrDiskFull is returned (wrapped with ErrNotStored) for a batch refused
// because the disk under the data directory refuses writes.
var ErrDiskFull = errors.New("the disk refuses writes")

// durMetrics are the series of the storage promises, prefixed
// attackmap_relay_.
type durMetrics struct {
	diskFull prometheus.Gauge
	refused  *prometheus.CounterVec
	skipped  *prometheus.CounterVec
	oldDups  prometheus.Counter
}

func newDurMetrics(reg prometheus.Registerer) *durMetrics {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "attackmap", Subsystem: "relay", Name: name, Help: help}
	}
	gauge := func(name, help string) prometheus.GaugeOpts {
		return prometheus.GaugeOpts{Namespace: "attackmap", Subsystem: "relay", Name: name, Help: help}
	}
	m := &durMetrics{
		diskFull: prometheus.NewGauge(gauge("disk_full",
			"1 while the disk under the data directory refuses writes: ingest is refused (not acknowledged; sensors keep their incidents and send them again), the map and stream are still served.")),
		refused: prometheus.NewCounterVec(opts("batches_not_stored_total",
			"Ingest batches refused because the relay could not store them (not acknowledged; the sensor sends them again), by reason: disk_full (too little free space under the data directory, or JetStream out of storage), stream_unavailable (no NATS connection, no stream leader, or no ack in time), write_error (JetStream refused the write otherwise), closed (the relay is stopping)."),
			[]string{"reason"}),
		skipped: prometheus.NewCounterVec(opts("history_lines_skipped_total",
			"Old history-file lines skipped by the one-time import into the stream, by reason: torn (a crash in the middle of a write; such a line was never acknowledged), malformed (does not decode or validate: a hand edit, a damaged disk); and stream messages that do not validate (malformed)."),
			[]string{"reason"}),
		oldDups: prometheus.NewCounter(opts("incidents_duplicate_indexed_total",
			"Repeats not in the ring recognised by the stream's de-duplication window (acknowledged and dropped; also counted in incidents_duplicate_total).")),
	}
	cs := []prometheus.Collector{m.diskFull, m.refused, m.skipped, m.oldDups}
	for _, c := range cs {
		_ = reg.Register(c) // see metrics.register
	}
	return m
}

// refuse turns a storage failure into the batch's error, records the
// disk state and counts it. Called with s.mu held. path is where the
// relay stores (the data directory, or the NATS servers).
func (r *Relay) refuse(reason, path string, err error, now time.Time) error {
	r.dm2.refused.WithLabelValues(reason).Inc()
	s := r.store
	if reason != "disk_full" {
		// One line a minute per reason: a lost stream refuses every
		// batch of every sensor until it is back.
		if s.logged == nil {
			s.logged = map[string]time.Time{}
		}
		if now.Sub(s.logged[reason]) >= diskLogEvery {
			s.logged[reason] = now
			r.log.Warn("relay: could not store a batch; refused (not acknowledged; the sensor sends it again)",
				"reason", reason, "path", path, "err", err)
		}
		if reason == "stream_unavailable" {
			return fmt.Errorf("relay: %w: %w: %v; send it again", ErrNotStored, ErrStreamUnavailable, oneLine(err.Error()))
		}
		return fmt.Errorf("relay: %w: %s: %v; send it again", ErrNotStored, reason, oneLine(err.Error()))
	}
	s.fullRefused++
	if !s.full {
		s.full, s.fullSince = true, now
		r.dm2.diskFull.Set(1)
	}
	free := jsonl.FreeBytes(s.dir)
	if now.Sub(s.fullLogged) >= diskLogEvery {
		s.fullLogged = now
		r.log.Warn("relay: the disk refuses writes; refusing ingest until space returns (not acknowledged; sensors send again); the map and stream are still served",
			"path", path, "free_bytes", free, "err", err, "refused_batches", s.fullRefused)
	}
	return fmt.Errorf("relay: %w: %w: %s has %d bytes free; send the batch again later", ErrNotStored, ErrDiskFull, s.dir, free)
}

// stored records a successful write: the end of a full-disk state. Called
// with s.mu held.
func (r *Relay) stored() {
	s := r.store
	if !s.full {
		return
	}
	r.log.Info("relay: the disk takes writes again; ingest resumed", "path", s.dir,
		"refused_batches", s.fullRefused, "after", r.now().Sub(s.fullSince).Round(time.Second))
	s.full, s.fullRefused, s.fullLogged = false, 0, time.Time{}
	r.dm2.diskFull.Set(0)
}

// updates reports whether in is a newer copy of old: incident.Supersedes,
// or the same times, count and severity with a changed action (a block
// applied after the incident was first sent).
func updates(in, old *incident.Incident) bool {
	return in.Supersedes(old) || in.Action != old.Action && !in.LastSeen.Before(old.LastSeen) &&
		in.Count >= old.Count && in.Severity.Rank() >= old.Severity.Rank()
}
