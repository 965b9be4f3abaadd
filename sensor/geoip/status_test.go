package geoip

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// TestOpenLogsOnlyWhatIsMissingWhenNothingIsLoaded: with DB-IP loaded,
// the absent GeoLite2 files are not announced; with nothing loaded, one
// WARN names every missing path.
func TestOpenLogsOnlyWhatIsMissingWhenNothingIsLoaded(t *testing.T) {
	dir := t.TempDir()
	dbip := filepath.Join(dir, "dbip-city-ipv4.mmdb")
	writeDB(t, dbip, "City IPv4", 4, map[string]mmdbtype.Map{"81.2.69.0/24": flat("DE", "Berlin", mmdbtype.Float32(52.5), mmdbtype.Float32(13.4))})
	lite := filepath.Join(dir, "GeoLite2-City.mmdb")
	asn := filepath.Join(dir, "GeoLite2-ASN.mmdb")
	for _, tc := range []struct {
		name         string
		paths        []string
		want, reject []string
	}{
		{"dbip loaded", []string{lite, dbip, asn}, []string{"geoip: database loaded", "dbip-city-ipv4.mmdb"}, []string{"waiting", "GeoLite2", "level=WARN"}},
		{"nothing loaded", []string{lite, asn}, []string{"level=WARN", "no location database loaded", lite, asn}, []string{"waiting"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			db, err := Open(tc.paths, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, w := range tc.want {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, logs.String())
				}
			}
			for _, r := range tc.reject {
				if strings.Contains(logs.String(), r) {
					t.Errorf("log has %q:\n%s", r, logs.String())
				}
			}
		})
	}
}

func TestStatusDescribesEveryPath(t *testing.T) {
	dir := t.TempDir()
	dbip := filepath.Join(dir, "dbip-city-ipv4.mmdb")
	writeDB(t, dbip, "City IPv4", 4, map[string]mmdbtype.Map{"81.2.69.0/24": flat("DE", "Berlin", mmdbtype.Float32(52.5), mmdbtype.Float32(13.4))})
	lite := filepath.Join(dir, "GeoLite2-City.mmdb")
	db, err := Open([]string{lite, dbip}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sts := db.Status()
	if len(sts) != 2 || sts[0].Path != lite || sts[0].Loaded || sts[0].Problem != "not present" {
		t.Fatalf("missing path: %+v", sts)
	}
	s := sts[1]
	if !s.Loaded || s.Type != "City IPv4" || s.Source != SourceDBIP || !s.Location || s.Built.IsZero() || s.Size == 0 || s.Problem != "" {
		t.Errorf("loaded path: %+v", s)
	}
	if Attribution(s.Source) == "" || !strings.Contains(Attribution(SourceMaxMind), "MaxMind") {
		t.Error("attribution missing")
	}
	// A file that appears after Open but does not open says why.
	if err := os.WriteFile(lite, []byte("not an mmdb"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p := db.Status()[0].Problem; !strings.Contains(p, "geoip: opening") {
		t.Errorf("problem %q", p)
	}
}
