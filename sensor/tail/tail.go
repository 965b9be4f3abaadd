// Package tail follows a growing log file line by line, the way the sensor
// reads auth.log, access.log and kern.log. It hands over only whole lines
// (a partial last line waits for its newline), persists the byte offset of
// the last whole line in a small state file written atomically, survives
// rotation by rename (it finishes the old file before moving to the new
// one, also across a restart) and by copytruncate (a file shorter than the
// offset is read again from its start), and wakes on inotify (fsnotify)
// with a slow safety poll for filesystems where notifications get lost.
package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/attackmap/attackmap/sensor/journal"
)

// Config configures a Tailer. Only Path is required.
type Config struct {
	// Path is the file to follow. It need not exist yet.
	Path string
	// StateFile keeps the offset across restarts (JSON, written with
	// temp file, fsync and rename). Empty: offsets are not persisted.
	StateFile string
	// FromStart reads a file that exists at start and has no saved offset
	// from its beginning. Default false: from its end, so a first start
	// does not replay months of history as if it were live. A file that
	// appears later is always read from its beginning.
	FromStart bool
	// Poll is the safety poll: how often the file is checked when no
	// notification came. Default 5 s: inotify normally wakes the tailer at
	// once; the poll only bounds the delay where it does not (NFS, some
	// container filesystems, exhausted watch limits).
	Poll time.Duration
	// RotateGrace is how long a rotated file is still read after its
	// successor appeared. Default 10 s: a writer keeps appending to the
	// renamed file until it reopens (logrotate's postrotate signal), and
	// those lines must not be lost.
	RotateGrace time.Duration
	// MaxLine caps a line; a longer one is cut at MaxLine bytes and the
	// rest up to its newline skipped. Default 64 KiB: no log line worth
	// parsing is longer, and the cap bounds memory on a file with no
	// newlines at all.
	MaxLine int
	// SaveEvery spaces state file writes while lines flow. Default 1 s:
	// a crash re-reads at most a second of lines, and a busy log costs one
	// fsync a second rather than one per line.
	SaveEvery time.Duration
	// Logger gets warnings (watch failures, state write errors).
	Logger *slog.Logger
}

// Tailer follows one file.
type Tailer struct {
	cfg Config
	log *slog.Logger

	cur    *file // the file at Path
	prev   *file // a rotated predecessor still being drained
	prevTo time.Time
	saved  state
	lastSv time.Time

	onStart func() // test hook: called once the start offset is set
}

// state is what the state file holds.
type state struct {
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Offset int64  `json:"offset"`
}

// file is an open file being read.
type file struct {
	f       *os.File
	dev     uint64
	ino     uint64
	off     int64  // offset just past the last whole line handed over
	pending []byte // bytes of a partial line after off
	skip    bool   // dropping the rest of an over-long line
}

// New returns a tailer for cfg.
func New(cfg Config) *Tailer {
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.RotateGrace <= 0 {
		cfg.RotateGrace = 10 * time.Second
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = 64 << 10
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = time.Second
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Tailer{cfg: cfg, log: l.With("file", cfg.Path)}
}

// Run follows the file until ctx ends, calling fn for each whole line
// (without its newline; the slice is valid only during the call). An
// error from fn stops Run and is returned. The offset is saved when Run
// returns. A ctx cancellation returns nil.
func (t *Tailer) Run(ctx context.Context, fn func(line []byte) error) error {
	defer t.closeAll()
	w, err := fsnotify.NewWatcher()
	var events chan fsnotify.Event
	var werrs chan error
	if err != nil {
		t.log.Warn("tail: no inotify, polling only", "err", err)
	} else {
		defer w.Close()
		if err := w.Add(filepath.Dir(t.cfg.Path)); err != nil {
			t.log.Warn("tail: cannot watch directory, polling only", "err", err)
		} else {
			events, werrs = w.Events, w.Errors
		}
	}
	if err := t.start(fn); err != nil {
		return err
	}
	if t.onStart != nil {
		t.onStart()
	}
	poll := time.NewTicker(t.cfg.Poll)
	defer poll.Stop()
	base := filepath.Base(t.cfg.Path)
	for {
		if err := t.step(fn); err != nil {
			t.save(true)
			return err
		}
		t.save(false)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.save(true)
				return nil
			case ev := <-events:
				// Our file or one of its rotated names; other files in
				// a busy /var/log do not wake us.
				if strings.HasPrefix(filepath.Base(ev.Name), base) {
					break wait
				}
			case err := <-werrs:
				t.log.Warn("tail: inotify", "err", err)
			case <-poll.C:
				break wait
			}
		}
	}
}

