package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/attackmap/attackmap/internal/jsonl"
)

// ReaderOptions configure a Reader. Only Prefix and CursorPath are needed.
type ReaderOptions struct {
	// Prefix names the journal: "incidents" reads incidents-*.jsonl.
	Prefix string
	// CursorPath is where the committed position is stored. Every consumer
	// (one per relay) has its own.
	CursorPath string
	// Wake, when set, is an in-process signal that the writer appended
	// (Writer.Subscribe). Without it the reader relies on inotify alone.
	Wake <-chan struct{}
	// Check decides whether a line is well formed. A line it refuses is
	// counted (Malformed), logged once with its file and offset, and
	// skipped. nil accepts every non-blank line.
	Check func(line []byte) error
	// MaxLineBytes refuses longer lines as malformed. 0 means 64 KiB, the
	// writer's default limit.
	MaxLineBytes int
	// RolloverGrace is how long an older file must stay unchanged, once
	// read to its end, before the reader moves to the next day's file. It
	// covers a writer in another process that is still appending to
	// yesterday's file just after midnight. 0 means 1 s: the price is at
	// most that much extra latency once a day.
	RolloverGrace time.Duration
	// SafetyPoll re-checks the files this often even without a wake-up, in
	// case an inotify event was lost (queue overflow, a file system that
	// does not report). It is not the normal path. 0 means 1 minute.
	SafetyPoll time.Duration
	// Logger receives warnings (malformed lines, truncation); nil discards.
	Logger *slog.Logger
}

// Line is one complete journal line, without its newline. Data is valid
// until the next call to Next.
type Line struct {
	Data   []byte
	File   string
	Offset int64
	// Hash is LineHash(Data): what MarkSent records once the line was
	// delivered.
	Hash uint64
}

// Batch is what Next returns: the good lines read, and the position after
// the last byte consumed (including skipped malformed lines). Committing End
// acknowledges the whole batch.
type Batch struct {
	Lines []Line
	End   Position
}

// Reader follows a journal from a stored cursor: it returns only
// newline-terminated lines (a partial last line waits for its end), finishes
// an older day's file before moving to the next, starts a file over when it
// shrank below the committed offset or was replaced (another inode), and
// skips malformed lines. Lines recorded as sent (MarkSent) are skipped
// whenever the reader reads a file again from before its cursor: after an
// unreadable cursor, a replaced or shrunk file, or a crash between the
// delivery and the cursor write. It is
// woken by the writer in-process (ReaderOptions.Wake) and by inotify on the
// directory when the writer is another process; it never polls except for a
// long safety poll. A Reader is used by one goroutine.
type Reader struct {
	dir  string
	opts ReaderOptions
	log  *slog.Logger

	commitMu  sync.Mutex // Commit may run on another goroutine than Next
	committed Position
	malformed atomic.Uint64
	torn      atomic.Uint64 // torn lines: partial lines that will never end
	resent    atomic.Uint64 // lines skipped because the sent index has them

	// The sent index, and the hashes of the current file's acknowledged
	// lines while re-reading from before the cursor (nil otherwise: the
	// cursor alone says what was sent).
	sent       sentIndex
	skipSet    map[uint64]struct{}
	recovering bool   // the cursor was unusable: skip per file until the end
	recoverWhy string // why, for the log line at the end
	recoverAt  uint64 // resent when the recovery began

	// The file being read and the consumed position in it.
	name     string
	f        *os.File
	ino      uint64
	off      int64  // offset of pending[0]: end of the last consumed line
	pending  []byte // bytes read from off on, not yet a complete line
	skipping bool   // inside an oversized line: drop bytes up to its newline
	skipped  bool   // this Next consumed bytes that gave no line

	// Rollover grace: the size of the current file when we first saw it
	// finished while a newer file existed, and when.
	settleSize int64
	settleAt   time.Time

	readBuf []byte
	out     []byte // backing store for the returned lines
	lines   []Line

	armSkip bool // load the current file's sent hashes when opening it

	watcher *fsnotify.Watcher
	notify  chan struct{} // coalesced inotify wake-ups
	done    chan struct{}
	closed  bool
}

