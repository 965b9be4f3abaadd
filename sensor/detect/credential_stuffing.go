package detect

import (
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

// CredentialStuffing counts many usernames or many failed web logins from
// one source.
type CredentialStuffing struct {
	Switch
	Severity incident.Severity `json:"severity"` // default high
	// SSHUsers: distinct usernames over SSH; capacity 4 leaking one per
	// 30 s fires on the 5th distinct username.
	SSHUsers Bucket `json:"ssh_users"`
	// HTTPFailures: failed web logins: POSTs to a login endpoint
	// answered 401 or 403, 401 answers to a request that carried a user
	// (basic auth), and error-log basic-auth failures; capacity 5
	// leaking one per 10 s (the 6th quick failure fires).
	HTTPFailures Bucket `json:"http_failures"`
	// LoginPosts: POSTs to a LoginPaths endpoint whatever the answer (a
	// real login is one POST answered 302; a tool POSTs dozens a
	// minute); capacity 9 leaking one per 10 s.
	LoginPosts Bucket `json:"login_posts"`
	// LoginPaths are login endpoints (see matchLoginPath): a path
	// matches one it ends with, ignoring ASCII case, a trailing slash and
	// an extension (/login matches /user/login, /login.php, /Login.aspx);
	// "P?Q" also needs a query starting with Q, and "P?" no query.
	LoginPaths []string `json:"login_paths"`
	// WordPress: POSTs to WPPaths whatever the answer (WordPress answers
	// failed logins with 200); capacity 9 leaking one per 10 s.
	WordPress Bucket   `json:"wordpress"`
	WPPaths   []string `json:"wp_paths"`
}

// defaultCredentialStuffing returns the defaults of credential_stuffing.
func defaultCredentialStuffing() CredentialStuffing {
	return CredentialStuffing{
		Severity:     incident.High,
		SSHUsers:     Bucket{Capacity: 4, Leak: Duration(30 * time.Second)},
		HTTPFailures: Bucket{Capacity: 5, Leak: Duration(10 * time.Second)},
		LoginPosts:   Bucket{Capacity: 9, Leak: Duration(10 * time.Second)},
		LoginPaths:   defaultLoginPaths(),
		WordPress:    Bucket{Capacity: 9, Leak: Duration(10 * time.Second)},
		WPPaths:      []string{"/wp-login.php", "/xmlrpc.php"},
	}
}

// credentialStuffingDetector is the table row of credential_stuffing (detectors.go).
func credentialStuffingDetector() registration {
	return registration{
		name:     "credential_stuffing",
		kinds:    []string{event.KindSSHFailed, event.KindHTTPRequest, event.KindHTTPError},
		section:  func(c *Config) *Switch { return &c.CredentialStuffing.Switch },
		severity: func(c *Config) incident.Severity { return c.CredentialStuffing.Severity },
		buckets: func(c *Config) map[string]Bucket {
			return map[string]Bucket{"ssh_users": c.CredentialStuffing.SSHUsers, "http_failures": c.CredentialStuffing.HTTPFailures, "login_posts": c.CredentialStuffing.LoginPosts, "wordpress": c.CredentialStuffing.WordPress}
		},
		build: func(e *Engine) detector { return newCredentialStuffing(e) },
	}
}

// credentialStuffing raises "credential_stuffing" (high) for many distinct
// usernames tried over SSH from one address (the 5th distinct username
// within the bucket), and for web login abuse: POSTs to login endpoints
// answered 401/403, or repeated POSTs to wp-login.php/xmlrpc.php.
type credentialStuffing struct {
	cfg        CredentialStuffing
	loginPaths []string
	wpPaths    []string
	t          *tracker[credState]
}

type credState struct {
	users     bucket
	seen      distinct // distinct usernames while the bucket is filled
	att       attempts
	http, wp  bucket
	sshN      int      // SSH attempts since the user bucket started
	preUsers  []string // usernames before the incident opened
	prePaths  []string // login paths before the incident opened
	ep        *episode
	viaSSH    bool
	httpCount int
	web       webLogins // the HTTP half's own state (credential_stuffing_http.go)
}

func newCredentialStuffing(e *Engine) *credentialStuffing {
	d := &credentialStuffing{
		cfg:        e.cfg.CredentialStuffing,
		loginPaths: lowerAll(e.cfg.CredentialStuffing.LoginPaths),
		wpPaths:    lowerAll(e.cfg.CredentialStuffing.WPPaths),
	}
	d.t = newTracker(e, func(s *credState) int64 {
		return e.keepUntil(max(s.users.drainedAt(d.cfg.SSHUsers), s.http.drainedAt(d.cfg.HTTPFailures),
			s.wp.drainedAt(d.cfg.WordPress), s.web.login.drainedAt(d.cfg.LoginPosts)), s.ep)
	})
	return d
}

func (d *credentialStuffing) sweep(now int64) { d.t.sweep(now) }
func (d *credentialStuffing) keys() int       { return d.t.keys() }

func (d *credentialStuffing) handle(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	switch ev.Kind {
	case event.KindSSHFailed:
		if !isAttempt(ev) || !e.reportable(ev.SrcIP) {
			return out
		}
		return d.ssh(e, ev, now, out)
	case event.KindHTTPRequest, event.KindHTTPError:
		return d.web(e, ev, now, out)
	}
	return out
}

func (d *credentialStuffing) ssh(e *Engine, ev *event.Event, now int64, out []incident.Incident) []incident.Incident {
	st := d.t.get(ev.SrcIP, now)
	if !st.att.count(e, ev) {
		return out
	}
	open := d.current(e, st, now)
	if st.users.empty(now, d.cfg.SSHUsers) && open == nil {
		st.seen.reset()
		st.sshN = 0
		st.preUsers = st.preUsers[:0]
	}
	st.sshN++
	fired := false
	// An attempt without a username (a client that gave up before
	// naming one) counts, but is no distinct username.
	if ev.User != "" && st.seen.add(e.hash(ev.User), max(64, 3*d.cfg.SSHUsers.threshold())) {
		fired = st.users.add(now, d.cfg.SSHUsers)
	}
	if open != nil {
		open.count++
		if ev.User != "" {
			addText(&open.inc.Evidence.Users, ev.User)
		}
		return d.publish(e, st, open, now, out)
	}
	if !fired {
		if len(st.preUsers) < incident.MaxList && ev.User != "" {
			st.preUsers = appendDistinct(st.preUsers, ev.User)
		}
		return out
	}
	ep := e.open("credential_stuffing", ev.SrcIP.String(), d.cfg.Severity, d.cfg.SSHUsers.threshold(), st.users.since, now, st.sshN)
	for _, u := range st.preUsers {
		addText(&ep.inc.Evidence.Users, u)
	}
	addText(&ep.inc.Evidence.Users, ev.User)
	st.preUsers, st.ep, st.viaSSH = nil, ep, true
	ep.inc.Title = "Credential stuffing"
	ep.render = func() { d.render(ep, true) }
	return d.publish(e, st, ep, now, out)
}

// current returns the open incident, closing one whose cooldown is over.
func (d *credentialStuffing) current(e *Engine, st *credState, now int64) *episode {
	if st.ep != nil && e.over(st.ep, now) {
		st.ep, st.httpCount = nil, 0
	}
	return st.ep
}

func (d *credentialStuffing) publish(e *Engine, st *credState, ep *episode, now int64, out []incident.Incident) []incident.Incident {
	n := ep.count
	if st.viaSSH {
		n = max(st.seen.len(), len(ep.inc.Evidence.Users))
	}
	return e.publish(ep, now, ep.severity(n), out)
}

func (d *credentialStuffing) render(ep *episode, viaSSH bool) {
	ev := ep.inc.Evidence
	var b strings.Builder
	if viaSSH {
		b.WriteString(plural(ep.count, false, "SSH login attempt"))
		b.WriteString(" with ")
		b.WriteString(plural(len(ev.Users), len(ev.Users) >= incident.MaxList, "distinct username"))
	} else {
		b.WriteString(plural(ep.count, false, "failed web login"))
		b.WriteString(" on ")
		b.WriteString(plural(len(ev.Paths), len(ev.Paths) >= incident.MaxList, "login endpoint"))
	}
	b.WriteString(" in ")
	b.WriteString(span(ep.first, ep.last))
	ep.inc.Summary = b.String()
}
