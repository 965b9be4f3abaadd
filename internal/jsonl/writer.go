// Package jsonl is an append-only store of daily JSONL files named
// <prefix>-YYYY-MM-DD.jsonl (UTC dates) under a directory. The Writer
// appends whole lines with one write each, rolls over at UTC midnight,
// removes files past their retention and caps a day's size; in-process
// readers are woken through Subscribe (and across processes by inotify on
// the directory). The sensor keeps its incident and raw event journals in
// it (sensor/journal reads them back for delivery) and the relay keeps its
// history in it; it is internal because it is a shared piece of both, not a
// public API.
//
// Faults the writer absorbs, and how:
//
//   - A torn last line (a crash or power cut in the middle of a write) is cut
//     off when a writer opens the file, with one log line giving the path and
//     the bytes cut, so the next append is not glued to it. The writer only
//     heals a file no other live writer holds (flock), so it never cuts a
//     line another process is writing.
//   - A clock stepped back across midnight: the writer never goes back to an
//     older day's file than the newest one it has opened or found, so every
//     line lands in a file a reader has not finished with. The file's date
//     is then the date of its first line rather than of each line; readers
//     only need the order, which stays that of the appends. (Keying files by
//     each line's own date would make an older file grow again after readers
//     moved on.) The price is that after a step back a day's file may hold a
//     few minutes of the previous day.
//   - A full disk is a state, not an error: a line the disk refuses is held
//     in memory (up to Options.Backlog lines) and written, in order, as soon
//     as space returns (retried every few seconds); what does not fit is
//     counted as lost. The state is logged once a minute in one line with
//     the path and the free space, and ends with one line when writes
//     succeed again. WriterStats exposes the counts for metrics.
package jsonl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrDayFull is returned by Append when today's file reached MaxDailyBytes;
// the line was dropped and counted.
var ErrDayFull = errors.New("jsonl: daily size cap reached, line dropped")

// ErrLineTooLong is returned for a line over MaxLineBytes; it is dropped.
var ErrLineTooLong = errors.New("jsonl: line over the size limit, dropped")

// ErrNotWritten is returned by Append when the disk refused the line and
// the in-memory backlog was full: the line is lost. It is counted
// (WriterStats.Lost) and the writer logs the state itself, once a minute, so
// callers should not log it again per line.
var ErrNotWritten = errors.New("jsonl: disk refused the line and the backlog is full, line lost")

// reportEvery spaces the log lines about a disk that refuses writes: one a
// minute says the state is still there without flooding the log (an event
// flood on a full disk used to give thousands of lines).
const reportEvery = time.Minute

// retryEvery is how often held lines are retried when no append comes to
// retry them: a disk is freed by a person or a cleanup job, so a few
// seconds of extra delay is nothing, and a failed attempt costs one write.
const retryEvery = 5 * time.Second

// Options configure a Writer. The zero value of every field is usable.
type Options struct {
	// Prefix names the files: "incidents" gives incidents-2026-03-22.jsonl.
	Prefix string
	// RetentionDays removes files whose date is more than this many days
	// before today (checked at open and at each rollover). 0 keeps files
	// forever.
	RetentionDays int
	// MaxDailyBytes caps one day's file; further lines that day are dropped
	// and counted (Dropped). It bounds disk use when an event flood would
	// otherwise fill the disk. 0 means no cap.
	MaxDailyBytes int64
	// MaxLineBytes refuses longer lines. 0 means 64 KiB, four times the
	// largest incident, enough for any raw event with capped fields.
	MaxLineBytes int
	// SyncInterval is the fsync policy. A line is in the page cache once
	// Append returns, so a crash of the process (even SIGKILL) loses
	// nothing; fsync only guards against power loss. With a positive
	// interval the file is fsynced at most that long after a write (group
	// commit, so a burst of 10,000 lines costs one fsync, not 10,000). 0
	// fsyncs after every append; negative never fsyncs (the OS decides).
	SyncInterval time.Duration
	// Backlog is how many lines the disk refused (a full disk, a quota)
	// are held in memory and written in order once it takes them again.
	// Lines past it are lost and counted. 0 holds none: every refused line
	// is lost (right for raw events, which are many and cheap).
	Backlog int
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// Logger receives the healing of torn lines and the full-disk state;
	// nil discards.
	Logger *slog.Logger
}

