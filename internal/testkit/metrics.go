package testkit

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric is what a collector describes of one metric.
type Metric struct {
	Name, Help string
	// Labels are the variable labels and the constant ones as name=value,
	// as Desc prints them.
	Labels string
}

var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]*)", help: "((?:[^"\\]|\\.)*)", constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}\}$`)

// Describe returns the metrics the collectors describe, in their order.
// Unlike a scrape it includes the vectors nothing has been counted in yet.
func Describe(t testing.TB, cs ...prometheus.Collector) []Metric {
	t.Helper()
	var out []Metric
	for _, c := range cs {
		ch := make(chan *prometheus.Desc)
		go func() {
			c.Describe(ch)
			close(ch)
		}()
		for d := range ch {
			m := descRE.FindStringSubmatch(d.String())
			if m == nil {
				t.Errorf("cannot read the description %s", d) // and drain the rest
				continue
			}
			labels := strings.TrimSpace(strings.Join(strings.Fields(m[4]+" "+m[3]), ","))
			out = append(out, Metric{Name: m[1], Help: m[2], Labels: strings.ReplaceAll(labels, ",,", ",")})
		}
	}
	return out
}

// CheckDocumented fails the test for each attackmap_ metric of ms that
// doc (a path) does not name in full, in backquotes: the metrics are part
// of the contract, and an operator looks them up there.
func CheckDocumented(t testing.TB, doc string, ms []Metric) {
	t.Helper()
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range ms {
		if !strings.HasPrefix(m.Name, "attackmap_") || seen[m.Name] {
			continue
		}
		seen[m.Name] = true
		if !strings.Contains(string(b), "`"+m.Name+"`") && !strings.Contains(string(b), "`"+m.Name+"{") {
			t.Errorf("%s does not document the metric %s (%s)", doc, m.Name, m.Help)
		}
	}
	if len(seen) == 0 {
		t.Error("no attackmap_ metric described")
	}
}
