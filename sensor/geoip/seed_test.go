package geoip

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// TestWriteFuzzSeeds regenerates the seed corpus of FuzzDatabase (small
// databases of each schema) when GEOIP_UPDATE_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("GEOIP_UPDATE_SEEDS") == "" {
		t.Skip("set GEOIP_UPDATE_SEEDS=1 to rewrite testdata/fuzz/FuzzDatabase")
	}
	dir := t.TempDir()
	out := filepath.Join("testdata", "fuzz", "FuzzDatabase")
	os.MkdirAll(out, 0o755)
	for name, db := range map[string]struct {
		typ  string
		ver  int
		recs map[string]mmdbtype.Map
	}{
		"flat": {"city ipv4", 4, map[string]mmdbtype.Map{"81.2.69.0/24": flat("GB", "London", mmdbtype.Float32(51.5), mmdbtype.Float32(-0.1))}},
		"city": {"GeoIP2-City", 6, map[string]mmdbtype.Map{"81.2.69.0/24": cityRec("GB", "London", 51.5, -0.1, 10)}},
		"asn": {"GeoLite2-ASN", 6, map[string]mmdbtype.Map{"1.128.0.0/11": {
			"autonomous_system_number": mmdbtype.Uint32(1221), "autonomous_system_organization": mmdbtype.String("Telstra")}}},
	} {
		p := filepath.Join(dir, name)
		writeDB(t, p, db.typ, db.ver, db.recs)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
