package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/testkit"
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
	addr := testkit.FreeAddrs(t, 1)[0]
	dir := t.TempDir()
	var mu sync.Mutex
	var got EmbedConfig
	embed := func(c EmbedConfig) (Embedded, error) {
		mu.Lock()
		got = c
		mu.Unlock()
		return testRelay(c)
	}
	d := startDaemon(t, []string{"--data", filepath.Join(dir, "data"), "--metrics-listen", addr,
		"--serve", "127.0.0.1:0", "--auth-log", filepath.Join(dir, "auth.log")}, io.Discard, io.Discard, embed)
	want := []string{"attackmap_relay_", `attackmap_sensor_journal_lost_total{journal="incidents"}`}
	var body string
	if !poll(t, d, func() bool {
		_, body = get("http://" + addr + "/metrics")
		return strings.Contains(body, want[0]) && strings.Contains(body, want[1])
	}) {
		t.Fatalf("metrics lack %q:\n%s", want, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.DataDir != filepath.Join(dir, "data", "relay") || got.Host == "" || got.Registry == nil {
		t.Errorf("embed got %+v", got)
	}
	// The relay syncs its store in the background, at the interval the
	// daemon trails its cursor by.
	if got.SyncInterval != EmbedSyncInterval {
		t.Errorf("embed got SyncInterval %v, want %v", got.SyncInterval, EmbedSyncInterval)
	}
}
