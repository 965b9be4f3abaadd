package detect

import (
	"strings"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

// The HTTP half of credential_stuffing: web login abuse.

func (d *credentialStuffing) web(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	wp := hasSuffixAnyFold(ev.Path, d.wpPaths)
	_, login := containsAnyFold(ev.Path, d.loginPaths)
	failed := login && (ev.Status == 401 || ev.Status == 403)
	if !wp && !failed {
		return out
	}
	st := d.t.get(ev.SrcIP, now)
	open := d.current(e, st, now)
	if open == nil && st.http.empty(now, d.cfg.HTTPFailures) && st.wp.empty(now, d.cfg.WordPress) {
		st.prePaths = st.prePaths[:0]
	}
	var fired bool
	var b *bucket
	var c Bucket
	if failed {
		b, c = &st.http, d.cfg.HTTPFailures
		fired = st.http.add(now, c)
	}
	if wp {
		if st.wp.add(now, d.cfg.WordPress) && !fired {
			b, c, fired = &st.wp, d.cfg.WordPress, true
		} else if b == nil {
			b, c = &st.wp, d.cfg.WordPress
		}
	}
	if open != nil {
		open.count++
		st.httpCount++
		d.webEvidence(open, ev)
		return d.publish(e, st, open, now, out)
	}
	if !fired {
		if len(st.prePaths) < incident.MaxList {
			st.prePaths = appendDistinct(st.prePaths, ev.Path)
		}
		return out
	}
	ep := e.open("credential_stuffing", ev.SrcIP.String(), d.cfg.Severity, c.threshold(), b.since, now, int(b.n))
	for _, p := range st.prePaths {
		addText(&ep.inc.Evidence.Paths, p)
	}
	st.prePaths, st.ep, st.viaSSH, st.httpCount = nil, ep, false, int(b.n)
	d.webEvidence(ep, ev)
	ep.inc.Title = "Credential stuffing"
	ep.render = func() { d.render(ep, false) }
	return d.publish(e, st, ep, now, out)
}

func (d *credentialStuffing) webEvidence(ep *episode, ev *event.Event) {
	ev2 := ep.inc.Evidence
	addText(&ev2.Paths, ev.Path)
	addText(&ev2.Methods, ev.Method)
	addInt(&ev2.Statuses, ev.Status)
	if ev.UA != "" {
		addText(&ev2.UserAgents, ev.UA)
	}
	if ev.User != "" {
		addText(&ev2.Users, ev.User)
	}
}

// hasSuffixAnyFold reports whether path ends with one of the lower-case
// suffixes, ignoring ASCII case.
func hasSuffixAnyFold(path string, sufs []string) bool {
	for _, s := range sufs {
		if len(path) >= len(s) && strings.EqualFold(path[len(path)-len(s):], s) {
			return true
		}
	}
	return false
}
