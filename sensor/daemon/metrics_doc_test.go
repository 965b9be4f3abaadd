package daemon

import (
	"testing"

	"github.com/attackmap/attackmap/internal/testkit"
)

// Every metric the sensor registers is in docs/DESIGN.md (the eBPF
// collectors' are checked in sensor/kernel, the embedded relay's in relay).
func TestEverySensorMetricIsDocumented(t *testing.T) {
	ms := testkit.Describe(t, newMetrics(t.TempDir(), nil), newDetectionMetrics(nil))
	for _, m := range ms { // -v prints DESIGN's table rows
		t.Logf("| `%s` | %s | %s |", m.Name, m.Labels, m.Help)
	}
	testkit.CheckDocumented(t, "../../docs/DESIGN.md", ms)
}