// OpenReader opens the journal in dir at the position stored in
// opts.CursorPath (or at the oldest file when there is none).
func OpenReader(dir string, opts ReaderOptions) (*Reader, error) {
	if opts.Prefix == "" {
		return nil, errors.New("journal: empty prefix")
	}
	if opts.CursorPath == "" {
		return nil, errors.New("journal: empty cursor path")
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = 64 << 10
	}
	if opts.RolloverGrace <= 0 {
		opts.RolloverGrace = time.Second
	}
	if opts.SafetyPoll <= 0 {
		opts.SafetyPoll = time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: creating %s: %w", dir, err)
	}
	sent := newSentIndex(opts.CursorPath)
	sent.prune(dir)
	recovering, why := false, ""
	pos, err := LoadCursor(opts.CursorPath, opts.Prefix)
	if errors.Is(err, ErrBadCursor) {
		// Rebuild the position by reading from the oldest file and
		// skipping what the sent index holds: refusing to start would
		// deliver nothing, and replaying days would repeat what the relay
		// may no longer remember.
		recovering, why, pos, err = true, err.Error(), Position{}, nil
	}
	if err != nil {
		return nil, err
	}
	if n, files := sent.size(); recovering || pos.File == "" && n > 0 {
		if !recovering {
			recovering, why = true, "cursor file missing"
		}
		log.Warn("journal: unreadable cursor; rebuilding it from the sent index, skipping what was acknowledged",
			"cursor", opts.CursorPath, "reason", why, "acknowledged", n, "files", files)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("journal: inotify: %w", err)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("journal: watching %s: %w", dir, err)
	}
	r := &Reader{
		dir: dir, opts: opts, log: log, committed: pos,
		sent: sent, recovering: recovering, recoverWhy: why,
		name: pos.File, off: pos.Offset, ino: pos.Inode,
		readBuf: make([]byte, 64<<10),
		watcher: w,
		// Capacity 1, never blocked on: a burst of inotify events becomes
		// one wake-up, like Writer.Subscribe.
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	// The first file is checked against the index, whatever the cursor:
	// the process may have died between recording a delivery and writing
	// the cursor.
	r.armSkip = true
	go r.watch()
	return r, nil
}

// watch turns inotify events on our files into coalesced wake-ups, so that a
// burst of appends from another process costs one re-read, not one per
// event.
func (r *Reader) watch() {
	prefix := r.opts.Prefix + "-"
	for {
		select {
		case ev, ok := <-r.watcher.Events:
			if !ok {
				return
			}
			if !strings.HasPrefix(filepath.Base(ev.Name), prefix) {
				continue
			}
			select {
			case r.notify <- struct{}{}:
			default:
			}
		case err, ok := <-r.watcher.Errors:
			if !ok {
				return
			}
			// An overflow means events were lost: wake up and re-read.
			r.log.Warn("journal: inotify", "err", err)
			select {
			case r.notify <- struct{}{}:
			default:
			}
		case <-r.done:
			return
		}
	}
}

// Committed returns the last committed position.
func (r *Reader) Committed() Position {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	return r.committed
}

// Malformed returns how many lines were skipped as malformed.
func (r *Reader) Malformed() uint64 { return r.malformed.Load() }

// Torn returns how many torn lines (partial lines that will never be
// finished: a crash or a full disk in the middle of a write) were skipped.
// A torn line glued to a whole one is counted here and the whole line is
// returned.
func (r *Reader) Torn() uint64 { return r.torn.Load() }

// Resent returns how many lines were skipped because the sent index says
// they were delivered already.
func (r *Reader) Resent() uint64 { return r.resent.Load() }

// MarkSent records that lines of file with these hashes (Line.Hash) were
// delivered, so that reading them again (an unreadable cursor, a replaced
// file) skips them. Call it before Commit. A failure (a full disk) costs
// at most a resend later; the caller counts it and goes on.
func (r *Reader) MarkSent(file string, hashes []uint64) error {
	if err := r.sent.add(file, hashes); err != nil {
		return fmt.Errorf("journal: recording sent lines: %w", err)
	}
	return nil
}

// Commit stores p as the cursor (atomically; see SaveCursor). Call it with a
// Batch's End once everything in the batch was delivered. It may be called
// from another goroutine than Next (one at a time).
func (r *Reader) Commit(p Position) error {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	if err := SaveCursor(r.opts.CursorPath, p); err != nil {
		return err
	}
	r.committed = p
	return nil
}

// Close stops the watcher and closes the file. Closing twice is harmless.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	close(r.done)
	err := r.watcher.Close()
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	return err
}

