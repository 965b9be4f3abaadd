package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/drill"
	"github.com/attackmap/attackmap/internal/cli"
	"github.com/oschwald/geoip2-golang/v2"
)

func runCmd(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(t.Context(), args, func(k string) string { return env[k] }, &out, &errb)
	code = cli.Exit("attackmap-drill", err, &errb) // as main does
	return out.String(), errb.String(), code
}

func TestBadCommandLinesExit2WithOneLine(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"attack"},
		{"run", "--no-such-flag"},
		{"run", "extra"},
		{"run", "--only", "ssh-brutefroce", "--dir", t.TempDir()},
		{"run", "--format", "iso", "--dir", t.TempDir()},
		{"overlay"},
		{"plan", "x"},
	} {
		_, stderr, code := runCmd(t, nil, args...)
		if code != 2 || stderr == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}

func TestPlanJSONIsTheDrillPlan(t *testing.T) {
	stdout, _, code := runCmd(t, nil, "plan", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got []drill.Attack
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	want := drill.Plan()
	if len(got) != len(want) {
		t.Fatalf("%d attacks, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Name != want[i].Name || got[i].Addr != want[i].Addr || got[i].Place.City != want[i].Place.City {
			t.Errorf("attack %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	table, _, _ := runCmd(t, nil, "plan")
	if !strings.Contains(table, "127.10.0.1") || !strings.Contains(table, "Frankfurt am Main, DE") {
		t.Errorf("plan table:\n%s", table)
	}
}

func TestOverlayCommandWritesAnMMDB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.mmdb")
	if _, stderr, code := runCmd(t, nil, "overlay", path); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	db, err := geoip2.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Metadata().DatabaseType != "GeoIP2-City" {
		t.Errorf("type %q", db.Metadata().DatabaseType)
	}
}

// TestRunUsesTheDrillDirectory runs the web attacks through the command:
// files land in ATTACKMAP_DRILL_DIR and the report names every attack run.
func TestRunUsesTheDrillDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "drill")
	stdout, stderr, code := runCmd(t, map[string]string{"ATTACKMAP_DRILL_DIR": dir},
		"run", "--only", "web-scan,exploit-probe", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	for _, f := range []string{"geoip-drill.mmdb", "access.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "auth.log")); err == nil {
		t.Error("auth.log written without SSH attacks")
	}
	var rep drill.Report
	if err := json.Unmarshal([]byte(stdout[strings.Index(stdout, "{"):]), &rep); err != nil {
		t.Fatalf("%v in\n%s", err, stdout)
	}
	if len(rep.Results) != 2 || rep.Results[0].Name != drill.WebScan || rep.Results[0].Count == 0 ||
		rep.Results[1].Name != drill.ExploitProbe || rep.Results[1].Last.IsZero() {
		t.Errorf("report %+v", rep.Results)
	}
}
