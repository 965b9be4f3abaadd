// Package powercut is a FUSE loopback file system that can lose what a
// power cut loses. It serves a backing directory at a mount point and keeps,
// per file, what has reached "the disk": data is durable once the file was
// fsynced or fdatasynced (by any handle: fsync is per inode), or when it was
// written through a handle opened with O_SYNC or O_DSYNC. Cut rolls every
// file back to its last durable state: data appended since then is cut off,
// bytes overwritten in place are restored from an undo log, and a truncate
// since then is undone likewise.
//
// Metadata is taken as durable at once: a created, renamed or unlinked file
// and a made or removed directory stay as they are after a Cut, as on ext4
// (whose journal commits metadata in order) with the data it did not sync
// lost. So a file created and written without an fsync is still there after
// a Cut, empty: the data-loss model of ext4's delayed allocation. A directory
// fsync is counted but changes nothing.
//
// SIGKILL keeps the page cache, so it cannot test what a program promises
// about durability; Cut can. The usual round is: kill the program, Unmount,
// Cut, Mount the backing directory again and start the program over.
//
// The file system also counts syncs (file fsyncs, directory fsyncs, O_SYNC
// writes) per path, so that a test can assert what a workload cost. It
// does not fsync the backing files itself: durability is what it models,
// and tests run faster without it. There is no writeback cache (every write
// reaches the file system when the program makes it), no passthrough, no
// fallocate and no copy_file_range (the kernel falls back to reads and
// writes), so that every change to a file's data passes through here.
//
// Mounting needs root (or fusermount) and /dev/fuse.
package powercut

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Counts are the syncs a workload made.
type Counts struct {
	// FileSyncs are fsync and fdatasync calls on files.
	FileSyncs int
	// DirSyncs are fsync calls on directories.
	DirSyncs int
	// SyncWrites are writes through handles opened with O_SYNC or
	// O_DSYNC (each one is a sync of its own).
	SyncWrites int
}

// Total is every sync counted.
func (c Counts) Total() int { return c.FileSyncs + c.DirSyncs + c.SyncWrites }

func (c *Counts) add(o Counts) {
	c.FileSyncs += o.FileSyncs
	c.DirSyncs += o.DirSyncs
	c.SyncWrites += o.SyncWrites
}

// FS is a mounted powercut file system.
type FS struct {
	backing, mnt string
	server       *fuse.Server

	mu     sync.Mutex
	files  map[uint64]*fileState // by backing inode number
	opens  map[uint64]int        // the program's open handles, by inode
	counts map[string]*Counts    // by path under the mount point
	closed bool
}

// fileState is what a file had on disk at its last sync, for the files
// changed since.
type fileState struct {
	// f is the backing file, opened read-write for the undo log and Cut
	// (the program's handle may be write-only).
	f    *os.File
	path string // under the backing directory, when first changed
	// base is the file's size at its last sync.
	base int64
	// undo holds the bytes below base that were overwritten or truncated
	// away since the last sync, in order; Cut replays it backwards.
	undo  []undoRec
	dirty bool
}

type undoRec struct {
	off  int64
	data []byte
}

// Mount serves backing at mnt (both directories must exist). Every file
// in backing counts as durable as it is.
func Mount(backing, mnt string) (*FS, error) {
	backing, err := filepath.Abs(backing)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("powercut: %w", err)
	}
	p := &FS{backing: backing, mnt: mnt, files: map[uint64]*fileState{}, opens: map[uint64]int{}, counts: map[string]*Counts{}}
	root := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	// Children become nodes too through node.WrapChild.
	rn := &node{LoopbackNode: fs.LoopbackNode{RootData: root}, p: p}
	root.RootNode = rn
	// Short caches: the kernel asks again soon after a Cut made behind its
	// back (tests remount anyway). One second is go-fuse's default.
	sec := time.Second
	p.server, err = fs.Mount(mnt, rn, &fs.Options{
		MountOptions: fuse.MountOptions{
			// mount(2) directly as root: no fusermount binary needed.
			DirectMount: true,
			FsName:      "powercut:" + backing,
			Name:        "powercut",
		},
		EntryTimeout: &sec,
		AttrTimeout:  &sec,
	})
	if err != nil {
		return nil, fmt.Errorf("powercut: mounting %s: %w", mnt, err)
	}
	return p, nil
}