// WriterStats are a Writer's counters, for metrics.
type WriterStats struct {
	Dropped   uint64 // lines dropped by the size caps (MaxDailyBytes, MaxLineBytes)
	Lost      uint64 // lines the disk refused that did not fit the backlog
	Held      int    // lines held in memory, waiting for the disk
	Failing   bool   // the last write failed (a full disk)
	Torn      uint64 // torn last lines cut off when opening a file
	TornBytes uint64 // bytes cut with them
}

// Writer appends lines to the current day's file. It is safe for concurrent
// use; each line reaches the file in a single write(2) on an O_APPEND
// descriptor, so lines from several writers never interleave.
type Writer struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	f         *os.File
	file      string // name of f, or of the newest file to write (names sort by date)
	size      int64
	dropped   uint64
	syncTimer *time.Timer
	dirty     bool
	closed    bool
	subs      map[chan struct{}]struct{}
	buf       []byte

	// Full-disk state.
	held       [][]byte // lines refused by the disk, oldest first
	lost       uint64
	failing    bool
	failErr    error     // the last write error, without our prefixes
	failPath   string    // the file it concerned
	lostAtFail uint64    // lost when the failure began
	reportAt   time.Time // last report of the state
	retryTimer *time.Timer
	aheadSaid  bool // warned that the newest file is ahead of the clock

	torn, tornBytes uint64
}

// Open creates dir if needed, removes expired files and opens today's file
// (or the newest existing one when the clock is behind it). A file that
// cannot be opened (a full disk) is not an error: the writer holds or
// counts lines until it can.
func Open(dir string, opts Options) (*Writer, error) {
	if opts.Prefix == "" {
		return nil, errors.New("jsonl: empty prefix")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = 64 << 10
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("jsonl: creating %s: %w", dir, err)
	}
	w := &Writer{dir: dir, opts: opts, subs: map[chan struct{}]struct{}{}, log: opts.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	// Never start before the newest existing file: a clock stepped back
	// across midnight (before this start) must not reopen a day readers
	// have finished.
	names, err := List(dir, opts.Prefix)
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		w.file = names[len(names)-1]
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.rollLocked(opts.Now().UTC()); err != nil {
		if !DiskFull(err) {
			return nil, fmt.Errorf("jsonl: opening %s: %w", w.pathLocked(), err)
		}
		w.failedLocked(err, w.pathLocked())
	}
	return w, nil
}

// DiskFull reports whether err means the disk (or the user's quota) has no
// room: a state that passes when space is freed, unlike a permission or
// configuration error.
func DiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// FileName returns the file name for prefix on t's UTC date.
func FileName(prefix string, t time.Time) string {
	return prefix + "-" + t.UTC().Format(time.DateOnly) + ".jsonl"
}

// ParseFileName returns the date of a journal file name for prefix.
func ParseFileName(prefix, name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return time.Time{}, false
	}
	rest, ok = strings.CutSuffix(rest, ".jsonl")
	if !ok {
		return time.Time{}, false
	}
	d, err := time.Parse(time.DateOnly, rest)
	if err != nil {
		return time.Time{}, false
	}
	return d, true
}

