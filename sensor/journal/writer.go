// Package journal is the sensor's durable queue: daily JSONL files named
// <prefix>-YYYY-MM-DD.jsonl (UTC dates) under a data directory. The Writer
// appends whole lines with one write each, rolls over at UTC midnight,
// removes files past their retention and caps a day's size; readers are woken
// in-process through Subscribe (and across processes by inotify on the
// directory).
package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrDayFull is returned by Append when today's file reached MaxDailyBytes;
// the line was dropped and counted.
var ErrDayFull = errors.New("journal: daily size cap reached, line dropped")

// ErrLineTooLong is returned for a line over MaxLineBytes; it is dropped.
var ErrLineTooLong = errors.New("journal: line over the size limit, dropped")

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
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Writer appends lines to the current day's file. It is safe for concurrent
// use; each line reaches the file in a single write(2) on an O_APPEND
// descriptor, so lines from several writers never interleave.
type Writer struct {
	dir  string
	opts Options

	mu        sync.Mutex
	f         *os.File
	day       string // YYYY-MM-DD of f
	size      int64
	dropped   uint64
	syncTimer *time.Timer
	dirty     bool
	closed    bool
	subs      map[chan struct{}]struct{}
	buf       []byte
}

// Open creates dir if needed, removes expired files and opens today's file.
func Open(dir string, opts Options) (*Writer, error) {
	if opts.Prefix == "" {
		return nil, errors.New("journal: empty prefix")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = 64 << 10
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: creating %s: %w", dir, err)
	}
	w := &Writer{dir: dir, opts: opts, subs: map[chan struct{}]struct{}{}}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.rollLocked(opts.Now().UTC()); err != nil {
		return nil, err
	}
	return w, nil
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
		return nil, fmt.Errorf("journal: listing %s: %w", dir, err)
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
// a newline.
func (w *Writer) Append(line []byte) error {
	if bytes.IndexByte(line, '\n') >= 0 {
		return errors.New("journal: line contains a newline")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("journal: writer closed")
	}
	if len(line)+1 > w.opts.MaxLineBytes {
		w.dropped++
		return ErrLineTooLong
	}
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
		return fmt.Errorf("journal: appending to %s: %w", w.f.Name(), err)
	}
	w.size += int64(n)
	w.afterWriteLocked()
	return nil
}

// AppendJSON encodes v as one line and appends it.
func (w *Writer) AppendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("journal: encoding: %w", err)
	}
	return w.Append(b)
}

// Dropped returns how many lines were dropped by the size caps.
func (w *Writer) Dropped() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
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

// Close syncs and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.syncTimer != nil {
		w.syncTimer.Stop()
	}
	err := w.syncLocked()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("journal: closing: %w", cerr)
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
		return fmt.Errorf("journal: fsync %s: %w", w.f.Name(), err)
	}
	return nil
}

// rollLocked opens the file for now's date if it is not the open one.
func (w *Writer) rollLocked(now time.Time) error {
	day := now.Format(time.DateOnly)
	if w.f != nil && day == w.day {
		return nil
	}
	path := filepath.Join(w.dir, FileName(w.opts.Prefix, now))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("journal: opening %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("journal: stat %s: %w", path, err)
	}
	if w.f != nil {
		_ = w.syncLocked()
		_ = w.f.Close()
	}
	w.f, w.day, w.size = f, day, st.Size()
	return w.expireLocked(now)
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
				return fmt.Errorf("journal: removing expired %s: %w", n, err)
			}
		}
	}
	return nil
}
