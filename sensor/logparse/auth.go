package logparse

import (
	"net/netip"
	"strings"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

// Detail values of sshd events (event.Event.Detail).
const (
	DetailInvalidUser     = "invalid_user"     // "Invalid user X from A port P"
	DetailUserNotAllowed  = "user_not_allowed" // "User X from A not allowed because ..."
	DetailRootRefused     = "root_refused"     // "ROOT LOGIN REFUSED FROM A port P"
	DetailFailedPassword  = "failed_password"  // "Failed password for [invalid user ]X from A ..."
	DetailFailedPublickey = "failed_publickey"
	DetailFailedKbdInt    = "failed_keyboard_interactive"
	DetailFailedNone      = "failed_none" // the "none" method: a probe, not a password guess
	DetailFailedOther     = "failed_other"
	DetailPAMFailure      = "pam_failure"    // pam_unix(sshd:auth): authentication failure; ... rhost=A
	DetailMaxAuthTries    = "max_auth_tries" // maximum authentication attempts exceeded / too many authentication failures
	DetailPreauthClose    = "preauth_close"  // connection closed/reset/disconnected before authentication
	// DetailAuthGaveUp: the client left after failing to authenticate
	// ("Received disconnect from A: 14: No supported authentication
	// methods available [preauth]", "...: 3: ...: Auth fail [preauth]").
	DetailAuthGaveUp = "auth_gave_up"
	// DetailUsernameChange: "Disconnecting invalid user X A port P:
	// Change of username or service not allowed" (a client cycling users).
	DetailUsernameChange = "username_change"
	DetailPreauthTimeout = "preauth_timeout" // "fatal: Timeout before authentication for A port P"
	DetailKexFailure     = "kex_failure"     // key exchange, banner or protocol version failures
	DetailNoIdent        = "no_ident"        // did not receive identification string
	DetailAcceptedPass   = "accepted_password"
	DetailAcceptedKey    = "accepted_publickey"
	DetailAcceptedKbdInt = "accepted_keyboard_interactive"
	DetailAcceptedOther  = "accepted_other"
)

// MaxUser caps usernames taken from logs, in bytes (as incident evidence).
const MaxUser = incident.MaxEvidenceString

// pidTableSize bounds the sshd pid -> address table. sshd handles at most
// MaxStartups (default 100) unauthenticated connections at once, so 4,096
// pids is far more than are live at any moment; older entries are dropped
// first.
const pidTableSize = 4096

// Auth parses sshd (sshd, sshd-session, sshd-auth) and PAM lines into
// ssh_failed and ssh_accepted events.
type Auth struct {
	st     stamper
	source string
	pids   pidTable
}

// NewAuth returns an sshd parser whose events have source event.SourceAuthLog
// (journal entries report event.SourceJournald through Header.Source).
func NewAuth(o Options) *Auth {
	return &Auth{st: newStamper(o), source: event.SourceAuthLog, pids: newPidTable(pidTableSize)}
}

// Line parses a syslog line or a bare sshd message (what `sshd -E` writes;
// it takes the time of reading).
func (a *Auth) Line(line string) (event.Event, bool) {
	h, ok := a.st.ParseHeader(line)
	if !ok {
		h = Header{Msg: line}
	}
	return a.Message(h)
}

// Message parses an sshd message. Messages of other programs are ignored.
func (a *Auth) Message(h Header) (event.Event, bool) {
	if h.Prog != "" && !isSSHD(h.Prog) {
		return event.Event{}, false
	}
	m, ok := classifySSHD(h.Msg)
	if !ok {
		return event.Event{}, false
	}
	key := pidKey{host: h.Host, pid: h.PID}
	if m.addr.IsValid() {
		if h.PID != 0 {
			pending := a.pids.put(key, m.addr, m.port)
			if pending && m.user == "" && (m.detail == DetailPreauthClose || m.detail == DetailNoIdent) {
				// "kex_exchange_identification: ..." came first for this
				// pid; this closing line names the address of that probe.
				m.detail = DetailKexFailure
			}
		}
	} else {
		// No address in the line: the sshd pid's earlier line names it.
		if h.PID == 0 {
			return event.Event{}, false
		}
		addr, port, found := a.pids.get(key)
		if !found {
			if m.detail == DetailKexFailure {
				a.pids.markPending(key)
			}
			return event.Event{}, false
		}
		m.addr, m.port = addr, port
	}
	if m.kind == "" { // connection lines only feed the pid table
		return event.Event{}, false
	}
	ev := event.Event{
		TS:      h.TS,
		Kind:    m.kind,
		Source:  a.source,
		SrcIP:   m.addr,
		SrcPort: m.port,
		Detail:  m.detail,
		User:    incident.CleanText(m.user, MaxUser),
	}
	if h.Source != "" {
		ev.Source = h.Source
	}
	if ev.TS.IsZero() {
		ev.TS = a.st.opts.Now().UTC()
	}
	if h.PID > 0 {
		ev.PID = uint32(h.PID)
	}
	if h.Host != "" {
		ev.Host = incident.CleanText(h.Host, incident.MaxHost)
	}
	return ev, true
}

func isSSHD(prog string) bool {
	switch prog {
	case "sshd", "sshd-session", "sshd-auth", "sshd_session":
		return true
	}
	return false
}

// sshdMsg is what one sshd message says.
type sshdMsg struct {
	kind   string // "" for lines that only name a connection (pid table)
	detail string
	user   string
	addr   netip.Addr // invalid when the message has none
	port   uint16
}

// classifySSHD recognises an sshd message. Addresses are read from the
// positions sshd writes them at: where an attacker-chosen username comes
// first, from the right.
func classifySSHD(msg string) (sshdMsg, bool) {
	var m sshdMsg
	preauth := false
	if s, ok := strings.CutSuffix(msg, " [preauth]"); ok {
		msg, preauth = s, true
	}
	if s, ok := strings.CutPrefix(msg, "error: "); ok {
		msg = s
	} else if s, ok := strings.CutPrefix(msg, "fatal: "); ok {
		msg = s
	}
	if len(msg) < 8 {
		return m, false
	}
	switch msg[0] {
	case 'F':
		if rest, ok := strings.CutPrefix(msg, "Failed "); ok {
			method, rest, ok := strings.Cut(rest, " for ")
			if !ok || strings.IndexByte(method, ' ') >= 0 {
				return m, false
			}
			m.kind, m.detail = event.KindSSHFailed, failedDetail(method)
			return userFromAddrPortSSH2(m, rest, true)
		}
	case 'A':
		if rest, ok := strings.CutPrefix(msg, "Accepted "); ok {
			method, rest, ok := strings.Cut(rest, " for ")
			if !ok || strings.IndexByte(method, ' ') >= 0 {
				return m, false
			}
			m.kind, m.detail = event.KindSSHAccepted, acceptedDetail(method)
			return userFromAddrPortSSH2(m, rest, false)
		}
	case 'I':
		if rest, ok := strings.CutPrefix(msg, "Invalid user "); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailInvalidUser
			if head, addr, port, ok := tailAddrPort(rest); ok {
				if user, ok := cutFrom(head); ok {
					m.user, m.addr, m.port = user, addr, port
					return m, true
				}
			}
			// OpenSSH before 7.5: "Invalid user X from A"
			if i := strings.LastIndex(rest, " from "); i >= 0 {
				if addr, ok := parseAddr(rest[i+6:]); ok {
					m.user, m.addr = rest[:i], addr
					return m, true
				}
			}
			return m, false
		}
	case 'U':
		if rest, ok := strings.CutPrefix(msg, "User "); ok {
			// "User X from A not allowed because not listed in AllowUsers"
			i := strings.LastIndex(rest, " not allowed because ")
			if i < 0 {
				return m, false
			}
			rest = rest[:i]
			m.kind, m.detail = event.KindSSHFailed, DetailUserNotAllowed
			if j := strings.LastIndex(rest, " from "); j >= 0 {
				if addr, ok := parseAddr(rest[j+6:]); ok {
					m.user, m.addr = rest[:j], addr
					return m, true
				}
			}
			m.user = rest // "User X not allowed because account is locked"
			return m, true
		}
		if rest, ok := strings.CutPrefix(msg, "Unable to negotiate with "); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailKexFailure
			return leftAddrPort(m, rest)
		}
	case 'p':
		if rest, ok := strings.CutPrefix(msg, "pam_unix(sshd:auth): authentication failure;"); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailPAMFailure
			// "logname= uid=0 euid=0 tty=ssh ruser= rhost=A  user=X": the
			// user comes last, so rhost is read before attacker text.
			i := strings.Index(rest, " rhost=")
			if i < 0 {
				return m, false
			}
			rest = rest[i+7:]
			host, after, _ := strings.Cut(rest, " ")
			if addr, ok := parseAddr(host); ok {
				m.addr = addr
			}
			if j := strings.Index(after, "user="); j >= 0 {
				m.user = after[j+5:]
			}
			return m, true
		}
	case 'P':
		if rest, ok := strings.CutPrefix(msg, "PAM: Authentication failure for "); ok {
			// "PAM: Authentication failure for [illegal user ]X from H"
			m.kind, m.detail = event.KindSSHFailed, DetailPAMFailure
			rest, _ = strings.CutPrefix(rest, "illegal user ")
			i := strings.LastIndex(rest, " from ")
			if i < 0 {
				return m, false
			}
			m.user = rest[:i]
			if addr, ok := parseAddr(rest[i+6:]); ok {
				m.addr = addr
			}
			return m, true
		}
		if rest, ok := strings.CutPrefix(msg, "Protocol major versions differ for "); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailKexFailure
			return leftAddrPort(m, rest)
		}
	case 'm':
		if rest, ok := strings.CutPrefix(msg, "maximum authentication attempts exceeded for "); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailMaxAuthTries
			return userFromAddrPortSSH2(m, rest, true)
		}
	case 'D':
		if rest, ok := strings.CutPrefix(msg, "Disconnecting "); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailMaxAuthTries
			body, ok := strings.CutSuffix(rest, ": Too many authentication failures")
			if !ok {
				return m, false
			}
			return userAddrPort(m, body)
		}
		if rest, ok := strings.CutPrefix(msg, "Disconnecting: Too many authentication failures"); ok {
			// Before OpenSSH 7.x: no address, the pid table names it.
			m.kind, m.detail = event.KindSSHFailed, DetailMaxAuthTries
			if u, ok := strings.CutPrefix(rest, " for "); ok {
				m.user = u
			}
			return m, true
		}
		if rest, ok := strings.CutPrefix(msg, "Disconnected from "); ok {
			if strings.HasPrefix(rest, "user ") {
				// session end of a logged-in user: only the pid table
				_, addr, port, ok := tailAddrPort(rest)
				m.addr, m.port = addr, port
				return m, ok
			}
			m.kind, m.detail = event.KindSSHFailed, DetailPreauthClose
			return userAddrPort(m, rest)
		}
		if rest, ok := strings.CutPrefix(msg, "Did not receive identification string from "); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailNoIdent
			if _, addr, port, ok := tailAddrPort(rest); ok {
				m.addr, m.port = addr, port
				return m, true
			}
			addr, ok := parseAddr(rest)
			m.addr = addr
			return m, ok
		}
	case 'C':
		if rest, ok := strings.CutPrefix(msg, "Connection closed by "); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailPreauthClose
			return userAddrPort(m, rest)
		}
		if rest, ok := strings.CutPrefix(msg, "Connection reset by "); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailPreauthClose
			return userAddrPort(m, rest)
		}
		if rest, ok := strings.CutPrefix(msg, "Connection from "); ok {
			// "Connection from A port P on B port Q" (LogLevel VERBOSE):
			// names the connection of this pid, no event by itself.
			return leftAddrPort(m, rest)
		}
	case 'R':
		if rest, ok := strings.CutPrefix(msg, "Received disconnect from "); ok {
			// "Received disconnect from A port P:11: <client text>": the
			// client's text comes after the address.
			if preauth {
				m.kind, m.detail = event.KindSSHFailed, DetailPreauthClose
			}
			return leftAddrPort(m, rest)
		}
	case 'k':
		if strings.HasPrefix(msg, "kex_exchange_identification: ") {
			m.kind, m.detail = event.KindSSHFailed, DetailKexFailure
			return m, true
		}
	case 'b':
		if rest, ok := strings.CutPrefix(msg, "banner exchange: Connection from "); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailKexFailure
			return leftAddrPort(m, rest)
		}
	case 'B':
		if rest, ok := strings.CutPrefix(msg, "Bad protocol version identification "); ok {
			// "... '<client text>' from A port P": from the right.
			m.kind, m.detail = event.KindSSHFailed, DetailKexFailure
			if _, addr, port, ok := tailAddrPort(rest); ok {
				m.addr, m.port = addr, port
				return m, true
			}
			return m, false
		}
	case 's':
		if rest, ok := strings.CutPrefix(msg, "ssh_dispatch_run_fatal: Connection from "); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailKexFailure
			if strings.HasPrefix(rest, "authenticating user ") || strings.HasPrefix(rest, "invalid user ") {
				// "... from invalid user X A port P: <reason>"
				i := strings.LastIndex(rest, ": ")
				for i > 0 {
					if _, _, _, ok := tailAddrPort(rest[:i]); ok {
						break
					}
					i = strings.LastIndex(rest[:i], ": ")
				}
				if i <= 0 {
					return m, false
				}
				return userAddrPort(m, rest[:i])
			}
			return leftAddrPort(m, rest)
		}
	case 'T':
		if rest, ok := strings.CutPrefix(msg, "Timeout before authentication for "); ok {
			m.kind, m.detail = event.KindSSHFailed, DetailPreauthClose
			return leftAddrPort(m, rest)
		}
	}
	return m, false
}

// userFromAddrPortSSH2 reads "[invalid user ]X from A port P ssh2[: ...]".
func userFromAddrPortSSH2(m sshdMsg, rest string, invalidPrefix bool) (sshdMsg, bool) {
	if invalidPrefix {
		rest, _ = strings.CutPrefix(rest, "invalid user ")
	}
	body, ok := strings.CutSuffix(rest, " ssh2")
	if !ok {
		// "... ssh2: RSA SHA256:..." (publickey): the key type and
		// fingerprint come after; sshd computes them.
		i := strings.LastIndex(rest, " ssh2: ")
		if i < 0 || strings.Contains(rest[i+7:], " port ") {
			// OpenSSH without the protocol suffix
			body = rest
		} else {
			body = rest[:i]
		}
	}
	head, addr, port, ok := tailAddrPort(body)
	if !ok {
		return m, false
	}
	user, ok := cutFrom(head)
	if !ok {
		return m, false
	}
	m.user, m.addr, m.port = user, addr, port
	return m, true
}

// userAddrPort reads "[authenticating user |invalid user ]X A port P" or
// "A port P".
func userAddrPort(m sshdMsg, rest string) (sshdMsg, bool) {
	head, addr, port, ok := tailAddrPort(rest)
	if !ok {
		return m, false
	}
	switch {
	case head == "":
	case strings.HasPrefix(head, "authenticating user "):
		m.user = head[len("authenticating user "):]
	case strings.HasPrefix(head, "invalid user "):
		m.user = head[len("invalid user "):]
	case head == "authenticating user" || head == "invalid user":
	default:
		return m, false
	}
	m.addr, m.port = addr, port
	return m, true
}

