package geoip

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/maxminddb-golang/v2"
)

// TestFuzzSeedsAreDatabasesOfEachSchema checks that the seed corpus of
// FuzzDatabase holds a valid small database of each schema, each placing
// its test address (so the fuzzer starts from inputs that reach the record
// decoders, not from garbage). With GEOIP_UPDATE_SEEDS=1 it first rewrites
// the corpus.
func TestFuzzSeedsAreDatabasesOfEachSchema(t *testing.T) {
	if os.Getenv("GEOIP_UPDATE_SEEDS") != "" {
		writeFuzzSeeds(t)
	}
	want := map[string]struct {
		addr string
		ok   func(Result) bool
	}{
		"flat": {"81.2.69.1", func(r Result) bool { return r.City == "London" && r.Country == "GB" }},
		"city": {"81.2.69.1", func(r Result) bool { return r.City == "London" && r.Country == "GB" }},
		"asn":  {"1.128.0.1", func(r Result) bool { return r.ASN == 1221 && r.Org == "Telstra" }},
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzDatabase", name))
			if err != nil {
				t.Fatal(err)
			}
			// "go test fuzz v1\n[]byte(\"...\")\n"
			_, rest, _ := bytes.Cut(b, []byte("\n"))
			q := bytes.TrimSuffix(bytes.TrimPrefix(bytes.TrimSpace(rest), []byte("[]byte(")), []byte(")"))
			data, err := strconv.Unquote(string(q))
			if err != nil {
				t.Fatalf("seed file is not a go fuzz corpus entry: %v", err)
			}
			r, err := maxminddb.OpenBytes([]byte(data))
			if err != nil {
				t.Fatal(err)
			}
			db, err := classify(r, name)
			if err != nil {
				t.Fatal(err)
			}
			d := &DB{paths: []string{name}, dbs: []*database{db}, byAddr: map[netip.Addr]Result{}}
			d.log = slog.New(slog.DiscardHandler)
			if res := d.Lookup(netip.MustParseAddr(w.addr)); !w.ok(res) {
				t.Fatalf("%s in the %s seed: %+v", w.addr, name, res)
			}
		})
	}
}

// writeFuzzSeeds regenerates the seed corpus of FuzzDatabase.
func writeFuzzSeeds(t *testing.T) {
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