// start opens the file at its saved or initial offset, first finishing a
// rotated predecessor named in the state file.
func (t *Tailer) start(fn func([]byte) error) error {
	st, ok := t.loadState()
	f, err := openFile(t.cfg.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tail: %w", err)
	}
	if f == nil {
		return nil // appears later; read from its start
	}
	t.cur = f
	size := f.size()
	switch {
	case ok && st.Dev == f.dev && st.Ino == f.ino:
		if st.Offset <= size {
			f.seek(st.Offset)
		} // else truncated while we were away: from the start
	case ok:
		// Rotated while we were away: finish the old file if it is still
		// next to the new one.
		if old := t.findRotated(st); old != nil {
			old.seek(st.Offset)
			if err := t.drain(old, fn, true); err != nil {
				old.f.Close()
				return err
			}
			old.f.Close()
		}
	case !t.cfg.FromStart:
		f.seek(size)
		if size > 0 && !f.endsWithNewline(size) {
			f.skip = true // the rest of a line we did not see begin
		}
	}
	return nil
}

// findRotated looks for the renamed file of a saved state: Path.1 or
// Path-YYYYMMDD (dateext), compared by device and inode.
func (t *Tailer) findRotated(st state) *file {
	cands := []string{t.cfg.Path + ".1"}
	if m, err := filepath.Glob(t.cfg.Path + "-*"); err == nil {
		cands = append(cands, m...)
	}
	for _, c := range cands {
		fi, err := os.Stat(c)
		if err != nil {
			continue
		}
		if dev, ino := devIno(fi); dev == st.Dev && ino == st.Ino {
			if f, err := openFile(c); err == nil {
				if f.dev == st.Dev && f.ino == st.Ino {
					return f
				}
				f.f.Close()
			}
		}
	}
	return nil
}

// step reads what is new and follows rotation and truncation.
func (t *Tailer) step(fn func([]byte) error) error {
	if t.prev != nil {
		final := time.Now().After(t.prevTo)
		if err := t.drain(t.prev, fn, final); err != nil {
			return err
		}
		if final {
			t.prev.f.Close()
			t.prev = nil
		}
	}
	if t.cur == nil {
		f, err := openFile(t.cfg.Path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("tail: %w", err)
		}
		t.cur = f
	}
	if err := t.drain(t.cur, fn, false); err != nil {
		return err
	}
	fi, err := os.Stat(t.cfg.Path)
	if err != nil {
		return nil // renamed away, successor not there yet: keep reading cur
	}
	dev, ino := devIno(fi)
	if dev != t.cur.dev || ino != t.cur.ino {
		// Rotated by rename: a new file took the name.
		nf, err := openFile(t.cfg.Path)
		if err != nil {
			return nil
		}
		if t.prev != nil { // rotated twice within the grace: finish the older one now
			if err := t.drain(t.prev, fn, true); err != nil {
				nf.f.Close()
				return err
			}
			t.prev.f.Close()
		}
		t.prev, t.prevTo = t.cur, time.Now().Add(t.cfg.RotateGrace)
		t.cur = nf
		return t.drain(t.cur, fn, false)
	}
	if fi.Size() < t.cur.off+int64(len(t.cur.pending)) {
		// Truncated in place (copytruncate): start over.
		t.cur.seek(0)
		return t.drain(t.cur, fn, false)
	}
	return nil
}

