package daemon

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/internal/testkit"
	"github.com/attackmap/attackmap/relay/token"
)

// TestARelayClusterIsOneDestination: a relay entry with several URLs (the
// config's urls, a comma list in --relay or ATTACKMAP_RELAY) is one
// destination with its URLs normalised in order, without repeats, and its
// cursor is the one its first URL had alone.
func TestARelayClusterIsOneDestination(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, fmt.Sprintf("c%d.json", len(s)))
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	a, b, c := "wss://a.example.org/api/ingest", "wss://b.example.org/api/ingest", "wss://c.example.org/api/ingest"
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want [][]string
	}{
		{"a comma list in --relay", []string{"--relay", "https://a.example.org, wss://b.example.org,", "--token", "t"}, nil,
			[][]string{{a, b}}},
		{"a comma list in ATTACKMAP_RELAY", nil, map[string]string{"ATTACKMAP_RELAY": "wss://a.example.org,wss://b.example.org", "ATTACKMAP_TOKEN": "t"},
			[][]string{{a, b}}},
		{"urls in the config", []string{"--config", write(`{"relays":[{"urls":["https://a.example.org","wss://b.example.org"],"token":"t"}]}`)}, nil,
			[][]string{{a, b}}},
		{"url and urls, a repeat dropped", []string{"--config", write(`{"relays":[{"url":"https://a.example.org","urls":["wss://b.example.org","wss://a.example.org/api/ingest"],"token":"t"}]}`)}, nil,
			[][]string{{a, b}}},
		{"a cluster and a single relay", []string{"--config", write(`{"relays":[{"urls":["wss://a.example.org","wss://b.example.org"],"token":"t"}]}`),
			"--relay", "wss://c.example.org", "--token", "u"}, nil,
			[][]string{{a, b}, {c}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseArgs(tt.args, env(tt.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, r := range cfg.Relays {
				got = append(got, r.URLs)
				if r.URL != r.URLs[0] {
					t.Errorf("URL %q is not the first of %v", r.URL, r.URLs)
				}
			}
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("relays %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRelayEntriesThatCannotWorkAreRefused(t *testing.T) {
	dir := t.TempDir()
	for i, tt := range []struct {
		cfg, want string
	}{
		{`{"relays":[{"token":"t"}]}`, "relays[0]: no url"},
		{`{"relays":[{"urls":[],"token":"t"}]}`, "relays[0]: no url"},
		{`{"relays":[{"urls":["wss://a.example.org"]}]}`, "relays[0]: no token"},
		{`{"relays":[{"urls":["ftp://a.example.org"],"token":"t"}]}`, "scheme"},
		{`{"relays":[{"url":"wss://a.example.org","token":"t"},{"urls":["wss://b.example.org","https://a.example.org"],"token":"u"}]}`,
			"relays[1]: wss://a.example.org/api/ingest is also in relays[0]"},
	} {
		p := filepath.Join(dir, fmt.Sprintf("c%d.json", i))
		os.WriteFile(p, []byte(tt.cfg), 0o644)
		_, err := parseArgs([]string{"--config", p}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestHealthzAndMetricsNameTheURLInUse: the first URL of the destination
// is down, so the sensor fails over to the second at start; /healthz says
// which URL it uses and the metrics count the failover.
func TestHealthzAndMetricsNameTheURLInUse(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tokens")
	tok, err := token.Add(tokFile, "web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	live := serveRelay(t, dir, tokFile)
	dead := "ws://" + testkit.FreeAddrs(t, 1)[0] + "/api/ingest"
	addr := testkit.FreeAddrs(t, 1)[0]
	d := startDaemon(t, []string{"--data", filepath.Join(dir, "data"), "--metrics-listen", addr,
		"--auth-log", filepath.Join(dir, "auth.log"), "--relay", dead + "," + live, "--token", tok},
		io.Discard, io.Discard, nil)
	wantHealth := "relay " + dead + ": using " + live + " (2 of 2, 1 failover)"
	wantMetrics := []string{
		`attackmap_sensor_relay_url_index{relay="` + dead + `"} 1`,
		`attackmap_sensor_relay_url_info{relay="` + dead + `",url="` + live + `"} 1`,
		`attackmap_sensor_relay_failovers_total{relay="` + dead + `"} 1`,
		`attackmap_sensor_relay_connected{relay="` + dead + `"} 1`,
	}
	var code int
	var health, metrics string
	poll(t, d, func() bool {
		code, health = get("http://" + addr + "/healthz")
		_, metrics = get("http://" + addr + "/metrics")
		return code == http.StatusOK && strings.Contains(health, wantHealth) &&
			!slices.ContainsFunc(wantMetrics, func(w string) bool { return !strings.Contains(metrics, w) })
	})
	if code != http.StatusOK || health != "ok\n"+wantHealth+"\n" {
		t.Errorf("/healthz %d %q, want 200 %q", code, health, "ok\n"+wantHealth+"\n")
	}
	for _, w := range wantMetrics {
		if !strings.Contains(metrics, w) {
			t.Errorf("no %q in /metrics", w)
		}
	}
}
