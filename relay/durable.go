package relay

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/atomicfile"
	"github.com/attackmap/attackmap/internal/jsonl"
)

// What the relay promises about storage, and how it keeps it:
//
//   - An incident is acknowledged only after its history line is written
//     and fsynced. Nothing is broadcast before its line is written (so the
//     map shows only what survives a crash of the process), and a batch
//     whose lines could not all be written, or whose fsync failed, is
//     refused: no ack, a {"type":"error"} message with the reason, and a
//     close. The sensor sends it again; what was stored of it is then
//     dropped as a repeat, the rest is stored. After a failed fsync the
//     kernel may have dropped the pages, so every line written since the
//     last good fsync is written again on resend (the entry is "unsaved").
//   - A sequence number is never reused: numbers are reserved in blocks of
//     seqBlock by writing the state file (atomically, fsynced) before any
//     of them is published, and a start continues after the larger of the
//     reservation and the history. A clean stop writes the exact last
//     number, so restarts do not skip a block each. If the reservation
//     cannot be written, ingest is refused.
//   - A full disk is a state: the relay starts and serves the map, feed and
//     stream from what it holds, refuses every batch it cannot store (see
//     above), logs once a minute with the path and the free space, exports
//     attackmap_relay_disk_full, and takes batches again as soon as a write
//     succeeds (each sensor retry tries).
//   - A torn last history line (a crash in the middle of a write) was never
//     acknowledged (acks wait for the whole line and the fsync); it is
//     counted as torn on load, never glued to the next line (the journal
//     cuts it when it opens the file), and a whole line glued behind a
//     fragment by an older writer is still loaded.

// seqBlock is how many sequence numbers one write of the state file
// reserves. A crash skips at most this many (SSE ids only need to grow),
// and at the relay's ingest rates a block lasts seconds to minutes, so the
// state file (one small fsynced write and rename) is written rarely.
const seqBlock = 1000

// seqCorruptJump is how far past the history a start goes when the state
// file is unreadable (a hand edit, a damaged disk: writes are atomic): the
// reservation is lost, and the history may lack the lines written after
// its last fsync, which are at most a few seconds of ingest; a million is
// far beyond that.
const seqCorruptJump = 1_000_000

// diskLogEvery spaces the log lines about a disk that refuses writes: one a
// minute says the state is still there without one line per batch.
const diskLogEvery = time.Minute

// ErrNotStored is the cause of a batch the relay could not store (a write
// or fsync of the history or of the sequence state failed). Nothing of it
// that was not stored was broadcast, and it was not acknowledged: send it
// again. ErrDiskFull is the common case.
var ErrNotStored = errors.New("not stored")

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

func newDurMetrics(reg prometheus.Registerer, r *Relay) *durMetrics {
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
			"Ingest batches refused because the relay could not store them (not acknowledged; the sensor sends them again), by reason: disk_full, write_error (a history write failed otherwise), sync_error (fsync failed), seq_state (the sequence reservation could not be written), closed (the relay is stopping)."),
			[]string{"reason"}),
		skipped: prometheus.NewCounterVec(opts("history_lines_skipped_total",
			"History lines skipped when loading at start, by reason: torn (a crash in the middle of a write; such a line was never acknowledged), malformed (does not decode or validate: a hand edit, a damaged disk)."),
			[]string{"reason"}),
		oldDups: prometheus.NewCounter(opts("incidents_duplicate_indexed_total",
			"Repeats recognised by the retention-long de-duplication index after they left the ring (acknowledged and dropped; also counted in incidents_duplicate_total).")),
	}
	cs := []prometheus.Collector{m.diskFull, m.refused, m.skipped, m.oldDups,
		prometheus.NewGaugeFunc(gauge("dedup_index_versions", "Incident versions held by the de-duplication index (8 bytes each for days before today)."), func() float64 {
			r.store.mu.Lock()
			defer r.store.mu.Unlock()
			return float64(r.store.seen.len())
		}),
		prometheus.NewGaugeFunc(gauge("sequence_reserved", "Highest SSE sequence number reserved in the state file; no number above it has been sent."), func() float64 {
			r.store.mu.Lock()
			defer r.store.mu.Unlock()
			return float64(r.store.reserved)
		}),
	}
	for _, c := range cs {
		_ = reg.Register(c) // see metrics.register
	}
	return m
}

