package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The sensor exports what it used to only count: the detectors' state, the
// responder's decisions and the journals' losses, on its own listener.
func TestMetricsExportDetectionResponseAndDelivery(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--data", filepath.Join(dir, "data"), "--metrics-listen", addr,
			"--auth-log", filepath.Join(dir, "auth.log")}, env(nil), io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	want := []string{
		"attackmap_sensor_detector_keys ",
		"attackmap_sensor_detector_evicted_total ",
		"attackmap_sensor_events_ahead_total ",
		`attackmap_sensor_blocks_active{backend="`,
		`attackmap_sensor_blocks_total{backend="`,
		`attackmap_sensor_journal_lost_total{journal="incidents"}`,
	}
	deadline := time.Now().Add(30 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			missing := false
			for _, w := range want {
				if !strings.Contains(body, w) {
					missing = true
				}
			}
			if !missing {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("no %q in /metrics", w)
		}
	}
}