// Skip reports why this machine cannot mount a powercut file system (""
// when it can): tests skip with it.
func Skip() string {
	if os.Geteuid() != 0 {
		return "powercut needs root to mount a FUSE file system (CI runs as root)"
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "powercut needs /dev/fuse: " + err.Error()
	}
	return ""
}

// Dir is the mount point.
func (p *FS) Dir() string { return p.mnt }

// Unmount unmounts the file system; the process using it should be gone.
// The sync states stay for Cut.
func (p *FS) Unmount() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	var err error
	// A file the dying process held may be released a moment late: retry
	// for a few seconds before giving up.
	for range 50 {
		if err = p.server.Unmount(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("powercut: unmounting %s: %w", p.mnt, err)
	}
	p.server.Wait()
	return nil
}

// Cut rolls every file back to its last synced state: what a power cut
// would leave. Call it with nothing writing to the file system (a killed
// process, ideally unmounted: the kernel's cache of the mount does not see
// the rollback). The file system starts over with everything durable.
func (p *FS) Cut() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for ino, s := range p.files {
		if s.dirty {
			errs = append(errs, s.rollback())
		}
		if p.opens[ino] == 0 {
			s.f.Close()
			delete(p.files, ino)
		}
	}
	return errors.Join(errs...)
}

func (s *fileState) rollback() error {
	for i := len(s.undo) - 1; i >= 0; i-- {
		u := s.undo[i]
		if _, err := s.f.WriteAt(u.data, u.off); err != nil {
			return fmt.Errorf("powercut: restoring %s: %w", s.path, err)
		}
	}
	if err := s.f.Truncate(s.base); err != nil {
		return fmt.Errorf("powercut: truncating %s: %w", s.path, err)
	}
	s.dirty, s.undo = false, nil
	return nil
}

// Syncs sums the syncs made on paths under prefix (relative to the mount
// point; "" for all).
func (p *FS) Syncs(prefix string) Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	var c Counts
	for path, n := range p.counts {
		if prefix == "" || path == prefix || strings.HasPrefix(path, strings.TrimSuffix(prefix, "/")+"/") {
			c.add(*n)
		}
	}
	return c
}

// Unsynced lists the files (by path under the backing directory, as of when
// they were opened) with data a Cut would roll back.
func (p *FS) Unsynced() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, s := range p.files {
		if s.dirty {
			out = append(out, s.path)
		}
	}
	return out
}

// count adds c to path's counts. Called with p.mu held.
func (p *FS) count(path string, c Counts) {
	n := p.counts[path]
	if n == nil {
		n = &Counts{}
		p.counts[path] = n
	}
	n.add(c)
}

// state returns the state of the file open as f (inode ino), creating it.
// Called with p.mu held.
func (p *FS) state(ino uint64, fd int, path string) (*fileState, error) {
	if s := p.files[ino]; s != nil {
		return s, nil
	}
	// Through /proc: the same inode read-write, even when fd is
	// write-only or the file was unlinked meanwhile.
	rw, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	s := &fileState{f: rw, path: path}
	p.files[ino] = s
	return s, nil
}

// touch makes s dirty, remembering its size as the synced one.
func (s *fileState) touch() error {
	if s.dirty {
		return nil
	}
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	s.base, s.dirty = st.Size(), true
	return nil
}

// save records the bytes in [off, end) that lie below base before they
// change.
func (s *fileState) save(off, end int64) error {
	end = min(end, s.base)
	if off >= end {
		return nil
	}
	buf := make([]byte, end-off)
	// A short read is past the current end (a truncate since the sync):
	// the truncate's own record restores those bytes.
	n, err := s.f.ReadAt(buf, off)
	if n > 0 {
		s.undo = append(s.undo, undoRec{off: off, data: buf[:n]})
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// synced marks s durable as it is now.
func (s *fileState) synced() {
	s.dirty, s.undo = false, nil
}

// release drops a state that has nothing to undo and no handle, or whose
// file is gone. Called with p.mu held.
func (p *FS) release(ino uint64) {
	s := p.files[ino]
	if s == nil || p.opens[ino] > 0 {
		return
	}
	gone := false
	if st, err := s.f.Stat(); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Nlink == 0 {
			gone = true
		}
	}
	if !s.dirty || gone {
		s.f.Close()
		delete(p.files, ino)
	}
}
