package detectcmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigWebRules checks that --config's web_rules adds rule files to
// the embedded pack, and that a broken file fails in one line naming it.
func TestConfigWebRules(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "access.log")
	os.WriteFile(log, []byte(`198.18.7.9 - - [22/Mar/2026:14:31:02 +0000] "GET /acme/diag.cgi?ping=;reboot HTTP/1.1" 404 153 "-" "Mozilla/5.0"`+"\n"), 0o644)
	rules := filepath.Join(dir, "my-rules.json")
	os.WriteFile(rules, []byte(`{"version": "local-1", "rules": [{
		"id": "cve-2099-0001-acme-rce", "title": "Acme router RCE (CVE-2099-0001)", "severity": "critical",
		"category": "cve", "tags": ["cve-2099-0001"],
		"match": [{"in": ["path"], "any": ["/acme/diag.cgi"]}],
		"examples": {"match": ["GET /acme/diag.cgi?ping=;id HTTP/1.1"], "nomatch": ["GET /acme/index.html HTTP/1.1"]}}]}`), 0o644)
	cfg := filepath.Join(dir, "sensor.json")
	os.WriteFile(cfg, []byte(`{"detect": {"web_rules": [`+quoteJSON(rules)+`]}}`), 0o644)
	var stdout bytes.Buffer
	args := []string{"--access-log", log, "--include-private", "--config", cfg}
	if err := Run(context.Background(), args, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), `"title":"Acme router RCE (CVE-2099-0001)"`) {
		t.Fatalf("the user rule did not fire: %q", stdout.String())
	}

	os.WriteFile(rules, []byte(`{"version": "x", "rules": [{"id": "broken"`), 0o644)
	stdout.Reset()
	err := Run(context.Background(), args, &stdout, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), rules) || strings.Contains(err.Error(), "\n") || stdout.Len() != 0 {
		t.Fatalf("err %v, want one line naming %s", err, rules)
	}
	os.Remove(rules)
	if err := Run(context.Background(), args, &stdout, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), rules) {
		t.Fatalf("missing file: err %v", err)
	}
}

func quoteJSON(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }
