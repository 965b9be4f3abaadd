package detect

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// This file holds the explain methods of the detectors whose files have no
// other owner, and the helpers every explain method uses. They only read
// state (see explainer in engine.go).

// level is the bucket's level at now, without leaking it (explain must
// not change state).
func (b *bucket) levelAt(now int64, c Bucket) int {
	if b.level == 0 || now <= b.last {
		return int(b.level)
	}
	k := (now - b.last) / int64(c.Leak)
	if k >= int64(b.level) {
		return 0
	}
	return int(b.level) - int(k)
}

// bucketNote says "fast 3/6" for a bucket that fires on its 6th unit.
func bucketNote(name string, b *bucket, c Bucket, now int64) string {
	return name + " " + strconv.Itoa(b.levelAt(now, c)) + "/" + strconv.Itoa(c.threshold())
}

// episodeNote says what an open incident looks like after the event.
func episodeNote(ep *episode, now int64, e *Engine) string {
	if ep == nil || e.over(ep, now) {
		return ""
	}
	return "open incident " + ep.inc.ID + " (" + string(ep.inc.Severity) + ", count " + strconv.Itoa(ep.count) + ")"
}

// notes joins the non-empty parts of a note.
func notes(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p)
	}
	if b.Len() == 0 {
		return "no state"
	}
	return b.String()
}

func (d *c2Connect) explain(e *Engine, ev *event.Event) string {
	if e.lists == nil {
		return "ignored: no threat lists loaded"
	}
	if !e.reportable(ev.DstIP) {
		return "ignored: destination " + ev.DstIP.String() + " is private, special or allow-listed"
	}
	lists := e.lists.Match(ev.DstIP)
	if len(lists) == 0 {
		return "destination " + ev.DstIP.String() + " is on no threat list"
	}
	st := d.t.peek(ev.DstIP)
	if st == nil {
		return "on " + strings.Join(lists, ", ")
	}
	return notes("on "+strings.Join(lists, ", "), episodeNote(st.ep, ev.TS.UnixNano(), e))
}

func (d *suspiciousExec) explain(e *Engine, ev *event.Event) string {
	if !d.shells[shellName(ev)] {
		return "ignored: " + strconv.Quote(shellName(ev)) + " is not a shell"
	}
	if !d.parent(ev.ParentComm) {
		return "ignored: parent " + strconv.Quote(ev.ParentComm) + " is not a server process"
	}
	ep := d.m[incident.CleanText(ev.ParentComm, 64)]
	return notes("a shell started by "+strconv.Quote(ev.ParentComm), episodeNote(ep, ev.TS.UnixNano(), e))
}

// ignoredAddr explains why an address is not reported, or "".
func ignoredAddr(e *Engine, a netip.Addr) string {
	if e.reportable(a) {
		return ""
	}
	if !a.IsValid() {
		return "ignored: no address"
	}
	if Special(a) && !e.cfg.IncludePrivate {
		return "ignored: " + a.String() + " is private or special (--include-private counts it)"
	}
	return "ignored: " + a.String() + " is on the allow list"
}

func (d *sshBruteforce) explain(e *Engine, ev *event.Event) string {
	st, why := peekAttempt(e, d.t, ev)
	if st == nil {
		return why
	}
	now := ev.TS.UnixNano()
	return notes(bucketNote("fast", &st.fast, d.cfg.Fast, now), bucketNote("slow", &st.slow, d.cfg.Slow, now),
		episodeNote(st.ep, now, e))
}

func (d *credentialStuffing) explain(e *Engine, ev *event.Event) string {
	st, why := peekAttempt(e, d.t, ev)
	if st == nil {
		return why
	}
	now := ev.TS.UnixNano()
	c := d.cfg
	if ev.Kind == event.KindSSHFailed {
		return notes(bucketNote("distinct users", &st.users, c.SSHUsers, now), episodeNote(st.ep, now, e))
	}
	return notes(bucketNote("login posts", &st.web.login, c.LoginPosts, now),
		bucketNote("failed logins", &st.http, c.HTTPFailures, now),
		bucketNote("wordpress", &st.wp, c.WordPress, now), episodeNote(st.ep, now, e))
}

func (d *sshProbe) explain(e *Engine, ev *event.Event) string {
	if _, probe := probeKind(ev); !probe {
		return "ignored: " + detailOr(ev) + " is not a probe"
	}
	st, why := peekState(e, d.t, ev.SrcIP)
	if st == nil {
		return why
	}
	now := ev.TS.UnixNano()
	auth := ""
	if st.lastAuth != 0 && now-st.lastAuth <= int64(d.cfg.AfterAuth) {
		auth = "the address authenticated recently: its closes are not probes"
	}
	return notes(bucketNote("probes", &st.probes, d.cfg.Probes, now), auth, episodeNote(st.ep, now, e))
}

func (d *sshTimeoutStorm) explain(e *Engine, ev *event.Event) string {
	if ev.Detail != logparse.DetailPreauthTimeout {
		return "ignored: " + detailOr(ev) + " is not a pre-auth timeout"
	}
	st, why := peekState(e, d.t, ev.SrcIP)
	if st == nil {
		return why
	}
	now := ev.TS.UnixNano()
	return notes(bucketNote("timeouts", &st.timeouts, d.cfg.Timeouts, now), episodeNote(st.ep, now, e))
}

func (d *portScan) explain(e *Engine, ev *event.Event) string {
	if ev.DstPort == 0 {
		return "ignored: no destination port"
	}
	st, why := peekState(e, d.t, ev.SrcIP)
	if st == nil {
		return why
	}
	now := ev.TS.UnixNano()
	return notes(bucketNote("distinct ports", &st.ports, d.cfg.Ports, now), episodeNote(st.ep, now, e))
}

// peekState returns a's state in t, or nil and why there is none to show:
// the address is not reported, or nothing was counted for it yet.
func peekState[S any](e *Engine, t *tracker[S], a netip.Addr) (*S, string) {
	if why := ignoredAddr(e, a); why != "" {
		return nil, why
	}
	if st := t.peek(a); st != nil {
		return st, ""
	}
	return nil, "no state"
}

// peekAttempt is peekState for the detectors that count login attempts: a
// failed-login line that is no authentication attempt is ignored first.
func peekAttempt[S any](e *Engine, t *tracker[S], ev *event.Event) (*S, string) {
	if ev.Kind == event.KindSSHFailed && !isAttempt(ev) {
		return nil, "ignored: " + detailOr(ev) + " is not an authentication attempt"
	}
	return peekState(e, t, ev.SrcIP)
}

// detailOr names an event's detail, or its kind when it has none.
func detailOr(ev *event.Event) string {
	if ev.Detail != "" {
		return ev.Detail
	}
	return ev.Kind
}