// Next waits until at least one line is available (or some malformed bytes
// were consumed) and returns up to max lines. It returns ctx's error when ctx
// ends.
func (r *Reader) Next(ctx context.Context, max int) (Batch, error) {
	if max <= 0 {
		max = 1
	}
	r.out = r.out[:0]
	r.lines = r.lines[:0]
	r.skipped = false
	for {
		if err := ctx.Err(); err != nil {
			return Batch{}, err
		}
		if err := r.fill(max); err != nil {
			return Batch{}, err
		}
		if len(r.lines) > 0 || r.skipped {
			return Batch{Lines: r.lines, End: r.position()}, nil
		}
		moved, wait, err := r.advance()
		if err != nil {
			return Batch{}, err
		}
		if moved {
			continue
		}
		if r.recovering && wait == 0 {
			// At the end of the newest file: the cursor is rebuilt.
			r.recovering = false
			r.log.Info("journal: cursor rebuilt from the sent index", "cursor", r.opts.CursorPath,
				"reason", r.recoverWhy, "skipped_as_sent", r.resent.Load()-r.recoverAt, "file", r.name, "offset", r.off)
		}
		if err := r.wait(ctx, wait); err != nil {
			return Batch{}, err
		}
	}
}

func (r *Reader) position() Position {
	return Position{File: r.name, Offset: r.off, Inode: r.ino}
}

// open opens the current file, or the oldest one when there is no current
// file yet. It returns false when there is nothing to open.
func (r *Reader) open() (bool, error) {
	if r.name == "" {
		names, err := jsonl.List(r.dir, r.opts.Prefix)
		if err != nil {
			return false, err
		}
		if len(names) == 0 {
			return false, nil
		}
		r.name, r.off, r.ino = names[0], 0, 0
	}
	f, err := os.Open(filepath.Join(r.dir, r.name))
	if errors.Is(err, os.ErrNotExist) {
		// Removed by retention (or never written): go on with the next
		// existing file after it, from its start.
		next, err := r.nextFile()
		if err != nil || next == "" {
			return false, err
		}
		r.log.Warn("journal: file of the cursor is gone, going on with the next", "file", r.name, "next", next)
		r.switchTo(next)
		return r.open()
	}
	if err != nil {
		return false, fmt.Errorf("journal: opening %s: %w", r.name, err)
	}
	ino, size, err := statFile(f)
	if err != nil {
		f.Close()
		return false, err
	}
	if r.ino != 0 && ino != r.ino {
		r.log.Warn("journal: file was replaced, reading it from the start and skipping what was sent", "file", r.name)
		r.off, r.armSkip = 0, true
	} else if size < r.off {
		r.log.Warn("journal: file is shorter than the cursor, reading it from the start and skipping what was sent",
			"file", r.name, "size", size, "offset", r.off)
		r.off, r.armSkip = 0, true
	}
	r.f, r.ino = f, ino
	r.pending = r.pending[:0]
	r.skipping = false
	if r.armSkip || r.recovering {
		r.armSkip = false
		set, err := r.sent.load(r.name)
		if err != nil {
			// Without the index the file is read again in full: the
			// relay drops what it still remembers.
			r.log.Warn("journal: reading the sent index", "file", r.name, "err", err)
			set = nil
		}
		r.skipSet = set
	}
	return true, nil
}

