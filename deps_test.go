// Package attackmap_test holds the tests of the module as a whole: here, the
// direction of its dependencies (docs/DESIGN.md, "Parts and folders").
package attackmap_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/attackmap/attackmap/"

// A stage may import its own stage and earlier ones, never a later one:
// data flows collectors -> detection -> journal -> delivery -> relay -> app,
// and the commands and harnesses on top wire them together. Shared pieces
// (the incident format, internal/) import no stage at all.
const (
	shared = iota
	collectors
	detection
	journal
	delivery
	relay
	app
	wiring
)

var stageNames = []string{"shared", "collectors", "detection", "journal", "delivery", "relay", "app", "wiring"}

// stages maps a package path (relative to the module) or a folder of
// packages to its stage; the longest match wins. A new package must be
// added here (the test says so) so that its place is a decision.
var stages = map[string]int{
	"incident": shared,
	"internal": shared,
	"bpf":      shared, // the compiled eBPF objects: the kernel collector and the XDP blocker load them

	"sensor/event":    collectors, // the raw event: what collectors produce and detectors read
	"sensor/kernel":   collectors,
	"sensor/logparse": collectors,
	"sensor/tail":     collectors,
	"sensor/journald": collectors,
	"sensor/logsrc":   collectors,

	"sensor/webrule":   detection,
	"sensor/detect":    detection,
	"sensor/detectcmd": detection, // `attackmap-sensor detect`: collectors and detection, nothing after

	"sensor/journal": journal,

	"sensor/geoip":   delivery,
	"sensor/enrich":  delivery,
	"sensor/push":    delivery,
	"sensor/respond": delivery,
	"sensor/daemon":  delivery, // `attackmap-sensor run`: the whole sensor; the relay only through daemon.Embedded

	"relay": relay,

	"app":    app,
	"static": app, // the exported map the relays serve

	"cmd":   wiring,
	"drill": wiring,
	"e2e":   wiring,
}

func stageOf(pkg string) (int, bool) {
	best, stage := -1, 0
	for prefix, s := range stages {
		if (pkg == prefix || strings.HasPrefix(pkg, prefix+"/")) && len(prefix) > best {
			best, stage = len(prefix), s
		}
	}
	return stage, best >= 0
}

// side says which half of the system a package belongs to: the sensor and
// the server (relay and map) meet only in the shared packages and in the
// wiring, never by importing each other.
func side(pkg string) string {
	switch s, _ := stageOf(pkg); {
	case s == shared || s == wiring:
		return ""
	case s == relay || s == app:
		return "server"
	}
	return "sensor"
}

// deps lists every package of the module and its transitive non-test
// dependencies inside the module, for the given GOOS/GOARCH.
func deps(t *testing.T, env []string, patterns ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e",
		"-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`}, patterns...)...)
	cmd.Env = append(cmd.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], module) {
			continue
		}
		var own []string
		for _, d := range f[1:] {
			if p, ok := strings.CutPrefix(d, module); ok {
				own = append(own, p)
			}
		}
		m[strings.TrimPrefix(f[0], module)] = own
	}
	return m
}

// violations returns, for every package, the dependencies that break the
// stage order or cross between the sensor and the server.
func violations(graph map[string][]string) []string {
	var bad []string
	for pkg, ds := range graph {
		ps, ok := stageOf(pkg)
		if !ok {
			bad = append(bad, pkg+": no stage (add it to the stages table in deps_test.go)")
			continue
		}
		for _, d := range ds {
			s, ok := stageOf(d)
			switch {
			case !ok:
				bad = append(bad, d+": no stage (add it to the stages table in deps_test.go)")
			case s > ps:
				bad = append(bad, pkg+" ("+stageNames[ps]+") depends on "+d+" ("+stageNames[s]+"), a later stage")
			case side(pkg) != "" && side(d) != "" && side(pkg) != side(d):
				bad = append(bad, pkg+" ("+side(pkg)+") depends on "+d+" ("+side(d)+")")
			}
		}
	}
	return bad
}

func TestNoPackageDependsOnALaterStage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module; skipped in -short")
	}
	graphs := map[string]map[string][]string{
		"host": deps(t, nil, "./..."),
		// The map's browser build has its own files (js/wasm).
		"js/wasm": deps(t, []string{"GOOS=js", "GOARCH=wasm"}, "./app/..."),
	}
	for name, g := range graphs {
		if len(g) == 0 {
			t.Fatalf("%s: go list found no packages", name)
		}
		for _, v := range violations(g) {
			t.Errorf("%s: %s", name, v)
		}
	}
}

// The check itself catches what it is there for.
func TestTheStageCheckCatchesBackwardDependencies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		graph map[string][]string
		want  string
	}{
		{"relay on a sensor journal", map[string][]string{"relay": {"sensor/journal"}}, "relay (server) depends on sensor/journal (sensor)"},
		{"sensor on the relay", map[string][]string{"sensor/daemon": {"relay"}}, "sensor/daemon (delivery) depends on relay (relay), a later stage"},
		{"sensor on the map", map[string][]string{"sensor/push": {"static"}}, "a later stage"},
		{"map on the sensor", map[string][]string{"app/live": {"sensor/geoip"}}, "app/live (server) depends on sensor/geoip (sensor)"},
		{"shared on a stage", map[string][]string{"internal/jsonl": {"sensor/event"}}, "internal/jsonl (shared) depends on sensor/event (collectors)"},
		{"unknown package", map[string][]string{"newpkg": nil}, "newpkg: no stage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := violations(tc.graph)
			if len(v) != 1 || !strings.Contains(v[0], tc.want) {
				t.Fatalf("violations %q, want one with %q", v, tc.want)
			}
		})
	}
	if v := violations(map[string][]string{"cmd/attackmap-sensor": {"relay", "sensor/daemon"}, "relay": {"internal/jsonl"}}); len(v) != 0 {
		t.Fatalf("allowed dependencies refused: %q", v)
	}
}
