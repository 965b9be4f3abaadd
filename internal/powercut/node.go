package powercut

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node whose files record their changes and syncs.
type node struct {
	fs.LoopbackNode
	p *FS
}

var (
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
	_ fs.NodeWrapChilder    = (*node)(nil)
)

// WrapChild makes every node the loopback creates under this one a node
// of ours.
func (n *node) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if ln, ok := ops.(*fs.LoopbackNode); ok {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: ln.RootData}, p: n.p}
	}
	return ops
}

// rel is the node's path under the mount point.
func (n *node) rel() string { return n.Path(nil) }

// backingPath is the node's path in the backing directory.
func (n *node) backingPath() string { return filepath.Join(n.RootData.Path, n.rel()) }

// syncFlags make every write durable (O_SYNC on Linux includes O_DSYNC's
// bit).
const syncFlags = syscall.O_SYNC | syscall.O_DSYNC

// backingFlags are the open flags handled here instead of on the backing
// file: sync writes are modelled (and not paid for on the real disk), and a
// truncate at open must pass through the undo log. O_DIRECT would only add
// alignment rules on the backing file.
const backingFlags = syncFlags | syscall.O_TRUNC | syscall.O_DIRECT

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, ff, errno := n.LoopbackNode.Open(ctx, flags&^backingFlags)
	if errno != 0 {
		return nil, 0, errno
	}
	return n.wrap(ctx, fh, flags, ff)
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	in, fh, ff, errno := n.LoopbackNode.Create(ctx, name, flags&^backingFlags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	child, ok := in.Operations().(*node)
	if !ok {
		return nil, nil, 0, syscall.EIO
	}
	h, ff, errno := child.wrap(ctx, fh, flags, ff)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return in, h, ff, 0
}

// wrap turns the loopback handle into a tracked one, truncating it when the
// open asked for that.
func (n *node) wrap(ctx context.Context, fh fs.FileHandle, flags, ff uint32) (fs.FileHandle, uint32, syscall.Errno) {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return nil, 0, syscall.EIO
	}
	fd, ok := lf.PassthroughFd() // the descriptor, not passthrough
	if !ok {
		lf.Release(ctx)
		return nil, 0, syscall.EBADF
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		lf.Release(ctx)
		return nil, 0, fs.ToErrno(err)
	}
	f := &file{lf: lf, n: n, p: n.p, ino: st.Ino, fd: fd, sync: flags&syncFlags != 0}
	n.p.mu.Lock()
	n.p.opens[f.ino]++
	n.p.mu.Unlock()
	if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		if errno := f.truncate(0); errno != 0 {
			f.Release(ctx)
			return nil, 0, errno
		}
	}
	return f, ff &^ fuse.FOPEN_PASSTHROUGH, 0
}

// Setattr records a truncate made by path (no handle) before it happens;
// one made through a handle goes to file.Setattr.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := f.(*file); !ok {
		if sz, ok := in.GetSize(); ok {
			// Open it only to record the undo, then truncate by path.
			fh, _, errno := n.LoopbackNode.Open(ctx, syscall.O_RDWR)
			if errno != 0 {
				return errno
			}
			h, _, errno := n.wrap(ctx, fh, syscall.O_RDWR, 0)
			if errno != 0 {
				return errno
			}
			errno = h.(*file).truncate(int64(sz))
			h.(*file).Release(ctx)
			if errno != 0 {
				return errno
			}
		}
	}
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

// Unlink forgets the state of a file whose last name it removed.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	ino := inodeAt(filepath.Join(n.backingPath(), name))
	errno := n.LoopbackNode.Unlink(ctx, name)
	n.p.mu.Lock()
	n.p.release(ino)
	n.p.mu.Unlock()
	return errno
}

// Rename forgets the state of a file it replaced.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	var ino uint64
	if np, ok := newParent.(*node); ok {
		ino = inodeAt(filepath.Join(np.backingPath(), newName))
	}
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	n.p.mu.Lock()
	n.p.release(ino)
	n.p.mu.Unlock()
	return errno
}

// CopyFileRange is refused so that the kernel copies with reads and writes,
// which pass through the undo log.
func (n *node) CopyFileRange(context.Context, fs.FileHandle, uint64, *fs.Inode, fs.FileHandle, uint64, uint64, uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOTSUP
}

// OpendirHandle wraps the directory's handle to count its fsyncs.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, ff, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{fh: fh, n: n}, ff, 0
}