func (r *Reader) switchTo(name string) {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.name, r.off, r.ino = name, 0, 0
	r.pending = r.pending[:0]
	r.skipping = false
	r.settleAt = time.Time{}
	r.skipSet = nil
	r.sent.prune(r.dir)
}

// nextFile returns the first journal file after the current one, or "".
func (r *Reader) nextFile() (string, error) {
	names, err := jsonl.List(r.dir, r.opts.Prefix)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if n > r.name {
			return n, nil
		}
	}
	return "", nil
}

// fill reads what the current file has and collects complete lines.
func (r *Reader) fill(max int) error {
	if r.f == nil {
		ok, err := r.open()
		if err != nil || !ok {
			return err
		}
	}
	// Replaced or truncated under us? Compare the path's inode and size.
	if st, err := os.Stat(filepath.Join(r.dir, r.name)); err == nil {
		ino, size := inodeOf(st), st.Size()
		committed := r.Committed()
		floor := int64(0) // below this, the file really shrank
		if committed.File == r.name {
			floor = committed.Offset
		}
		switch {
		case ino != r.ino:
			r.log.Warn("journal: file was replaced, reading it from the start and skipping what was sent", "file", r.name)
			r.restart(0)
		case size < floor:
			r.log.Warn("journal: file shrank below the cursor, reading it from the start and skipping what was sent",
				"file", r.name, "size", size, "cursor", floor)
			r.restart(0)
		case size < r.off:
			// Cut back between the cursor and what was read: go on from
			// the cursor, skipping what was sent since.
			r.log.Warn("journal: file was cut back past lines already read, going on from the cursor",
				"file", r.name, "size", size, "cursor", floor, "read", r.off)
			r.restart(floor)
		case len(r.pending) > 0 && size < r.off+int64(len(r.pending)) && !r.skipping:
			// A partial line we saw was cut off (the writer removes the
			// fragment of a short write on a full disk): it will never
			// end.
			r.torn.Add(1)
		}
		if r.f == nil {
			if ok, err := r.open(); err != nil || !ok {
				return err
			}
		}
	}
	// Lines left over from the last call, when it stopped at max.
	r.split(max)
	// A partial line is read again from its start rather than finished
	// from where the last read stopped: if it was cut and the next line
	// written in its place, the two are never glued together.
	if !r.skipping && bytes.IndexByte(r.pending, '\n') < 0 {
		r.pending = r.pending[:0]
	}
	for len(r.lines) < max {
		readOff := r.off + int64(len(r.pending))
		n, err := r.f.ReadAt(r.readBuf, readOff)
		if n > 0 {
			r.pending = append(r.pending, r.readBuf[:n]...)
			r.split(max)
		}
		if errors.Is(err, io.EOF) || n == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("journal: reading %s: %w", r.name, err)
		}
	}
	return nil
}

// restart closes the current file so that the next fill reads it again from
// off, skipping the lines the sent index holds.
func (r *Reader) restart(off int64) {
	if r.f != nil {
		r.f.Close()
	}
	r.f, r.ino, r.off, r.armSkip = nil, 0, off, true
	r.pending = r.pending[:0]
	r.skipping = false
}

// maxGlueTries bounds the search for a whole line at the end of a line that
// does not pass Check (a torn fragment glued to the next line): each try
// runs Check once, and a real incident line has few '{' characters.
const maxGlueTries = 16

// unglue looks for a suffix of a refused line that passes Check, starting
// at a '{'. A fragment left by a crash, glued to the next append, gives
// exactly that. It returns the suffix's start, or -1.
func (r *Reader) unglue(line []byte) int {
	if r.opts.Check == nil {
		return -1
	}
	at := 0
	for range maxGlueTries {
		i := bytes.IndexByte(line[at+1:], '{')
		if i < 0 {
			return -1
		}
		at += 1 + i
		if r.opts.Check(line[at:]) == nil {
			return at
		}
	}
	return -1
}

