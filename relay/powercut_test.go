package relay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/powercut"
)

// A single relay whose store is synced on an interval (NATSSyncInterval)
// syncs it on Close: what it acknowledged survives a power cut that comes
// after a clean stop, however long the interval.
func TestIntervalSyncedStoreIsSyncedOnClose(t *testing.T) {
	if why := powercut.Skip(); why != "" {
		t.Skip(why)
	}
	backing, mnt := t.TempDir(), t.TempDir()
	mount := func() *powercut.FS {
		p, err := powercut.Mount(backing, mnt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Unmount() })
		return p
	}
	p := mount()
	dir := filepath.Join(mnt, "relay")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: dir, NATSSyncInterval: time.Hour}
	tr := newTestRelay(t, cfg)
	cfg.TokenFile = filepath.Join(dir, "tokens")
	const n = 50
	publishN(t, tr.Relay, "pc", n, nil)
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, f := range p.Unsynced() {
		if strings.HasPrefix(f, "relay/") {
			t.Errorf("after Close %s has data a power cut would lose", f)
		}
	}
	if err := p.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := p.Cut(); err != nil {
		t.Fatal(err)
	}
	mount()
	again := newTestRelay(t, cfg)
	defer again.Close()
	if got := streamMsgs(t, again.Relay); got != n {
		t.Fatalf("after a power cut following Close the stream holds %d incidents, want %d", got, n)
	}
}
