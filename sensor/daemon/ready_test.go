package daemon

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/testkit"
)

// TestTheMapIsAnnouncedOnlyOnceDetectionIsAttached pins the readiness
// order of --serve: the "map at" line tells scripts (the drill) that an
// attack would now be seen, so it is printed only once the detection stage
// attached its collectors and launched its log followers, not as soon as
// the relay listens. The detection stage is held at its start by a web
// rules file that is a FIFO: while nothing is written to it, the relay is
// up and the line must not be out.
func TestTheMapIsAnnouncedOnlyOnceDetectionIsAttached(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.json")
	if err := syscall.Mkfifo(rules, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sensor.json")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`{"logs": {"auth": [], "access": [], "firewall": []},
		"ebpf": {"enabled": false}, "geoip": {"paths": []}, "detect": {"web_rules": [%q]}}`, rules)), 0o644); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	built := make(chan struct{})
	embed := func(c EmbedConfig) (Embedded, error) {
		defer once.Do(func() { close(built) })
		return testRelay(c)
	}
	out := &testkit.SyncBuffer{}
	d := startDaemon(t, []string{"--config", cfg, "--data", filepath.Join(dir, "data"), "--metrics-listen", "",
		"--serve", "127.0.0.1:0"}, out, io.Discard, embed)
	// Registered after startDaemon, so run before its stop: release a
	// detection stage still waiting on the FIFO (its read ignores ctx),
	// whatever happened. O_NONBLOCK: no reader, no wait.
	t.Cleanup(func() {
		if f, err := os.OpenFile(rules, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Write([]byte(`{"version": "test", "rules": []}`))
			f.Close()
		}
	})
	select {
	case <-built:
	case <-time.After(scrapeTimeout):
		t.Fatal("the embedded relay was not built")
	}
	// The relay is built; the daemon listens and announces right after,
	// unless it waits for detection as it should. Half a second is far
	// more than a listen takes.
	time.Sleep(500 * time.Millisecond)
	if strings.Contains(out.String(), "map at") {
		t.Fatalf("the map was announced while detection had not started:\n%s", out)
	}
	// Let detection load its (empty) rules and attach.
	if err := os.WriteFile(rules, []byte(`{"version": "test", "rules": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if !poll(t, d, func() bool { return strings.Contains(out.String(), "map at http://") }) {
		t.Fatalf("no map line once detection started:\n%s", out)
	}
}