// split moves complete lines from pending into the batch, up to max lines.
func (r *Reader) split(max int) {
	consumed := 0
	for len(r.lines) < max {
		i := bytes.IndexByte(r.pending[consumed:], '\n')
		if i < 0 {
			break
		}
		line := r.pending[consumed : consumed+i]
		lineOff := r.off + int64(consumed)
		consumed += i + 1
		if r.skipping {
			r.skipping = false
			r.skipped = true
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			r.skipped = true
			continue
		}
		if len(line)+1 > r.opts.MaxLineBytes {
			r.skip(lineOff, fmt.Errorf("line of %d bytes, over the %d byte limit", len(line)+1, r.opts.MaxLineBytes))
			continue
		}
		if r.opts.Check != nil {
			if err := r.opts.Check(line); err != nil {
				at := r.unglue(line)
				if at < 0 {
					r.skip(lineOff, err)
					continue
				}
				r.torn.Add(1)
				r.log.Warn("journal: a torn line was glued to the next one; skipping the fragment, keeping the line",
					"file", r.name, "offset", lineOff, "fragment_bytes", at)
				line, lineOff = line[at:], lineOff+int64(at)
			}
		}
		h := LineHash(line)
		if r.skipSet != nil {
			if _, ok := r.skipSet[h]; ok {
				r.skipped = true
				r.resent.Add(1)
				continue
			}
		}
		// Copy out of pending, which is reused. When append moves out,
		// earlier lines keep pointing at the old array, which still holds
		// their bytes.
		start := len(r.out)
		r.out = append(r.out, line...)
		r.lines = append(r.lines, Line{Data: r.out[start:len(r.out):len(r.out)], File: r.name, Offset: lineOff, Hash: h})
	}
	r.off += int64(consumed)
	r.pending = append(r.pending[:0], r.pending[consumed:]...)
	// A partial line longer than the limit can never be accepted: drop it
	// now (memory stays bounded) and skip up to its newline.
	if !r.skipping && len(r.pending) >= r.opts.MaxLineBytes && bytes.IndexByte(r.pending, '\n') < 0 {
		r.skip(r.off, fmt.Errorf("line over the %d byte limit", r.opts.MaxLineBytes))
		r.skipping = true
	}
	if r.skipping && len(r.pending) > 0 {
		r.skipped = true
		r.off += int64(len(r.pending))
		r.pending = r.pending[:0]
	}
}

func (r *Reader) skip(off int64, err error) {
	r.skipped = true
	r.malformed.Add(1)
	r.log.Warn("journal: skipping malformed line", "file", r.name, "offset", off, "err", err)
}

// advance moves to the next day's file once the current one is finished:
// read to its end and unchanged for RolloverGrace. It returns how long to
// wait before trying again when a newer file exists but the grace runs.
func (r *Reader) advance() (moved bool, wait time.Duration, err error) {
	if r.name == "" {
		return false, 0, nil
	}
	next, err := r.nextFile()
	if err != nil || next == "" {
		return false, 0, err
	}
	size := r.off + int64(len(r.pending))
	if r.f != nil {
		if _, s, err := statFile(r.f); err == nil {
			size = s
		}
	}
	now := time.Now()
	if r.settleAt.IsZero() || size != r.settleSize {
		r.settleSize, r.settleAt = size, now
		return false, r.opts.RolloverGrace, nil
	}
	if left := r.opts.RolloverGrace - now.Sub(r.settleAt); left > 0 {
		return false, left, nil
	}
	if len(r.pending) > 0 {
		r.torn.Add(1)
		r.log.Warn("journal: skipping a torn last line in a finished file", "file", r.name, "offset", r.off,
			"bytes", len(r.pending))
	}
	r.switchTo(next)
	return true, 0, nil
}

// wait blocks until a wake-up, the safety poll, d (when positive) or ctx.
func (r *Reader) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 || d > r.opts.SafetyPoll {
		d = r.opts.SafetyPoll
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.opts.Wake:
	case <-r.notify:
	case <-t.C:
	}
	return nil
}

func statFile(f *os.File) (ino uint64, size int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("journal: stat %s: %w", f.Name(), err)
	}
	return inodeOf(st), st.Size(), nil
}

func inodeOf(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
