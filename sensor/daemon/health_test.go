package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attackmap/attackmap/relay"
	"github.com/attackmap/attackmap/relay/token"
)

// TestARejectedTokenShowsOnHealthzAndTheMetric: the sensor checks its
// relay at start; with a wrong token, before any incident, /healthz on
// --metrics-listen answers 503 naming the relay and the rejection,
// attackmap_sensor_relay_auth_ok is 0, and the log has one ERROR line.
func TestARejectedTokenShowsOnHealthzAndTheMetric(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tokens")
	if _, err := token.Add(tokFile, "web-1", nil); err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(relay.Config{DataDir: filepath.Join(dir, "relay"), TokenFile: tokFile, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan error, 1)
	go func() { rdone <- r.Serve(rctx, rln) }()
	defer func() { rcancel(); <-rdone }()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	relayURL := "ws://" + rln.Addr().String() + "/api/ingest"
	logs := &lockedLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--data", filepath.Join(dir, "data"), "--metrics-listen", addr,
			"--auth-log", filepath.Join(dir, "auth.log"), "--relay", relayURL, "--token", "wrong-token"},
			env(nil), io.Discard, logs, nil)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var health, metrics string
	code := 0
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, health = get("http://" + addr + "/healthz")
		_, metrics = get("http://" + addr + "/metrics")
		if code == http.StatusServiceUnavailable && strings.Contains(metrics, "attackmap_sensor_relay_auth_ok") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(health, relayURL) || !strings.Contains(health, "rejects the token") {
		t.Errorf("/healthz %d %q", code, health)
	}
	if want := `attackmap_sensor_relay_auth_ok{relay="` + relayURL + `"} 0`; !strings.Contains(metrics, want) {
		t.Errorf("no %q in /metrics", want)
	}
	out := logs.String()
	if strings.Count(out, "level=ERROR") != 1 || !strings.Contains(out, "rejected this sensor's token") {
		t.Errorf("want one ERROR line about the token:\n%s", out)
	}
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// lockedLog is an io.Writer safe for the daemon's goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