// List returns the names (not paths) of prefix's journal files in dir,
// oldest date first.
func List(dir, prefix string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("jsonl: listing %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		if _, ok := ParseFileName(prefix, e.Name()); ok && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // YYYY-MM-DD sorts by date
	return names, nil
}

// Dir returns the directory the writer writes to.
func (w *Writer) Dir() string { return w.dir }

// Prefix returns the file prefix.
func (w *Writer) Prefix() string { return w.opts.Prefix }

// Append writes line plus a newline to today's file. line must not contain
// a newline. When the disk refuses it, the line is held (Options.Backlog)
// and Append returns nil, or it is lost and Append returns ErrNotWritten.
func (w *Writer) Append(line []byte) error {
	if bytes.IndexByte(line, '\n') >= 0 {
		return errors.New("jsonl: line contains a newline")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("jsonl: writer closed")
	}
	if len(line)+1 > w.opts.MaxLineBytes {
		w.dropped++
		return ErrLineTooLong
	}
	// Held lines go first, so the order of the file is that of the
	// appends.
	if len(w.held) > 0 {
		w.flushHeldLocked()
		if len(w.held) > 0 {
			return w.holdLocked(line)
		}
	}
	err := w.writeLocked(line)
	if err == nil || errors.Is(err, ErrDayFull) {
		return err
	}
	w.failedLocked(err, w.pathLocked())
	return w.holdLocked(line)
}

// writeLocked writes one line to the current day's file.
func (w *Writer) writeLocked(line []byte) error {
	if err := w.rollLocked(w.opts.Now().UTC()); err != nil {
		return err
	}
	if w.opts.MaxDailyBytes > 0 && w.size+int64(len(line))+1 > w.opts.MaxDailyBytes {
		w.dropped++
		return ErrDayFull
	}
	w.buf = append(append(w.buf[:0], line...), '\n')
	n, err := w.f.Write(w.buf)
	if err != nil {
		// A short write (a full disk) leaves a fragment; the next line
		// would be glued to it and both skipped by readers. Cut it off.
		if n > 0 {
			if st, serr := w.f.Stat(); serr == nil {
				_ = w.f.Truncate(st.Size() - int64(n))
			}
		}
		return err
	}
	w.size += int64(n)
	if w.failing {
		w.recoveredLocked()
	}
	w.afterWriteLocked()
	return nil
}

// holdLocked keeps a line the disk refused, or counts it lost when the
// backlog is full.
func (w *Writer) holdLocked(line []byte) error {
	if len(w.held) < w.opts.Backlog {
		w.held = append(w.held, bytes.Clone(line))
		w.scheduleRetryLocked()
		return nil
	}
	w.lost++
	w.reportLocked(false)
	return ErrNotWritten
}

// flushHeldLocked writes held lines until the disk refuses one again.
func (w *Writer) flushHeldLocked() {
	for len(w.held) > 0 {
		err := w.writeLocked(w.held[0])
		if err != nil && !errors.Is(err, ErrDayFull) {
			w.failedLocked(err, w.pathLocked())
			return
		}
		w.held[0] = nil
		w.held = w.held[1:]
	}
	w.held = nil
}

func (w *Writer) scheduleRetryLocked() {
	if w.retryTimer != nil || w.closed {
		return
	}
	w.retryTimer = time.AfterFunc(retryEvery, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.retryTimer = nil
		if w.closed {
			return
		}
		w.flushHeldLocked()
		if len(w.held) > 0 {
			w.scheduleRetryLocked()
		}
	})
}

func (w *Writer) pathLocked() string {
	if w.f != nil {
		return w.f.Name()
	}
	return filepath.Join(w.dir, w.file)
}

// failedLocked records a failed write and reports it (the first one at
// once, then once a minute).
func (w *Writer) failedLocked(err error, path string) {
	// The bare cause ("no space left on device"): the path is logged in
	// its own field, and wrapping would repeat our own prefixes.
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	w.failErr, w.failPath = err, path
	first := !w.failing
	if first {
		w.failing, w.lostAtFail = true, w.lost
	}
	w.reportLocked(first)
}

func (w *Writer) reportLocked(force bool) {
	if !w.failing {
		return
	}
	now := time.Now()
	if !force && now.Sub(w.reportAt) < reportEvery {
		return
	}
	w.reportAt = now
	w.log.Warn("jsonl: the disk refuses writes; holding lines in memory and retrying",
		"path", w.failPath, "free_bytes", FreeBytes(w.dir), "err", w.failErr,
		"held", len(w.held), "lost", w.lost-w.lostAtFail)
}

func (w *Writer) recoveredLocked() {
	w.failing = false
	w.log.Info("jsonl: writing again", "path", w.pathLocked(), "still_held", len(w.held),
		"lost_while_failing", w.lost-w.lostAtFail)
	w.reportAt = time.Time{}
}

// FreeBytes returns the space available to unprivileged users on the file
// system holding path, or -1 when it cannot be told.
func FreeBytes(path string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// AppendJSON encodes v as one line and appends it.
func (w *Writer) AppendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("jsonl: encoding: %w", err)
	}
	return w.Append(b)
}

// Dropped returns how many lines were dropped by the size caps.
func (w *Writer) Dropped() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WriterStats{Dropped: w.dropped, Lost: w.lost, Held: len(w.held), Failing: w.failing,
		Torn: w.torn, TornBytes: w.tornBytes}
}

// Subscribe returns a channel that receives a value after appends. It has
// capacity 1 and is never blocked on: a reader that is busy misses no
// wake-up, it just sees one for several appends. Call cancel to stop.
func (w *Writer) Subscribe() (ch <-chan struct{}, cancel func()) {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	w.subs[c] = struct{}{}
	w.mu.Unlock()
	return c, func() {
		w.mu.Lock()
		delete(w.subs, c)
		w.mu.Unlock()
	}
}

// Sync flushes today's file to disk.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.syncLocked()
}

