package daemon

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/attackmap/attackmap/internal/atomicfile"
	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/sensor/detect"
	"github.com/attackmap/attackmap/sensor/event"
)

// The detection checkpoint: the detectors' state (detect.Engine.Snapshot)
// and, in the same file, the position in every followed log just past the
// last line that state has seen. Written atomically (temp file, fsync,
// rename) after each flush, and at shutdown; read at start, when the log
// readers resume from its positions instead of their own offsets.
//
// Why this is exactly once for log lines:
//   - SIGTERM: the last checkpoint is written after the final flush; its
//     positions are those of the last event handled, so the restarted
//     sensor reads exactly the lines after it, into the same state.
//   - SIGKILL or power cut: the last checkpoint (at most flushEvery old)
//     still pairs a state with the positions of the lines it had seen;
//     the lines after them are read again and counted once, into that
//     state. Incidents raised from them before the kill are raised again
//     with the same ids (ids are deterministic), which the relay drops or
//     takes as the same incident's update; the raw events of those lines
//     are journaled again (the events journal is a record, not delivered).
//     The incidents journal is fsynced before a checkpoint, so no incident
//     the checkpoint relies on can be lost to a power cut.
//   - The log readers' own offset files run ahead of the checkpoint (they
//     include lines still queued for detection): with a checkpoint they
//     are not used; without one (first start) they are, as before.
//
// Accepted losses, each logged with its reason: a checkpoint that cannot
// be read (corrupt, another version, other detectors switched on) starts
// the detectors empty; the eBPF collectors and the journal follower are
// not replayable, so their events between the last checkpoint and a kill
// count in neither state (a SIGTERM loses none).

// checkpointName is the checkpoint's file name in the data directory.
const checkpointName = "detect-checkpoint.bin"

// checkpointMagic heads the file; the version is in the engine snapshot.
const checkpointMagic = "AMCK"

// maxCheckpointPositions caps the positions JSON read back: a path and a
// few numbers per followed file.
const maxCheckpointPositions = 1 << 20

// checkpoint pairs the detectors' state with the log positions.
type checkpoint struct {
	path string
	log  *slog.Logger
	pos  map[string]event.FilePos // by log path, past the last line handled
	// changed is set when an event was handled since the last write.
	changed bool
}

// note records the position of a handled event (or mark).
func (c *checkpoint) note(ev *event.Event) {
	c.changed = true
	if ev.Origin.Key != "" {
		c.pos[ev.Origin.Key] = ev.Origin.Pos
	}
}

// load restores eng from the checkpoint and returns the positions to
// resume from; nil when there is none or it is unusable (logged).
func (c *checkpoint) load(eng *detect.Engine) map[string]event.FilePos {
	b, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	pos, snap, err := decodeCheckpoint(b, err)
	if err == nil {
		err = eng.Restore(snap)
	}
	if err != nil {
		c.log.Warn("detection checkpoint unusable: the detectors start empty, attacks in progress at the last stop are counted from here",
			"path", c.path, "err", err)
		return nil
	}
	c.pos = pos
	c.log.Info("detection state restored", "path", c.path, "logs", len(pos), "keys", eng.Stats().Keys)
	return pos
}

func decodeCheckpoint(b []byte, err error) (map[string]event.FilePos, []byte, error) {
	if err != nil {
		return nil, nil, err
	}
	if len(b) < len(checkpointMagic)+4 || string(b[:len(checkpointMagic)]) != checkpointMagic {
		return nil, nil, errors.New("not a checkpoint")
	}
	b = b[len(checkpointMagic):]
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if n > maxCheckpointPositions || int(n) > len(b) {
		return nil, nil, fmt.Errorf("positions of %d bytes", n)
	}
	pos := map[string]event.FilePos{}
	if err := json.Unmarshal(b[:n], &pos); err != nil {
		return nil, nil, fmt.Errorf("positions: %w", err)
	}
	return pos, b[n:], nil
}

// write saves the checkpoint when something changed. The incidents
// journal is synced first: the state must never be ahead of the incidents
// on disk.
func (c *checkpoint) write(eng *detect.Engine, incidents *jsonl.Writer) error {
	if !c.changed {
		return nil
	}
	if err := incidents.Sync(); err != nil {
		return fmt.Errorf("syncing the incidents journal first: %w", err)
	}
	js, err := json.Marshal(c.pos)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(checkpointMagic)
	buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(js))))
	buf.Write(js)
	if err := eng.Snapshot(&buf); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o750); err != nil {
		return err
	}
	if err := atomicfile.Write(c.path, buf.Bytes(), 0o600); err != nil {
		return err
	}
	c.changed = false
	return nil
}
