package daemon

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/testkit"
)

// The sensor exports what it used to only count: the detectors' state, the
// responder's decisions and the journals' losses, on its own listener.
func TestMetricsExportDetectionResponseAndDelivery(t *testing.T) {
	addr := testkit.FreeAddrs(t, 1)[0]
	dir := t.TempDir()
	d := startDaemon(t, []string{"--data", filepath.Join(dir, "data"), "--metrics-listen", addr,
		"--auth-log", filepath.Join(dir, "auth.log")}, io.Discard, io.Discard, nil)
	want := []string{
		"attackmap_sensor_detector_keys ",
		"attackmap_sensor_detector_evicted_total ",
		"attackmap_sensor_events_ahead_total ",
		`attackmap_sensor_blocks_active{backend="`,
		`attackmap_sensor_blocks_total{backend="`,
		`attackmap_sensor_journal_lost_total{journal="incidents"}`,
	}
	var body string
	poll(t, d, func() bool {
		_, body = get("http://" + addr + "/metrics")
		return !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(body, w) })
	})
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("no %q in /metrics", w)
		}
	}
}

// The metrics the sensor's operators asked for: events by source,
// incidents by detector, journal bytes, the lag behind the journal's end
// and the relay's connection state, here with a relay that is down.
func TestMetricsExportEventsIncidentsLagAndRelayState(t *testing.T) {
	addr := testkit.FreeAddrs(t, 1)[0]
	dir := t.TempDir()
	auth := filepath.Join(dir, "auth.log")
	var lines strings.Builder
	now := time.Now().UTC()
	for i := range 8 {
		fmt.Fprintf(&lines, "%s web-1 sshd[812]: Failed password for root from 127.9.8.7 port %d ssh2\n",
			now.Add(time.Duration(i)*time.Second).Format("2006-01-02T15:04:05.000000-07:00"), 40000+i)
	}
	if err := os.WriteFile(auth, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "sensor.json")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(`{"logs": {"auth": [%q], "access": [], "firewall": [], "from_start": true},
		"ebpf": {"enabled": false}}`, auth)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, []string{"--config", cfgFile, "--data", filepath.Join(dir, "data"), "--metrics-listen", addr,
		"--include-private", "--relay", "ws://127.0.0.1:1/api/ingest", "--token", "t"}, io.Discard, io.Discard, nil)
	want := []*regexp.Regexp{
		regexp.MustCompile(`attackmap_sensor_events_total\{source="[a-z_]+"\} [1-9]`),
		regexp.MustCompile(`attackmap_sensor_incidents_total\{detector="ssh_bruteforce"\} [1-9]`),
		regexp.MustCompile(`attackmap_sensor_journal_bytes\{journal="incidents"\} [1-9]`),
		regexp.MustCompile(`attackmap_sensor_push_lag_bytes\{relay="ws://127.0.0.1:1/api/ingest"\} [1-9]`),
		regexp.MustCompile(`attackmap_sensor_push_lag_incidents\{relay="ws://127.0.0.1:1/api/ingest"\} [1-9]`),
		regexp.MustCompile(`attackmap_sensor_relay_connected\{relay="ws://127.0.0.1:1/api/ingest"\} 0`),
		// One URL: index 0, no failover.
		regexp.MustCompile(`attackmap_sensor_relay_url_index\{relay="ws://127.0.0.1:1/api/ingest"\} 0`),
		regexp.MustCompile(`attackmap_sensor_relay_failovers_total\{relay="ws://127.0.0.1:1/api/ingest"\} 0`),
		// The tailer's counters for the auth log: 8 lines read.
		regexp.MustCompile(`attackmap_sensor_log_lines_total\{path="` + regexp.QuoteMeta(auth) + `"\} 8\b`),
		regexp.MustCompile(`attackmap_sensor_log_bytes_total\{path="` + regexp.QuoteMeta(auth) + `"\} [1-9]`),
		regexp.MustCompile(`attackmap_sensor_log_rotations_total\{path="` + regexp.QuoteMeta(auth) + `"\} 0`),
		regexp.MustCompile(`attackmap_sensor_log_truncations_total\{path="` + regexp.QuoteMeta(auth) + `"\} 0`),
		// Every detector is a label from the start, at 0 until it raises.
		regexp.MustCompile(`attackmap_sensor_incidents_total\{detector="suspicious_exec"\} 0`),
		regexp.MustCompile(`attackmap_sensor_incidents_total\{detector="c2_connect"\} 0`),
	}
	var body string
	poll(t, d, func() bool {
		_, body = get("http://" + addr + "/metrics")
		return !slices.ContainsFunc(want, func(re *regexp.Regexp) bool { return !re.MatchString(body) })
	})
	for _, re := range want {
		if !re.MatchString(body) {
			t.Errorf("no %s in /metrics", re)
		}
	}
}
