package daemon

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/internal/testkit"
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
	relayURL := serveRelay(t, dir, tokFile)
	addr := testkit.FreeAddrs(t, 1)[0]
	logs := &testkit.SyncBuffer{}
	d := startDaemon(t, []string{"--data", filepath.Join(dir, "data"), "--metrics-listen", addr,
		"--auth-log", filepath.Join(dir, "auth.log"), "--relay", relayURL, "--token", "wrong-token"},
		io.Discard, logs, nil)
	var health, metrics string
	code := 0
	poll(t, d, func() bool {
		code, health = get("http://" + addr + "/healthz")
		_, metrics = get("http://" + addr + "/metrics")
		return code == http.StatusServiceUnavailable && strings.Contains(metrics, "attackmap_sensor_relay_auth_ok")
	})
	if first, _, _ := strings.Cut(health, "\n"); code != http.StatusServiceUnavailable ||
		strings.Count(first, relayURL) != 1 || !strings.Contains(first, "rejects this sensor's token") {
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
