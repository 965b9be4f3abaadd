package daemon

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestErrorLogFlagReachesTheCollectors: --error-log replaces the default
// error log paths (the config key logs.error) and the collectors follow
// the given files even before they exist.
func TestErrorLogFlagReachesTheCollectors(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parseArgs([]string{"--data", dir, "--error-log", "/srv/a/error.log", "--error-log", "/srv/b/error_log"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/srv/a/error.log", "/srv/b/error_log"}
	if !reflect.DeepEqual(cfg.Logs.Error, want) {
		t.Fatalf("logs.error %v, want %v", cfg.Logs.Error, want)
	}
	d := &detection{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	if lc := d.logConfig(); !reflect.DeepEqual(lc.ErrorLogs, want) {
		t.Fatalf("collectors follow %v, want %v", lc.ErrorLogs, want)
	}
}

func TestErrorLogsInTheConfigFile(t *testing.T) {
	def, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(def.Logs.Error) == 0 {
		t.Fatal("no default error logs")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	if err := os.WriteFile(p, []byte(`{"logs": {"error": ["/var/log/nginx/site-error.log"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseArgs([]string{"--config", p}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Logs.Error, []string{"/var/log/nginx/site-error.log"}) {
		t.Fatalf("logs.error %v", cfg.Logs.Error)
	}
}

// A list the user gives is followed as given, even when it equals the
// built-in default (whose files are otherwise followed only where they
// exist); a list left out falls back to what exists.
func TestGivenLogListsAreFollowedEvenWhenEqualToTheDefaults(t *testing.T) {
	def, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	if err := os.WriteFile(p, []byte(`{"logs": {"AUTH": ["/var/log/auth.log", "/var/log/secure"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"config file", []string{"--config", p}},
		{"flags", []string{"--auth-log", "/var/log/auth.log", "--auth-log", "/var/log/secure"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseArgs(append(tc.args, "--data", dir), env(nil), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Logs.Auth, def.Logs.Auth) {
				t.Fatalf("test premise: auth %v is not the default %v", cfg.Logs.Auth, def.Logs.Auth)
			}
			lc := (&detection{cfg: cfg, log: slog.New(slog.DiscardHandler)}).logConfig()
			if !reflect.DeepEqual(lc.AuthLogs, def.Logs.Auth) || lc.UseJournal {
				t.Errorf("auth logs %v (journal %v), want %v as given", lc.AuthLogs, lc.UseJournal, def.Logs.Auth)
			}
			if want := existing(def.Logs.Firewall); !reflect.DeepEqual(lc.FWLogs, want) {
				t.Errorf("firewall logs %v, want the defaults that exist %v", lc.FWLogs, want)
			}
		})
	}
}
