package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDetectionFailsOnABadWebRulesFile checks that detect.web_rules files
// are loaded when the detection stage starts, and that a broken one stops
// it with one line naming the file.
func TestDetectionFailsOnABadWebRulesFile(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "my-rules.json")
	if err := os.WriteFile(rules, []byte(`{"version": "x", "rules": [{"id": "Not An Id"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`{"data_dir": %q, "logs": {"auth": [], "access": [], "firewall": []},
		"ebpf": {"enabled": false}, "detect": {"web_rules": [%q]}}`, dir, rules)))
	if err != nil {
		t.Fatal(err)
	}
	d := &detection{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	err = d.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), rules) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err %v, want one line naming %s", err, rules)
	}
}
