package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay"
)

// testRelay embeds the real relay, as cmd/attackmap-sensor does, without
// the map's static site (the tests read the API, not the page).
func testRelay(c EmbedConfig) (Embedded, error) {
	r, err := relay.New(relay.Config{DataDir: c.DataDir, TokenFile: c.TokenFile, AllowOrigins: c.AllowOrigins,
		Registry: c.Registry, Logger: c.Logger})
	if err != nil {
		return nil, err
	}
	return hostRelay{r, relay.Host{Name: c.Host, Target: c.Target}}, nil
}

type hostRelay struct {
	r    *relay.Relay
	host relay.Host
}

func (h hostRelay) Serve(ctx context.Context, ln net.Listener) error { return h.r.Serve(ctx, ln) }
func (h hostRelay) Close() error                                     { return h.r.Close() }
func (h hostRelay) PublishDurable(batch []json.RawMessage) (incident.Ack, error) {
	return h.r.PublishDurable(h.host, batch)
}

func TestServeWithoutAnEmbeddedRelayIsRefused(t *testing.T) {
	err := Run(context.Background(), []string{"--data", t.TempDir(), "--serve", "127.0.0.1:0"},
		env(nil), io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "--serve") {
		t.Fatalf("Run = %v, want a --serve error", err)
	}
}

// The embedded relay registers on the sensor's registry, so one listener
// (--metrics-listen) serves both, and it uses the config the daemon built.
func TestTheEmbeddedRelaySharesTheSensorsMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	var got EmbedConfig
	embed := func(c EmbedConfig) (Embedded, error) { got = c; return testRelay(c) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--data", filepath.Join(dir, "data"), "--metrics-listen", addr,
			"--serve", "127.0.0.1:0", "--auth-log", filepath.Join(dir, "auth.log")},
			env(nil), io.Discard, io.Discard, embed)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	want := []string{"attackmap_relay_", `attackmap_sensor_journal_lost_total{journal="incidents"}`}
	deadline := time.Now().Add(30 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if strings.Contains(body, want[0]) && strings.Contains(body, want[1]) {
				if got.DataDir != filepath.Join(dir, "data", "relay") || got.Host == "" || got.Registry == nil {
					t.Errorf("embed got %+v", got)
				}
				return
			}
		}
		select {
		case err := <-done:
			done <- err // for the deferred check
			t.Fatalf("Run ended: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("metrics lack %q:\n%s", want, body)
}
