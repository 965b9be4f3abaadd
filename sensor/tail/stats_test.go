package tail

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStatsCountLinesBytesRotationsAndTruncations follows a file through
// a rename and a copytruncate; the counters the sensor's metrics export
// say what happened, and a Set hands them out by path.
func TestStatsCountLinesBytesRotationsAndTruncations(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	appendTo(t, path, "")
	tl := New(Config{Path: path, FromStart: true, Poll: 200 * time.Millisecond, RotateGrace: 300 * time.Millisecond})
	var set Set
	set.Add(tl)
	ready := make(chan struct{})
	tl.onStart = func() { close(ready) }
	ch := make(chan string, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx, func(l []byte) error { ch <- string(l); return nil }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	<-ready

	appendTo(t, path, "a line long enough to fingerprint\nb\n") // 36 bytes, 2 lines
	expect(t, ch, "a line long enough to fingerprint", "b")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "c line in the new file\n") // 23 bytes
	expect(t, ch, "c line in the new file")
	// copytruncate of the new file: copied, emptied, written again.
	b, _ := os.ReadFile(path)
	os.WriteFile(path+".0", b, 0o644)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "d\n") // 2 bytes
	expect(t, ch, "d")

	s := set.Stats()[path]
	want := Stats{Lines: 4, Bytes: 36 + 23 + 2, Rotations: 1, Truncations: 1}
	if s != want {
		t.Errorf("Stats = %+v, want %+v", s, want)
	}
	if len(set.Stats()) != 1 || tl.Path() != path {
		t.Errorf("set %v, path %q", set.Stats(), tl.Path())
	}
	var none *Set
	none.Add(tl) // a nil set takes nothing, without a panic
}