// drain reads f to its end and hands over whole lines. With final, a
// partial last line is handed over too (the file will not grow again).
func (t *Tailer) drain(f *file, fn func([]byte) error, final bool) error {
	var buf [32 << 10]byte
	for {
		n, err := f.f.Read(buf[:])
		if n > 0 {
			if err := t.lines(f, buf[:n], fn); err != nil {
				return err
			}
		}
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			return fmt.Errorf("tail: reading %s: %w", f.f.Name(), err)
		}
	}
	if final && len(f.pending) > 0 {
		line := f.pending
		f.off += int64(len(line))
		f.pending = f.pending[:0]
		if !f.skip {
			return fn(line)
		}
		f.skip = false
	}
	return nil
}

// lines splits b (appended to f's partial line) into whole lines.
func (t *Tailer) lines(f *file, b []byte, fn func([]byte) error) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if f.skip {
				f.off += int64(len(b))
				return nil
			}
			room := t.cfg.MaxLine - len(f.pending)
			if len(b) >= room {
				// Over-long line: hand over its first MaxLine bytes,
				// skip the rest up to the newline.
				line := append(f.pending, b[:room]...)
				f.off += int64(len(line)) + int64(len(b)-room)
				f.pending = f.pending[:0]
				f.skip = true
				return fn(line)
			}
			f.pending = append(f.pending, b...)
			return nil
		}
		chunk := b[:i]
		b = b[i+1:]
		if f.skip {
			f.off += int64(len(chunk)) + 1
			f.skip = false
			continue
		}
		line := chunk
		if len(f.pending) > 0 {
			line = append(f.pending, chunk...)
		}
		f.off += int64(len(line)) + 1
		if len(line) > t.cfg.MaxLine {
			line = line[:t.cfg.MaxLine]
		}
		f.pending = f.pending[:0]
		if err := fn(line); err != nil {
			return err
		}
	}
	return nil
}

// save writes the state file when the offset moved, at most every
// SaveEvery unless forced.
func (t *Tailer) save(force bool) {
	if t.cfg.StateFile == "" || t.cur == nil {
		return
	}
	st := state{Path: t.cfg.Path, Dev: t.cur.dev, Ino: t.cur.ino, Offset: t.cur.off}
	if st == t.saved || (!force && time.Since(t.lastSv) < t.cfg.SaveEvery) {
		return
	}
	if err := writeState(t.cfg.StateFile, st); err != nil {
		t.log.Warn("tail: saving offset", "err", err)
		return
	}
	t.saved, t.lastSv = st, time.Now()
}

func (t *Tailer) loadState() (state, bool) {
	if t.cfg.StateFile == "" {
		return state{}, false
	}
	b, err := os.ReadFile(t.cfg.StateFile)
	if err != nil {
		return state{}, false
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil || st.Path != t.cfg.Path || st.Offset < 0 {
		t.log.Warn("tail: ignoring unusable state file", "state", t.cfg.StateFile)
		return state{}, false
	}
	t.saved = st
	return st, true
}

// writeState writes st atomically: temp file, fsync, rename, so a crash
// leaves either the old or the new offset, never a torn file.
func writeState(path string, st state) error {
	b, _ := json.Marshal(st)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return journal.WriteFileAtomic(path, append(b, '\n'), 0o640)
}

func (t *Tailer) closeAll() {
	if t.cur != nil {
		t.cur.f.Close()
		t.cur = nil
	}
	if t.prev != nil {
		t.prev.f.Close()
		t.prev = nil
	}
}

func openFile(path string) (*file, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	dev, ino := devIno(fi)
	return &file{f: f, dev: dev, ino: ino}, nil
}

func (f *file) size() int64 {
	fi, err := f.f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (f *file) seek(off int64) {
	if _, err := f.f.Seek(off, io.SeekStart); err != nil {
		off = 0
		_, _ = f.f.Seek(0, io.SeekStart)
	}
	f.off, f.pending, f.skip = off, f.pending[:0], false
}

func (f *file) endsWithNewline(size int64) bool {
	var b [1]byte
	if _, err := f.f.ReadAt(b[:], size-1); err != nil {
		return true
	}
	return b[0] == '\n'
}

func devIno(fi fs.FileInfo) (uint64, uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}