// inodeAt is the inode number of the file at path (0 when there is none).
func inodeAt(path string) uint64 {
	var st syscall.Stat_t
	if syscall.Lstat(path, &st) != nil {
		return 0
	}
	return st.Ino
}

// file is an open file whose writes, truncates and syncs are recorded.
type file struct {
	lf   *fs.LoopbackFile
	n    *node
	p    *FS
	ino  uint64
	fd   int
	sync bool // opened O_SYNC or O_DSYNC: every write is durable
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileWriter    = (*file)(nil)
	_ fs.FileFsyncer   = (*file)(nil)
	_ fs.FileSetattrer = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileLseeker   = (*file)(nil)
	_ fs.FileGetlker   = (*file)(nil)
	_ fs.FileSetlker   = (*file)(nil)
	_ fs.FileSetlkwer  = (*file)(nil)
)

// rel is the file's path under the mount point now (after renames), read
// from its backing descriptor; the node's own path may be unknown for a
// file the kernel found without a lookup through this mount.
func (f *file) rel() string {
	target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.fd))
	if err != nil {
		return f.n.rel()
	}
	r, err := filepath.Rel(f.p.backing, strings.TrimSuffix(target, " (deleted)"))
	if err != nil {
		return f.n.rel()
	}
	return r
}

// stateLocked returns the file's state, dirty. Called with p.mu held.
func (f *file) stateLocked() (*fileState, syscall.Errno) {
	s, err := f.p.state(f.ino, f.fd, f.rel())
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	if err := s.touch(); err != nil {
		return nil, fs.ToErrno(err)
	}
	return s, 0
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	s, errno := f.stateLocked()
	if errno != 0 {
		return 0, errno
	}
	if err := s.save(off, off+int64(len(data))); err != nil {
		return 0, fs.ToErrno(err)
	}
	n, errno := f.lf.Write(ctx, data, off)
	if f.sync && errno == 0 {
		s.synced()
		f.p.count(f.rel(), Counts{SyncWrites: 1})
	}
	return n, errno
}

// truncate records and makes a truncate to size.
func (f *file) truncate(size int64) syscall.Errno {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	s, errno := f.stateLocked()
	if errno != 0 {
		return errno
	}
	st, err := s.f.Stat()
	if err != nil {
		return fs.ToErrno(err)
	}
	if err := s.save(size, st.Size()); err != nil {
		return fs.ToErrno(err)
	}
	return fs.ToErrno(syscall.Ftruncate(f.fd, size))
}

func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok {
		if errno := f.truncate(int64(sz)); errno != 0 {
			return errno
		}
	}
	return f.lf.Setattr(ctx, in, out)
}

// Fsync makes the file durable as it is (fsync and fdatasync alike: the
// model keeps no separate metadata). The backing file is not synced.
func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	f.p.count(f.rel(), Counts{FileSyncs: 1})
	if s := f.p.files[f.ino]; s != nil {
		s.synced()
		f.p.release(f.ino)
	}
	return 0
}

func (f *file) Release(ctx context.Context) syscall.Errno {
	errno := f.lf.Release(ctx)
	f.p.mu.Lock()
	f.p.opens[f.ino]--
	if f.p.opens[f.ino] <= 0 {
		delete(f.p.opens, f.ino)
	}
	f.p.release(f.ino)
	f.p.mu.Unlock()
	return errno
}

func (f *file) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return f.lf.Read(ctx, buf, off)
}

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Getattr(ctx, out)
}

func (f *file) Flush(ctx context.Context) syscall.Errno { return f.lf.Flush(ctx) }

func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.lf.Lseek(ctx, off, whence)
}

func (f *file) Getlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	return f.lf.Getlk(ctx, owner, lk, flags, out)
}

func (f *file) Setlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return f.lf.Setlk(ctx, owner, lk, flags)
}

func (f *file) Setlkw(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return f.lf.Setlkw(ctx, owner, lk, flags)
}

// dirHandle is an open directory whose fsyncs are counted.
type dirHandle struct {
	fh fs.FileHandle
	n  *node
}

var (
	_ fs.FileFsyncdirer   = (*dirHandle)(nil)
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
)

// Fsyncdir counts; metadata is durable at once in this model.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	d.n.p.mu.Lock()
	d.n.p.count(d.n.rel(), Counts{DirSyncs: 1})
	d.n.p.mu.Unlock()
	return 0
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if r, ok := d.fh.(fs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	return nil, syscall.ENOTSUP
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.fh.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.fh.(fs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}
