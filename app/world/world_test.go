package world

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

func loadTiny(t testing.TB) *Topology {
	t.Helper()
	data, err := os.ReadFile("testdata/tiny.json")
	if err != nil {
		t.Fatal(err)
	}
	topo, err := Decode(data, "countries")
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestDecodeJoinsArcsIntoRings(t *testing.T) {
	topo := loadTiny(t)
	if len(topo.Countries) != 4 {
		t.Fatalf("%d countries, want 4 (the null geometry is skipped)", len(topo.Countries))
	}
	sq := topo.Countries[0]
	if sq.ID != "276" || sq.Name != "Squareland" {
		t.Fatalf("first country %q %q", sq.ID, sq.Name)
	}
	// Arc 0 then arc 1, the shared corner written once: a closed square
	// from (10,50) around to (10,50) in lon/lat.
	want := orb.Ring{{10, 50}, {20, 50}, {20, 60}, {10, 60}, {10, 50}}
	if got := sq.Polygons[0][0]; !got.Equal(want) {
		t.Fatalf("ring %v, want %v", got, want)
	}
	// Twoland uses arc 1 reversed (~1 = -2), then arc 2.
	two := topo.Countries[1]
	if len(two.Polygons) != 2 {
		t.Fatalf("Twoland has %d polygons", len(two.Polygons))
	}
	if got := two.Polygons[0][0]; got[0] != (orb.Point{10, 50}) || got[1] != (orb.Point{10, 60}) {
		t.Fatalf("reversed arc starts %v", got[:2])
	}
	if got := two.Arcs; len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("arc indexes %v, want [1 2 3]", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not json", `{`, "not TopoJSON"},
		{"geojson", `{"type":"FeatureCollection"}`, `type "FeatureCollection"`},
		{"missing object", `{"type":"Topology","objects":{},"arcs":[]}`, `no object "countries"`},
		{"not a collection", `{"type":"Topology","objects":{"countries":{"type":"Polygon"}},"arcs":[]}`, "want a GeometryCollection"},
		{"arc out of range", `{"type":"Topology","objects":{"countries":{"type":"GeometryCollection","geometries":[{"type":"Polygon","arcs":[[7]]}]}},"arcs":[]}`, "arc 7 does not exist"},
		{"reversed arc out of range", `{"type":"Topology","objects":{"countries":{"type":"GeometryCollection","geometries":[{"type":"Polygon","arcs":[[-9]]}]}},"arcs":[]}`, "arc 8 does not exist"},
		{"short position", `{"type":"Topology","objects":{},"arcs":[[[1]]]}`, "has 1 coordinates"},
		{"bad polygon arcs", `{"type":"Topology","objects":{"countries":{"type":"GeometryCollection","geometries":[{"type":"Polygon","arcs":"x"}]}},"arcs":[]}`, "polygon arcs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in), "countries")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "world: ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not one prefixed line", err)
			}
		})
	}
}

func TestSVGSkipsAndWrapsAtTheAntimeridian(t *testing.T) {
	svg := string(SVG(loadTiny(t), Options{Skip: []string{"010"}}))
	for _, want := range []string{`viewBox="0 1.6 1000 708.0"`, `fill="` + Land + `"`, `stroke="` + Border + `"`, "Natural Earth"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %s", want)
		}
	}
	land := between(svg, `fill="`+Land+`" d="`, `"`)
	// Squareland, Twoland's two rings, and Dateline twice (once each side).
	if n := strings.Count(land, "M"); n != 5 {
		t.Errorf("land has %d subpaths, want 5: %s", n, land)
	}
	if dx := maxStep(land); dx > 2000 {
		t.Errorf("land streaks %d units across the map: %s", dx, land)
	}
	borders := between(svg, `stroke-linejoin="round" d="`, `"`)
	if dx := maxStep(borders); dx > 2000 {
		t.Errorf("borders streak %d units across the map: %s", dx, borders)
	}
	all := between(string(SVG(loadTiny(t), Options{})), `fill="`+Land+`" d="`, `"`)
	if n := strings.Count(all, "M"); n != 6 {
		t.Errorf("without the skip, land has %d subpaths, want 6 (Antarctica back)", n)
	}
}

// maxStep returns the largest relative x step in path data written by
// pathWriter ("M x y l dx dy dx dy ...").
func maxStep(d string) int {
	best := 0
	for _, sub := range strings.Split(d, "M") {
		_, rel, ok := strings.Cut(sub, "l")
		if !ok {
			continue
		}
		rel = strings.TrimSuffix(rel, "z")
		nums := strings.Fields(strings.ReplaceAll(rel, "-", " -"))
		for i := 0; i < len(nums); i += 2 {
			n, _ := strconv.Atoi(nums[i])
			if n < 0 {
				n = -n
			}
			best = max(best, n)
		}
	}
	return best
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}

// TestCommittedAssetIsCurrent regenerates web/world.svg from world-atlas
// (the npm cache `make world` fills, else a fresh `npm pack` into a temp
// dir) and compares it with the committed file.
func TestCommittedAssetIsCurrent(t *testing.T) {
	in := filepath.Join("..", "..", ".cache", "world-atlas", "package", "countries-110m.json")
	data, err := os.ReadFile(in)
	if err != nil {
		data = fetchWorldAtlas(t)
	}
	topo, err := Decode(data, "countries")
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "web", "world.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if string(SVG(topo, Options{Skip: []string{"010"}})) != string(committed) {
		t.Fatal("web/world.svg is stale: run make world")
	}
}

// fetchWorldAtlas gets the pinned world-atlas from the npm registry.
func fetchWorldAtlas(t *testing.T) []byte {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("world-atlas is not cached and npm is missing (apt-get install npm, or run make world)")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "pack", "--silent", "world-atlas@2.0.2")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(dir, ".npm"), "npm_config_update_notifier=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm pack world-atlas needs the npm registry, which did not answer: %v: %.200s", err, out)
	}
	tgz, err := os.Open(filepath.Join(dir, "world-atlas-2.0.2.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	defer tgz.Close()
	zr, err := gzip.NewReader(tgz)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("countries-110m.json not in the package: %v", err)
		}
		if h.Name == "package/countries-110m.json" {
			data, err := io.ReadAll(io.LimitReader(tr, MaxBytes))
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"type":"Topology","objects":{"countries":{"type":"GeometryCollection","geometries":[{"type":"MultiPolygon","arcs":[[[0,-1]]]}]}},"arcs":[[[0,0],[1,1]]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := Decode(data, "countries")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		_ = SVG(topo, Options{})
	})
}