// leftAddrPort reads "A port P" at the start of rest, followed by the end,
// ':' or ' '. Used where sshd writes the address before any client text.
func leftAddrPort(m sshdMsg, rest string) (sshdMsg, bool) {
	sp := strings.IndexByte(rest, ' ')
	if sp < 0 {
		return m, false
	}
	addr, ok := parseAddr(rest[:sp])
	if !ok {
		return m, false
	}
	rest, ok = strings.CutPrefix(rest[sp:], " port ")
	if !ok {
		return m, false
	}
	n := 0
	for n < len(rest) && n < 6 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 5 || (n < len(rest) && rest[n] != ':' && rest[n] != ' ' && rest[n] != ',') {
		return m, false
	}
	p := atoi(rest[:n])
	if p > 65535 {
		return m, false
	}
	m.addr, m.port = addr, uint16(p)
	return m, true
}

// tailAddrPort reads "<head> A port P" from the right: P must end s and A
// is the token before " port ". head is everything before A, without the
// separating space.
func tailAddrPort(s string) (head string, addr netip.Addr, port uint16, ok bool) {
	i := strings.LastIndex(s, " port ")
	if i < 0 {
		return "", addr, 0, false
	}
	ps := s[i+6:]
	if len(ps) == 0 || len(ps) > 5 || !allDigits(ps) {
		return "", addr, 0, false
	}
	p := atoi(ps)
	if p > 65535 {
		return "", addr, 0, false
	}
	left := s[:i]
	j := strings.LastIndexByte(left, ' ')
	a := left[j+1:]
	addr, ok = parseAddr(a)
	if !ok {
		return "", addr, 0, false
	}
	if j < 0 {
		return "", addr, uint16(p), true
	}
	return left[:j], addr, uint16(p), true
}

