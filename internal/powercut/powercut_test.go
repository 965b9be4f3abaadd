package powercut

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// mount mounts a fresh powercut file system and returns it with its
// backing directory; the test's cleanup unmounts it.
func mount(t *testing.T) (*FS, string) {
	t.Helper()
	if why := Skip(); why != "" {
		t.Skip(why)
	}
	backing, mnt := t.TempDir(), t.TempDir()
	p, err := Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return p, backing
}

func mustWrite(t *testing.T, f *os.File, s string) {
	t.Helper()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		name string
		// do works on the file at path under the mount point.
		do   func(t *testing.T, path string)
		want string // the file's content after the Cut
	}{
		{"loses a write that was not synced", func(t *testing.T, path string) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "hello")
			f.Close()
		}, ""},
		{"keeps a write that was fsynced", func(t *testing.T, path string) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "hello")
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, " world")
			f.Close()
		}, "hello"},
		{"keeps a write that was fdatasynced", func(t *testing.T, path string) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "hello")
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}, "hello"},
		{"brings back bytes overwritten after the sync", func(t *testing.T, path string) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "abcdef")
			f.Sync()
			f.WriteAt([]byte("XY"), 1)
			f.WriteAt([]byte("Z"), 2)
			mustWrite(t, f, "tail")
			f.Close()
		}, "abcdef"},
		{"undoes a truncate after the sync", func(t *testing.T, path string) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "abcdef")
			f.Sync()
			f.Truncate(2)
			f.WriteAt([]byte("QQQQQQQQ"), 1)
			f.Close()
			os.Truncate(path, 1) // by path, without a handle
		}, "abcdef"},
		{"undoes O_TRUNC at open", func(t *testing.T, path string) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "abcdef")
			f.Sync()
			f.Close()
			g, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, g, "x")
			g.Close()
		}, "abcdef"},
		{"keeps writes through O_SYNC", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_SYNC, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "one")
			mustWrite(t, f, "two")
			f.Close()
		}, "onetwo"},
		{"keeps writes through O_DSYNC appends", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_DSYNC, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "one")
			f.Close()
		}, "one"},
		{"keeps a synced temporary file renamed into place", func(t *testing.T, path string) {
			tmp := path + ".tmp"
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(tmp)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "new")
			f.Sync()
			f.Close()
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}, "new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, backing := mount(t)
			tc.do(t, filepath.Join(p.Dir(), "f"))
			if err := p.Unmount(); err != nil {
				t.Fatal(err)
			}
			if err := p.Cut(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(backing, "f"))
			if err != nil {
				t.Fatalf("the file is gone after the cut (metadata is durable): %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("after the cut: %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCutKeepsWhatWasThereBeforeTheMount(t *testing.T) {
	if why := Skip(); why != "" {
		t.Skip(why)
	}
	backing, mnt := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(backing, "old"), []byte("kept"), 0o644)
	p, err := Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(mnt, "old"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, " and lost")
	f.Close()
	if err := p.Unmount(); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	if got, _ := os.ReadFile(filepath.Join(backing, "old")); string(got) != "kept" {
		t.Errorf("after the cut: %q, want %q", got, "kept")
	}
	// A remount serves the rolled-back file.
	p2, err := Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Unmount()
	if got, _ := os.ReadFile(filepath.Join(mnt, "old")); string(got) != "kept" {
		t.Errorf("through the new mount: %q, want %q", got, "kept")
	}
}

func TestSyncsCountsPerPath(t *testing.T) {
	p, _ := mount(t)
	if err := os.Mkdir(filepath.Join(p.Dir(), "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(p.Dir(), "a", "x"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustWrite(t, f, "x")
		f.Sync()
	}
	f.Close()
	g, err := os.OpenFile(filepath.Join(p.Dir(), "y"), os.O_WRONLY|os.O_CREATE|os.O_SYNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, g, "1")
	mustWrite(t, g, "2")
	g.Close()
	d, err := os.Open(filepath.Join(p.Dir(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.Close()

	for _, tc := range []struct {
		prefix string
		want   Counts
	}{
		{"a", Counts{FileSyncs: 3, DirSyncs: 1}},
		{"a/x", Counts{FileSyncs: 3}},
		{"y", Counts{SyncWrites: 2}},
		{"", Counts{FileSyncs: 3, DirSyncs: 1, SyncWrites: 2}},
	} {
		got := p.Syncs(tc.prefix)
		// The kernel may turn an O_SYNC write into an fsync request as
		// well; that is counted under FileSyncs for y.
		if tc.prefix == "y" || tc.prefix == "" {
			got.FileSyncs -= p.Syncs("y").FileSyncs
		}
		if got != tc.want {
			t.Errorf("Syncs(%q) = %+v, want %+v", tc.prefix, got, tc.want)
		}
	}
}
