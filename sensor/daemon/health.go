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

// inUse says, for each relay destination, which of its URLs the pusher
// uses: "relay NAME: using URL (2 of 3, 1 failover)".
func (m *metrics) inUse() []string {
	m.mu.Lock()
	fs := append([]*push.Forwarder(nil), m.forwarders...)
	m.mu.Unlock()
	var out []string
	for _, f := range fs {
		s := f.Stats()
		if s.URLCount == 0 {
			continue // the embedded relay
		}
		plural := "s"
		if s.Failovers == 1 {
			plural = ""
		}
		out = append(out, fmt.Sprintf("relay %s: using %s (%d of %d, %d failover%s)",
			f.Name, s.URL, s.URLIndex+1, s.URLCount, s.Failovers, plural))
	}
	return out
}

// healthz answers GET /healthz on --metrics-listen: 200 "ok", or 503 with
// the reasons, one a line, for a monitor and for the operator reading it;
// then a line per relay naming the URL in use.
func (m *metrics) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ps := m.problems()
	if len(ps) == 0 {
		ps = []string{"ok"}
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	for _, p := range append(ps, m.inUse()...) {
		fmt.Fprintln(w, p)
	}
}