// Close tries the held lines once more, syncs and closes the file. Lines
// still held are lost and counted.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.flushHeldLocked()
	if n := len(w.held); n > 0 {
		w.lost += uint64(n)
		w.log.Error("jsonl: closing with lines the disk refused; they are lost",
			"path", w.pathLocked(), "lost", n)
		w.held = nil
	}
	w.closed = true
	if w.syncTimer != nil {
		w.syncTimer.Stop()
	}
	if w.retryTimer != nil {
		w.retryTimer.Stop()
	}
	err := w.syncLocked()
	if w.f != nil {
		if cerr := w.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("jsonl: closing: %w", cerr)
		}
	}
	return err
}

func (w *Writer) afterWriteLocked() {
	for c := range w.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	// dirty is tracked whatever the policy, so an explicit Sync (or Close)
	// always flushes what was written.
	w.dirty = true
	switch {
	case w.opts.SyncInterval == 0:
		_ = w.syncLocked()
	case w.opts.SyncInterval > 0:
		if w.syncTimer == nil {
			w.syncTimer = time.AfterFunc(w.opts.SyncInterval, func() {
				w.mu.Lock()
				defer w.mu.Unlock()
				w.syncTimer = nil
				if !w.closed {
					_ = w.syncLocked()
				}
			})
		}
	}
}

func (w *Writer) syncLocked() error {
	if !w.dirty || w.f == nil {
		return nil
	}
	w.dirty = false
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("jsonl: fsync %s: %w", w.f.Name(), err)
	}
	return nil
}

// rollLocked opens the file for now's date if it is not the open one. It
// never goes back to an older day than the one it has (see the package
// doc): after a backward clock step it keeps appending to the newer file.
func (w *Writer) rollLocked(now time.Time) error {
	name := FileName(w.opts.Prefix, now)
	if name < w.file { // prefix-YYYY-MM-DD.jsonl compares as dates
		if !w.aheadSaid {
			w.aheadSaid = true
			w.log.Warn("jsonl: the clock is behind the newest file; appending to it so that readers see every line",
				"path", filepath.Join(w.dir, w.file), "clock", now.Format(time.RFC3339))
		}
		name = w.file
	} else if name > w.file {
		w.aheadSaid = false
	}
	if w.f != nil && name == w.file {
		return nil
	}
	path := filepath.Join(w.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	size, err := w.healLocked(f)
	if err != nil {
		f.Close()
		return err
	}
	if w.f != nil {
		_ = w.syncLocked()
		_ = w.f.Close()
	}
	w.f, w.file, w.size = f, name, size
	if err := w.expireLocked(now); err != nil {
		// Expiry is housekeeping: failing it must not stop the writes.
		w.log.Warn("jsonl: removing expired files", "err", err)
	}
	return nil
}

// healLocked takes a shared lock on f for the writer's lifetime and, when
// no other writer holds f (nothing else is appending to it), cuts a torn
// last line: bytes after the last newline, left by a crash or a power cut
// in the middle of a write. It returns f's size afterwards.
func (w *Writer) healLocked(f *os.File) (int64, error) {
	fd := int(f.Fd())
	exclusive := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) == nil
	defer func() {
		// The shared lock tells another writer opening the file that we
		// are here (flock locks go with the process, so a crash frees
		// them).
		_ = syscall.Flock(fd, syscall.LOCK_SH)
	}()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if !exclusive || size == 0 {
		return size, nil
	}
	keep, err := lastLineEnd(f, size)
	if err != nil || keep == size {
		return size, err
	}
	if err := f.Truncate(keep); err != nil {
		return size, err
	}
	w.torn++
	w.tornBytes += uint64(size - keep)
	w.log.Warn("jsonl: cut a torn last line (a crash or power cut in the middle of a write)",
		"path", f.Name(), "bytes", size-keep)
	return keep, nil
}

// lastLineEnd returns the offset just after the last newline in the first
// size bytes of f (0 when there is none).
func lastLineEnd(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 4<<10)
	end := size
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// expireLocked removes files dated more than RetentionDays before now.
func (w *Writer) expireLocked(now time.Time) error {
	if w.opts.RetentionDays <= 0 {
		return nil
	}
	names, err := List(w.dir, w.opts.Prefix)
	if err != nil {
		return err
	}
	today, _ := time.Parse(time.DateOnly, now.Format(time.DateOnly))
	limit := today.AddDate(0, 0, -w.opts.RetentionDays)
	for _, n := range names {
		if d, _ := ParseFileName(w.opts.Prefix, n); d.Before(limit) {
			if err := os.Remove(filepath.Join(w.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("removing expired %s: %w", n, err)
			}
		}
	}
	return nil
}
