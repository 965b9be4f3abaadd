package detect

import (
	"testing"

	"github.com/attackmap/attackmap/incident"
)

// TestEveryDetectorIsAKnownSource guards incident's list of detector
// names: the relay counts any other source as "other" in /api/stats, so a
// detector missing there would vanish from every map's statistics. Add
// the new name to knownSources in incident/sources.go.
func TestEveryDetectorIsAKnownSource(t *testing.T) {
	for _, name := range Detectors() {
		if !incident.KnownSource(name) {
			t.Errorf("detector %q is not an incident.KnownSource; add it to incident/sources.go", name)
		}
	}
}
