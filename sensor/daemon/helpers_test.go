package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/attackmap/attackmap/relay"
)

// scrapeTimeout bounds the wait for the daemon to show what a test wants:
// it is up in well under a second; 30 s covers a loaded 2-core machine.
const scrapeTimeout = 30 * time.Second

// daemonRun is Run on its own goroutine for the rest of a test.
type daemonRun struct {
	done chan struct{}
	err  error // Run's result, set before done closes
}

// startDaemon runs Run with args (and an empty environment) until the test
// ends; the cleanup stops it and fails the test if Run returned an error.
func startDaemon(t *testing.T, args []string, stdout, stderr io.Writer, embed EmbedFunc) *daemonRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemonRun{done: make(chan struct{})}
	go func() {
		d.err = Run(ctx, args, env(nil), stdout, stderr, embed)
		close(d.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-d.done
		if d.err != nil {
			t.Errorf("Run: %v", d.err)
		}
	})
	return d
}

// ended reports whether Run returned before the test stopped it.
func (d *daemonRun) ended() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// serveRelay serves the real relay (tokens from tokFile, data under dir)
// on a loopback listener until the test ends, and returns its ingest URL.
func serveRelay(t *testing.T, dir, tokFile string) string {
	t.Helper()
	r, err := relay.New(relay.Config{DataDir: filepath.Join(dir, "relay"), TokenFile: tokFile, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		r.Close()
	})
	return "ws://" + ln.Addr().String() + "/api/ingest"
}

// poll calls check every 100 ms until it returns true, the daemon ends, or
// scrapeTimeout passes; it reports whether check succeeded.
func poll(t *testing.T, d *daemonRun, check func() bool) bool {
	t.Helper()
	for deadline := time.Now().Add(scrapeTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if check() {
			return true
		}
		if d != nil && d.ended() {
			t.Fatalf("Run ended early: %v", d.err)
		}
	}
	return false
}

// get fetches url and returns the status and body (0 and "" when it
// cannot connect).
func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
