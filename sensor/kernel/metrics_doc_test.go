package kernel

import (
	"testing"

	"github.com/attackmap/attackmap/internal/testkit"
)

// Every metric of the eBPF collectors is in docs/DESIGN.md.
func TestEveryCollectorMetricIsDocumented(t *testing.T) {
	ms := testkit.Describe(t, newMetrics(&stats{}, nil))
	for _, m := range ms { // -v prints DESIGN's table rows
		t.Logf("| `%s` | %s | %s |", m.Name, m.Labels, m.Help)
	}
	testkit.CheckDocumented(t, "../../docs/DESIGN.md", ms)
}