// cutFrom removes the " from" that separates a username from the address.
func cutFrom(head string) (string, bool) {
	if head == "from" {
		return "", true
	}
	return strings.CutSuffix(head, " from")
}

// parseAddr parses an IPv4 or IPv6 address as sshd writes it; a zone id is
// dropped and a v4-mapped address becomes IPv4. Host names are refused,
// never resolved.
func parseAddr(s string) (netip.Addr, bool) {
	if len(s) < 2 || len(s) > 64 {
		return netip.Addr{}, false
	}
	if s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

func failedDetail(method string) string {
	switch method {
	case "password":
		return DetailFailedPassword
	case "publickey":
		return DetailFailedPublickey
	case "keyboard-interactive/pam", "keyboard-interactive":
		return DetailFailedKbdInt
	case "none":
		return DetailFailedNone
	}
	return DetailFailedOther
}

func acceptedDetail(method string) string {
	switch method {
	case "password":
		return DetailAcceptedPass
	case "publickey":
		return DetailAcceptedKey
	case "keyboard-interactive/pam", "keyboard-interactive":
		return DetailAcceptedKbdInt
	}
	return DetailAcceptedOther
}

// pidKey names one sshd process of one host.
type pidKey struct {
	host string
	pid  int
}

type pidEntry struct {
	addr    netip.Addr
	port    uint16
	pending bool // a kex failure without address waits for the closing line
}

// pidTable remembers the address of each sshd pid's connection, bounded:
// the oldest pid is forgotten first.
type pidTable struct {
	m    map[pidKey]pidEntry
	ring []pidKey
	next int
}

func newPidTable(n int) pidTable {
	return pidTable{m: make(map[pidKey]pidEntry), ring: make([]pidKey, n)}
}

func (t *pidTable) add(k pidKey, e pidEntry) {
	if _, ok := t.m[k]; !ok {
		if old := t.ring[t.next]; old.pid != 0 {
			delete(t.m, old)
		}
		t.ring[t.next] = k
		t.next = (t.next + 1) % len(t.ring)
	}
	t.m[k] = e
}

// put records the address of pid k and reports whether a kex failure of
// that pid was waiting for it.
func (t *pidTable) put(k pidKey, a netip.Addr, port uint16) bool {
	old, ok := t.m[k]
	if ok && old.addr == a && old.port == port && !old.pending {
		return false
	}
	t.add(k, pidEntry{addr: a, port: port})
	return ok && old.pending
}

func (t *pidTable) get(k pidKey) (netip.Addr, uint16, bool) {
	e, ok := t.m[k]
	if !ok || !e.addr.IsValid() {
		return netip.Addr{}, 0, false
	}
	return e.addr, e.port, true
}

func (t *pidTable) markPending(k pidKey) {
	t.add(k, pidEntry{pending: true})
}
