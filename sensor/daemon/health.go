package daemon

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/attackmap/attackmap/sensor/push"
)

// problems lists why the sensor is unhealthy, one reason a line; empty
// when it is healthy. A relay that refuses the token or cannot be reached,
// a cursor that cannot be stored and a journal the disk refuses are
// problems; a relay not answered yet (starting) is not.
func (m *metrics) problems() []string {
	var out []string
	names := make([]string, 0, len(m.journals))
	for name := range m.journals {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if m.journals[name].Stats().Failing {
			out = append(out, "journal "+name+": the disk refuses writes (full disk?)")
		}
	}
	m.mu.Lock()
	fs := append([]*push.Forwarder(nil), m.forwarders...)
	m.mu.Unlock()
	for _, f := range fs {
		if p := f.Health(); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// healthz answers GET /healthz on --metrics-listen: 200 "ok", or 503 with
// the reasons, one a line, for a monitor and for the operator reading it.
func (m *metrics) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ps := m.problems()
	if len(ps) == 0 {
		fmt.Fprintln(w, "ok")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	for _, p := range ps {
		fmt.Fprintln(w, p)
	}
}
