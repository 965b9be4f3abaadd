package relay

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attackmap/attackmap/internal/testkit"
)

// recorder is a registry that keeps every collector registered on it.
type recorder struct {
	*prometheus.Registry
	cs []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	r.cs = append(r.cs, c)
	return r.Registry.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	r.cs = append(r.cs, cs...)
	r.Registry.MustRegister(cs...)
}

// Every metric the relay registers is in docs/DESIGN.md.
func TestEveryRelayMetricIsDocumented(t *testing.T) {
	rec := &recorder{Registry: prometheus.NewRegistry()}
	startRelay(t, Config{Registry: rec})
	ms := testkit.Describe(t, rec.cs...)
	for _, m := range ms { // -v prints DESIGN's table rows
		t.Logf("| `%s` | %s | %s |", m.Name, m.Labels, m.Help)
	}
	testkit.CheckDocumented(t, "../docs/DESIGN.md", ms)
}
