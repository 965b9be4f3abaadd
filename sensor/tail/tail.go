// Package tail follows a growing log file line by line, the way the sensor
// reads auth.log, access.log and kern.log. It hands over only whole lines
// (a partial last line waits for its newline), persists the byte offset of
// the last whole line in a small state file written atomically, and wakes
// on inotify (fsnotify) with a slow safety poll for filesystems where
// notifications get lost.
//
// Rotation loses nothing:
//   - By rename (logrotate's default, `create`): the old file is finished
//     before the new one, for RotateGrace after the new one appeared (the
//     writer may still append to the renamed file until it reopens). The
//     state names both files while the old one drains, so a restart within
//     the grace finishes the old one first.
//   - By copytruncate: the file keeps its inode, so it is recognised by a
//     fingerprint of its first bytes (event.FileRef.Sum): a file shorter
//     than the offset, or whose first bytes changed (truncated and at once
//     refilled past the old size), is read again from its start.
//   - While the sensor was down: the file the state names is looked for
//     among the rotated names (Path.1, Path.2.gz, ..., Path-YYYYMMDD[.gz],
//     logrotate's `compress`, `delaycompress` and `dateext`), by inode or,
//     once compressed, by fingerprint (read through gzip); it is finished
//     from the saved offset, every file rotated after it is read whole,
//     then the current file from its start.
//
// A rotated file that cannot be found again (deleted, compressed with
// something other than gzip) is the one accepted loss: it is logged with
// the byte count left unread and counted (Stats.Lost).
package tail

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/attackmap/attackmap/internal/atomicfile"
	"github.com/attackmap/attackmap/sensor/event"
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
	// Resume, when set, is where to start instead of the state file: the
	// position a caller saved together with what it derived from the lines
	// (the daemon's detection checkpoint), so that the lines after it are
	// read again and none before it.
	Resume *event.FilePos
	// Idle, when set, is called each time the tailer has read everything
	// there is, before it waits; Pos is valid during the call.
	Idle func()
	// Logger gets warnings (watch failures, state write errors).
	Logger *slog.Logger
}

// fingerprintLen is how many leading bytes identify a file's content: 256
// bytes hold the first line or two of a log, with a timestamp, which no
// other file of the same log starts with.
const fingerprintLen = 256

// maxRotated is how many numbered rotations (Path.1 ... Path.N, each also
// .gz) are searched for a file rotated while the sensor was down:
// logrotate's common `rotate` counts are 4 to 14.
const maxRotated = 20

// Tailer follows one file.
type Tailer struct {
	cfg Config
	log *slog.Logger

	cur    *file // the file at Path
	prev   *file // a rotated predecessor still being drained
	prevTo time.Time
	saved  state
	lastSv time.Time

	lost atomic.Int64 // rotated files that could not be found again
	// Counters for Stats: read by the metrics at scrape time, so atomic;
	// bumped once per read of up to 32 KiB, or per rotation.
	nLines, nBytes, rotations, truncations atomic.Uint64

	onStart func() // test hook: called once the start offset is set
}

// state is what the state file holds.
type state struct {
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Offset int64  `json:"offset"`
	Sum    uint64 `json:"sum,omitempty"`
	SumLen int64  `json:"sum_len,omitempty"`
	// Prev is the rotated file still being drained, if any.
	Prev *prevState `json:"prev,omitempty"`
}

type prevState struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Offset int64  `json:"offset"`
	Sum    uint64 `json:"sum,omitempty"`
	SumLen int64  `json:"sum_len,omitempty"`
}

// file is an open file being read.
type file struct {
	f       *os.File
	r       io.Reader // what is read: f, or a gzip reader over it
	dev     uint64
	ino     uint64
	off     int64  // offset just past the last whole line handed over
	pending []byte // bytes of a partial line after off
	skip    bool   // dropping the rest of an over-long line
	sum     uint64 // fingerprint of the first sumLen bytes
	sumLen  int64
}

// Stats are a tailer's counters.
type Stats struct {
	// Lost counts the rotated files left unread because they could not
	// be found again (deleted, or compressed other than with gzip); each
	// is logged with the offset it was left at.
	Lost int64
	// Lines and Bytes count what was read (lines: newlines read, so a
	// skipped over-long line counts once; bytes: also those of a partial
	// last line not yet handed over). Rotations counts the files rotated
	// away (renamed, or found rotated at start), Truncations the
	// copytruncates seen.
	Lines, Bytes           uint64
	Rotations, Truncations uint64
}