// loadSeq reads the sequence state: the highest number that may have been
// used. ok is false when the file exists but does not hold a number.
func (s *store) loadSeq(data []byte) (n uint64, ok bool) {
	n, err := strconv.ParseUint(string(bytes.TrimSpace(data)), 10, 64)
	return n, err == nil
}

// writeSeq stores n as the sequence state, atomically.
func (s *store) writeSeq(n uint64) error {
	return atomicfile.Write(filepath.Join(s.dir, seqFile), []byte(strconv.FormatUint(n, 10)+"\n"), 0o640)
}

// reserveSeq makes sure every number up to upTo is reserved in the state
// file before it is published. Called with s.mu held.
func (s *store) reserveSeq(upTo uint64) error {
	if upTo <= s.reserved {
		return nil
	}
	if s.dir == "" { // nothing survives a restart: nothing to reserve
		s.reserved = upTo
		return nil
	}
	n := upTo + seqBlock
	if err := s.writeSeq(n); err != nil {
		return err
	}
	s.reserved = n
	return nil
}

// refuse turns a storage failure into the batch's error, records the
// disk state and counts it. Called with s.mu held.
func (r *Relay) refuse(reason, path string, err error, now time.Time) error {
	r.dm2.refused.WithLabelValues(reason).Inc()
	if reason != "disk_full" {
		r.log.Warn("relay: could not store a batch; refused (not acknowledged; the sensor sends it again)",
			"reason", reason, "path", path, "err", err)
		return fmt.Errorf("relay: %w: %s: %v; send it again", ErrNotStored, reason, oneLine(err.Error()))
	}
	s := r.store
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

// writeReason names a failed history append for refuse.
func writeReason(err error) string {
	// jsonl.Writer (with no backlog) reports a write the disk refused
	// as ErrNotWritten; opening a file on a full disk gives ENOSPC.
	if errors.Is(err, jsonl.ErrNotWritten) || jsonl.DiskFull(err) {
		return "disk_full"
	}
	return "write_error"
}

// syncHistory fsyncs the history up to write generation gen (group commit:
// one fsync covers every batch written before it) and reports whether the
// entries of one batch are safe to acknowledge. After a failed fsync every
// entry written since the last good one is marked unsaved (a resend
// writes it again) and forgotten by the index.
func (r *Relay) syncHistory(gen uint64, check []*entry) error {
	s := r.store
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hist == nil {
		return nil
	}
	if s.syncedGen < gen {
		target, hist := s.gen, s.hist
		s.mu.Unlock()
		err := hist.Sync()
		s.mu.Lock()
		if err == nil {
			s.syncedGen = max(s.syncedGen, target)
			i := 0
			for i < len(s.unsynced) && s.unsynced[i].gen <= target {
				s.unsynced[i] = nil
				i++
			}
			s.unsynced = s.unsynced[i:]
		} else {
			r.m.histErrors.Add(float64(len(s.unsynced)))
			r.log.Warn("relay: history fsync failed; the batches since the last good fsync are refused and written again when resent",
				"err", err, "incidents", len(s.unsynced))
			for _, e := range s.unsynced {
				e.unsaved = true
				s.seen.remove(e.vh)
			}
			s.unsynced = nil
			s.syncedGen = s.gen
		}
	}
	for _, e := range check {
		if e.unsaved {
			r.dm2.refused.WithLabelValues("sync_error").Inc()
			return fmt.Errorf("relay: %w: the history fsync failed; send the batch again", ErrNotStored)
		}
	}
	return nil
}

// updates reports whether in is a newer copy of old: incident.Supersedes,
// or the same times, count and severity with a changed action (a block
// applied after the incident was first sent).
func updates(in, old *incident.Incident) bool {
	return in.Supersedes(old) || in.Action != old.Action && !in.LastSeen.Before(old.LastSeen) &&
		in.Count >= old.Count && in.Severity.Rank() >= old.Severity.Rank()
}
