package live

import (
	"strings"
	"testing"

	"github.com/attackmap/attackmap/sensor/detect"
)

// The map's attack-type list must name and colour every detector the
// sensor has, so a new detector never shows up as a raw snake_case name.
func TestAttackTypesCoverEveryDetector(t *testing.T) {
	known := map[string]AttackType{}
	for _, at := range attackTypes {
		known[at.Source] = at
	}
	for _, name := range detect.Detectors() {
		at, ok := known[name]
		if !ok {
			t.Errorf("detector %q has no entry in the map's attack types (app/live/present.go)", name)
			continue
		}
		if Label(name) != at.Label || TypeColour(name) != at.Colour {
			t.Errorf("%q: Label/TypeColour do not use its entry", name)
		}
	}
}

func TestAttackTypeColoursAreDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, at := range attackTypes {
		if other, ok := seen[at.Colour]; ok {
			t.Errorf("%s and %s share the colour %s", at.Source, other, at.Colour)
		}
		seen[at.Colour] = at.Source
		for _, sev := range []string{"#ef4444", "#f87171", "#f59e0b", "#06b6d4", "#22d3ee"} {
			if at.Colour == sev {
				t.Errorf("%s uses the severity colour %s", at.Source, sev)
			}
		}
	}
}

func TestUnknownSourcesKeepAStableColourAndReadableLabel(t *testing.T) {
	a, b := TypeColour("dns_tunnel"), TypeColour(strings.Clone("dns_tunnel"))
	if a != b || a == "" {
		t.Fatal("unknown source colour is not stable")
	}
	if got := Label("dns_tunnel"); got != "Dns tunnel" {
		t.Fatalf("Label(dns_tunnel) = %q", got)
	}
	if got := Label(""); got != "Unknown" {
		t.Fatalf("Label(\"\") = %q", got)
	}
}