// Stats returns the counters; safe to call from any goroutine.
func (t *Tailer) Stats() Stats {
	return Stats{Lost: t.lost.Load(), Lines: t.nLines.Load(), Bytes: t.nBytes.Load(),
		Rotations: t.rotations.Load(), Truncations: t.truncations.Load()}
}

// Path is the file the tailer follows.
func (t *Tailer) Path() string { return t.cfg.Path }

// Set holds the tailers of a process by path, so that its metrics can read
// their Stats: the log collectors add each tailer they start, the metrics
// read them at scrape time. A nil *Set takes nothing.
type Set struct {
	mu sync.Mutex
	m  map[string]*Tailer
}

// Add records t under its path, replacing a tailer of the same path.
func (s *Set) Add(t *Tailer) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*Tailer{}
	}
	s.m[t.cfg.Path] = t
}

// Stats returns each tailer's counters by path.
func (s *Set) Stats() map[string]Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Stats, len(s.m))
	for p, t := range s.m {
		out[p] = t.Stats()
	}
	return out
}

// Pos returns the position just past the last line handed over: the file
// at Path and the rotated one still drained. Call it only from fn or Idle.
func (t *Tailer) Pos() event.FilePos {
	var p event.FilePos
	if t.cur != nil {
		p.Cur = t.cur.ref()
	}
	if t.prev != nil {
		p.Prev = t.prev.ref()
	}
	return p
}

func (f *file) ref() event.FileRef {
	return event.FileRef{Dev: f.dev, Ino: f.ino, Off: f.off, Sum: f.sum, SumLen: f.sumLen}
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
// (without its newline, nor the CR of a "\r\n" ending; the slice is valid
// only during the call). An error from fn stops Run and is returned. The
// offset is saved when Run returns. A ctx cancellation returns nil.
func (t *Tailer) Run(ctx context.Context, fn func(line []byte) error) error {
	defer t.closeAll()
	// A configured path that is not there is most often a typo: say so
	// plainly, once, before the watch warnings below.
	noDir := false
	if _, err := os.Stat(t.cfg.Path); errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(filepath.Dir(t.cfg.Path)); errors.Is(derr, fs.ErrNotExist) {
			noDir = true
			t.log.Warn("tail: the file does not exist, nor its directory: check the path; checking for it every "+t.cfg.Poll.String(), "dir", filepath.Dir(t.cfg.Path))
		} else {
			t.log.Warn("tail: the file does not exist: check the path; following it from its start when it appears")
		}
	}
	w, err := fsnotify.NewWatcher()
	var events chan fsnotify.Event
	var werrs chan error
	if err != nil {
		t.log.Warn("tail: no inotify, polling only", "err", err)
	} else {
		defer w.Close()
		if err := w.Add(filepath.Dir(t.cfg.Path)); err != nil {
			// A missing directory was just reported, with the polling.
			if !noDir {
				t.log.Warn("tail: cannot watch directory, polling only", "err", err)
			}
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
		if t.cfg.Idle != nil {
			t.cfg.Idle()
		}
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

// start opens the file at its saved or initial offset, first finishing
// the files the saved state names that were rotated meanwhile.
func (t *Tailer) start(fn func([]byte) error) error {
	st, ok := t.loadState()
	if ok && st.Prev != nil {
		// Stopped while a rotated file was still drained: finish it first.
		pr := event.FileRef{Dev: st.Prev.Dev, Ino: st.Prev.Ino, Off: st.Prev.Offset, Sum: st.Prev.Sum, SumLen: st.Prev.SumLen}
		if err := t.finishRotated(pr, false, fn); err != nil {
			return err
		}
	}
	f, err := openFile(t.cfg.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tail: %w", err)
	}
	saved := event.FileRef{Dev: st.Dev, Ino: st.Ino, Off: st.Offset, Sum: st.Sum, SumLen: st.SumLen}
	if f == nil {
		if ok {
			// Rotated away and not recreated yet: finish the old file.
			return t.finishRotated(saved, true, fn)
		}
		return nil // appears later; read from its start
	}
	t.cur = f
	size := f.size()
	switch {
	case ok && st.Dev == f.dev && st.Ino == f.ino && st.Offset <= size && (st.SumLen == 0 || f.startsWith(st.Sum, st.SumLen)):
		f.seek(st.Offset)
	case ok:
		// Rotated while we were away (renamed, or copied and truncated:
		// the inode may be the same, or reused, but not the content):
		// finish the old file and every one rotated after it, then read
		// the new one from its start.
		t.rotations.Add(1)
		if err := t.finishRotated(saved, true, fn); err != nil {
			return err
		}
	case !t.cfg.FromStart:
		f.seek(size)
		if size > 0 && !f.endsWithNewline(size) {
			f.skip = true // the rest of a line we did not see begin
		}
	}
	f.fingerprint()
	return nil
}

// rotatedNames lists the names a rotated Path may have, newest first:
// Path.1, Path.1.gz, Path.2, Path.2.gz, ..., then Path-* (dateext) in
// reverse name order (the dates sort).
func (t *Tailer) rotatedNames() []string {
	var out []string
	for n := 1; n <= maxRotated; n++ {
		base := t.cfg.Path + "." + strconv.Itoa(n)
		out = append(out, base, base+".gz")
	}
	if m, err := filepath.Glob(t.cfg.Path + "-*"); err == nil {
		slices.Sort(m)
		slices.Reverse(m)
		out = append(out, m...)
	}
	return out
}

// finishRotated finds the rotated file ref among the rotated names (by
// inode, or by fingerprint once compressed), reads it from ref.Off to its
// end and, with newer, reads whole every file rotated after it. A file
// that cannot be found is logged and counted as lost.
func (t *Tailer) finishRotated(ref event.FileRef, newer bool, fn func([]byte) error) error {
	names := t.rotatedNames()
	found := -1
	var old *file
	for i, name := range names {
		f, err := openRotated(name)
		if err != nil {
			continue
		}
		// The renamed file keeps its inode (unless the inode was freed
		// and reused: then the content tells); a compressed or copied
		// one is known by its first bytes.
		plain := f.r == io.Reader(f.f)
		sameIno := plain && f.dev == ref.Dev && f.ino == ref.Ino
		if (sameIno && (ref.SumLen == 0 || f.startsWith(ref.Sum, ref.SumLen))) ||
			(!sameIno && ref.SumLen > 0 && f.startsWith(ref.Sum, ref.SumLen)) {
			found, old = i, f
			break
		}
		f.close()
	}
	if old == nil {
		if ref.Ino != 0 {
			t.log.Warn("tail: a file rotated while the sensor was stopped was not found again; its unread lines are lost",
				"offset", ref.Off, "inode", ref.Ino)
			t.lost.Add(1)
		}
		return nil
	}
	if err := old.skipTo(ref.Off); err != nil {
		old.close()
		t.log.Warn("tail: rotated file shorter than the saved offset; reading it from the start", "name", old.f.Name())
		if old, err = openRotated(old.f.Name()); err != nil {
			return nil
		}
	}
	t.log.Info("tail: finishing a file rotated while the sensor was stopped", "name", old.f.Name(), "offset", ref.Off)
	err := t.drain(old, fn, true)
	old.close()
	if err != nil || !newer {
		return err
	}
	for i := found - 1; i >= 0; i-- {
		f, err := openRotated(names[i])
		if err != nil {
			continue
		}
		t.log.Info("tail: reading a file rotated while the sensor was stopped", "name", names[i])
		err = t.drain(f, fn, true)
		f.close()
		if err != nil {
			return err
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
	if t.cur.sumLen > 0 && !t.cur.startsWith(t.cur.sum, t.cur.sumLen) {
		// Same inode, other first bytes: truncated and refilled before
		// we looked (copytruncate, then a burst larger than the old
		// size). Every byte now in the file is new.
		if err := t.truncated(fn); err != nil {
			return err
		}
	}
	if err := t.drain(t.cur, fn, false); err != nil {
		return err
	}
	t.cur.fingerprint()
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
		t.rotations.Add(1)
		err = t.drain(t.cur, fn, false)
		t.cur.fingerprint()
		return err
	}
	if fi.Size() < t.cur.off+int64(len(t.cur.pending)) {
		// Truncated in place (copytruncate): start over.
		if err := t.truncated(fn); err != nil {
			return err
		}
		err = t.drain(t.cur, fn, false)
		t.cur.fingerprint()
		return err
	}
	return nil
}

// truncated handles a copytruncate of the current file: the lines written
// after our offset and before the copy are in the copy (Path.1), so it is
// finished from our offset if found, then the file is read from its start.
func (t *Tailer) truncated(fn func([]byte) error) error {
	t.truncations.Add(1)
	ref := t.cur.ref()
	t.cur.seek(0)
	t.cur.sum, t.cur.sumLen = 0, 0
	if ref.SumLen == 0 {
		return nil
	}
	ref.Ino = 0 // the copy has another inode; only the content tells
	return t.finishRotated(ref, false, fn)
}

// drain reads f to its end and hands over whole lines. With final, a
// partial last line is handed over too (the file will not grow again).
func (t *Tailer) drain(f *file, fn func([]byte) error, final bool) error {
	var buf [32 << 10]byte
	for {
		n, err := f.r.Read(buf[:])
		if n > 0 {
			t.nBytes.Add(uint64(n))
			t.nLines.Add(uint64(bytes.Count(buf[:n], []byte{'\n'})))
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
			return fn(trimCR(line))
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
		if err := fn(trimCR(line)); err != nil {
			return err
		}
	}
	return nil
}

// trimCR drops the '\r' of a line that ended with "\r\n": sshd writes its
// log lines that way to stderr and to an `sshd -E` file, and a parser
// must not see the CR as part of the message.
func trimCR(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}

// save writes the state file when the offset moved, at most every
// SaveEvery unless forced.
func (t *Tailer) save(force bool) {
	if t.cfg.StateFile == "" || t.cur == nil {
		return
	}
	st := state{Path: t.cfg.Path, Dev: t.cur.dev, Ino: t.cur.ino, Offset: t.cur.off, Sum: t.cur.sum, SumLen: t.cur.sumLen}
	if p := t.prev; p != nil {
		st.Prev = &prevState{Dev: p.dev, Ino: p.ino, Offset: p.off, Sum: p.sum, SumLen: p.sumLen}
	}
	if sameState(st, t.saved) || (!force && time.Since(t.lastSv) < t.cfg.SaveEvery) {
		return
	}
	if err := writeState(t.cfg.StateFile, st); err != nil {
		t.log.Warn("tail: saving offset", "err", err)
		return
	}
	t.saved, t.lastSv = st, time.Now()
}

func sameState(a, b state) bool {
	if (a.Prev == nil) != (b.Prev == nil) || (a.Prev != nil && *a.Prev != *b.Prev) {
		return false
	}
	a.Prev, b.Prev = nil, nil
	return a == b
}

func (t *Tailer) loadState() (state, bool) {
	if r := t.cfg.Resume; r != nil {
		st := state{Path: t.cfg.Path, Dev: r.Cur.Dev, Ino: r.Cur.Ino, Offset: r.Cur.Off, Sum: r.Cur.Sum, SumLen: r.Cur.SumLen}
		if r.Prev.Ino != 0 {
			st.Prev = &prevState{Dev: r.Prev.Dev, Ino: r.Prev.Ino, Offset: r.Prev.Off, Sum: r.Prev.Sum, SumLen: r.Prev.SumLen}
		}
		return st, r.Cur.Ino != 0
	}
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
	return atomicfile.Write(path, append(b, '\n'), 0o640)
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
	return &file{f: f, r: f, dev: dev, ino: ino}, nil
}

// openRotated opens a rotated file, through gzip when its name ends in
// ".gz".
func openRotated(name string) (*file, error) {
	f, err := openFile(name)
	if err != nil || !strings.HasSuffix(name, ".gz") {
		return f, err
	}
	zr, err := gzip.NewReader(f.f)
	if err != nil {
		f.f.Close()
		return nil, err
	}
	f.r = zr
	return f, nil
}

func (f *file) close() { f.f.Close() }

// skipTo moves a freshly opened file to off: a seek, or for a compressed
// one reading and discarding off bytes.
func (f *file) skipTo(off int64) error {
	if f.r == io.Reader(f.f) {
		if off > f.size() {
			return io.ErrUnexpectedEOF
		}
		f.seek(off)
		return nil
	}
	n, err := io.CopyN(io.Discard, f.r, off)
	if n < off {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	f.off = off
	return nil
}

// head returns up to n of the file's first bytes (of the decompressed
// content for a gzip file; that reader is then consumed, so only call it
// on a fresh one).
func (f *file) head(n int64) []byte {
	b := make([]byte, n)
	var got int
	if f.r == io.Reader(f.f) {
		got, _ = f.f.ReadAt(b, 0)
	} else {
		got, _ = io.ReadFull(f.r, b)
		// Start over: the caller reads from the beginning next.
		if _, err := f.f.Seek(0, io.SeekStart); err == nil {
			if zr, ok := f.r.(*gzip.Reader); ok {
				_ = zr.Reset(f.f)
			}
		}
	}
	return b[:got]
}

// startsWith reports whether the file's first n bytes hash to sum.
func (f *file) startsWith(sum uint64, n int64) bool {
	b := f.head(n)
	return int64(len(b)) == n && hashBytes(b) == sum
}

// fingerprint takes (or extends, while the file is shorter than
// fingerprintLen) the fingerprint of a plain file.
func (f *file) fingerprint() {
	if f.sumLen >= fingerprintLen || f.r != io.Reader(f.f) {
		return
	}
	b := f.head(fingerprintLen)
	if int64(len(b)) > f.sumLen {
		f.sum, f.sumLen = hashBytes(b), int64(len(b))
	}
}

func hashBytes(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
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
