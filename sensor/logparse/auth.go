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
	DetailPreauthTimeout = "preauth_timeout" // "fatal: Timeout before authentication for A port P", LoginGraceTime
	DetailKexFailure     = "kex_failure"     // key exchange, banner or protocol version failures
	DetailNoIdent        = "no_ident"        // did not receive identification string
	// DetailConnDropped: the listener dropped the connection ("drop
	// connection #N from [A]:P ... past MaxStartups", or a
	// PerSourcePenalties penalty other than LoginGraceTime).
	DetailConnDropped = "conn_dropped"
	// DetailRefusedConnect: sshd built with libwrap refused a host listed
	// in hosts.deny ("refused connect from X (A)").
	DetailRefusedConnect = "refused_connect"
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

// hostile starts a hostile (ssh_failed) message with detail d.
func hostile(d string) sshdMsg { return sshdMsg{kind: event.KindSSHFailed, detail: d} }

// connLine is a message that only names its connection's address: it
// feeds the pid table and raises no event.
func connLine(a netip.Addr, port uint16) (sshdMsg, bool) {
	return sshdMsg{addr: a, port: port}, true
}

// sshdRule is one form of sshd message: the text it starts with, once an
// "error: " or "fatal: " prefix and a " [preauth]" suffix are taken off,
// and the function that reads the rest. preauth says whether the suffix
// was there: sshd adds it to what its unauthenticated child logs.
type sshdRule struct {
	prefix string
	parse  func(rest string, preauth bool) (sshdMsg, bool)
}

// sshdRules are the sshd messages the parser knows, as OpenSSH writes them
// (auth.c, auth2.c, auth-pam.c, packet.c, kex.c, sshd.c, sshd-session.c)
// and as older releases wrote them. To recognise another line, add a row
// and a case to TestAuthMessages. Rows are tried in order among those
// sharing a first byte, so a prefix that starts another must come first;
// a row whose parse function refuses the line lets the next row try.
var sshdRules = []sshdRule{
	// Authentication results and refusals.
	{"Failed ", parseFailed},     // Failed password for [invalid user ]X from A port P ssh2
	{"Accepted ", parseAccepted}, // Accepted publickey for X from A port P ssh2: ED25519 SHA256:...
	{"Invalid user ", parseInvalidUser},
	{"Illegal user ", parseInvalidUser}, // OpenSSH 3.x
	{"User not known to the underlying authentication module for ", parsePAMFor},
	{"User ", parseUserNotAllowed}, // User X from A not allowed because ...
	{"ROOT LOGIN REFUSED FROM ", parseRootRefused},
	{"refused connect from ", parseRefusedConnect}, // libwrap: refused connect from X (A)
	{"maximum authentication attempts exceeded for ", parseMaxAuthTries},
	// PAM, through sshd.
	{"pam_", parsePAMModule}, // pam_unix(sshd:auth): authentication failure; ... rhost=A  user=X
	{"PAM: ", parsePAM},      // PAM: Authentication failure for X from A
	{"Authentication ", parsePAMAuth},
	{"authentication ", parsePAMAuth},
	// The client leaving, or sshd closing, before authentication.
	{"Disconnecting: ", parseDisconnectingNoAddr},
	{"Disconnecting ", parseDisconnecting},
	{"Disconnected from ", parseDisconnected},
	{"Connection closed by ", parseClosed},
	{"Connection reset by ", parseClosed},
	{"Connection from ", parseConnectionFrom}, // LogLevel VERBOSE: names the connection
	{"Received disconnect from ", parseReceivedDisconnect},
	{"Read from socket failed: ", parseReadFailed},
	{"Timeout before authentication for ", parseTimeout},
	{"drop connection #", parseDropConnection}, // MaxStartups, PerSourcePenalties
	// Scanners: no identification, bad banners, failed key exchange.
	{"Did not receive identification string from ", parseNoIdent},
	{"kex_exchange_identification: ", kexNoAddr},
	{"banner exchange: Connection from ", kexLeftAddr},
	{"Bad protocol version identification ", parseBadProtocol},
	{"Protocol major versions differ for ", kexLeftAddr},
	{"Unable to negotiate with ", kexLeftAddr},
	{"Unable to negotiate a ", kexNoAddr}, // before OpenSSH 7.x: no address
	{"no matching ", kexNoAddr},           // "no matching mac found: client ... server ..."
	{"ssh_dispatch_run_fatal: Connection from ", parseDispatchFatal},
	{"SSH: Server;Ltype: ", parseLtype}, // some vendor builds: names the connection
}

// sshdByFirstByte indexes sshdRules by the first byte of their prefix, so
// a message is compared with the few rules that can match it. It is built
// once and never changed.
var sshdByFirstByte = func() (t [256][]sshdRule) {
	for _, r := range sshdRules {
		t[r.prefix[0]] = append(t[r.prefix[0]], r)
	}
	return t
}()

// classifySSHD recognises an sshd message. Addresses are read from the
// positions sshd writes them at: where an attacker-chosen username or
// client text comes first, from the right.
func classifySSHD(msg string) (sshdMsg, bool) {
	// Trailing blanks, and the CR of "\r\n" that sshd writes to stderr
	// and -E files when a reader left it.
	for len(msg) > 0 && (msg[len(msg)-1] == ' ' || msg[len(msg)-1] == '\r') {
		msg = msg[:len(msg)-1]
	}
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
		return sshdMsg{}, false
	}
	for _, r := range sshdByFirstByte[msg[0]] {
		if rest, ok := strings.CutPrefix(msg, r.prefix); ok {
			if m, ok := r.parse(rest, preauth); ok {
				return m, true
			}
		}
	}
	return sshdMsg{}, false
}

// parseFailed reads "Failed METHOD for [invalid user ]X from A port P ssh2[: INFO]".
func parseFailed(rest string, _ bool) (sshdMsg, bool) {
	method, rest, ok := strings.Cut(rest, " for ")
	if !ok || method == "" || strings.IndexByte(method, ' ') >= 0 {
		return sshdMsg{}, false
	}
	rest, _ = strings.CutPrefix(rest, "invalid user ")
	return authResult(hostile(failedDetail(method)), rest)
}

// parseAccepted reads "Accepted METHOD for X from A port P ssh2[: INFO]".
func parseAccepted(rest string, _ bool) (sshdMsg, bool) {
	method, rest, ok := strings.Cut(rest, " for ")
	if !ok || method == "" || strings.IndexByte(method, ' ') >= 0 {
		return sshdMsg{}, false
	}
	return authResult(sshdMsg{kind: event.KindSSHAccepted, detail: acceptedDetail(method)}, rest)
}

// parseMaxAuthTries reads "maximum authentication attempts exceeded for
// [invalid user ]X from A port P ssh2".
func parseMaxAuthTries(rest string, _ bool) (sshdMsg, bool) {
	rest, _ = strings.CutPrefix(rest, "invalid user ")
	return authResult(hostile(DetailMaxAuthTries), rest)
}

// authResult reads "X from A port P ssh2[: INFO]" (auth.c auth_log). The
// user X is the client's choice, so A and P are read from the right. INFO
// (the key of publickey and hostbased, the ruser of SSH-1) follows ": "
// and may hold client text too (a certificate's key id, a hostbased
// client user); without it the line ends with the port, else it is cut at
// the last " ssh2: " that follows an address and port. The oldest
// releases wrote no port.
func authResult(m sshdMsg, rest string) (sshdMsg, bool) {
	body := rest
	if s, ok := strings.CutSuffix(body, " ssh2"); ok {
		body = s
	} else if s, ok := strings.CutSuffix(body, " ssh1"); ok {
		body = s
	}
	if user, a, p, ok := userFromAddrPort(body); ok {
		m.user, m.addr, m.port = user, a, p
		return m, true
	}
	for end := len(rest); ; {
		i := max(strings.LastIndex(rest[:end], " ssh2: "), strings.LastIndex(rest[:end], " ssh1: "))
		if i < 0 {
			break
		}
		if user, a, p, ok := userFromAddrPort(rest[:i]); ok {
			m.user, m.addr, m.port = user, a, p
			return m, true
		}
		end = i
	}
	if user, a, ok := userFromAddr(rest); ok {
		m.user, m.addr = user, a
		return m, true
	}
	return m, false
}

// parseInvalidUser reads "Invalid user X from A port P", or "Invalid
// user X from A" (OpenSSH before 7.5).
func parseInvalidUser(rest string, _ bool) (sshdMsg, bool) {
	m := hostile(DetailInvalidUser)
	if user, a, p, ok := userFromAddrPort(rest); ok {
		m.user, m.addr, m.port = user, a, p
		return m, true
	}
	if user, a, ok := userFromAddr(rest); ok {
		m.user, m.addr = user, a
		return m, true
	}
	return m, false
}

// parseUserNotAllowed reads "User X from H not allowed because REASON"
// (auth.c allowed_user). X is an existing account and REASON sshd's own
// text; H is the address, or a host name (UseDNS) that the pid table
// turns into the address. "User X not allowed because account is locked"
// names no host at all.
func parseUserNotAllowed(rest string, _ bool) (sshdMsg, bool) {
	i := strings.LastIndex(rest, " not allowed because ")
	if i < 0 {
		return sshdMsg{}, false
	}
	rest = rest[:i]
	m := hostile(DetailUserNotAllowed)
	if j := strings.LastIndex(rest, " from "); j >= 0 {
		m.user = rest[:j]
		m.addr, _ = parseAddr(rest[j+6:])
		return m, true
	}
	m.user = rest
	return m, true
}

// parseRootRefused reads "ROOT LOGIN REFUSED FROM A[ port P]" (auth.c,
// PermitRootLogin no).
func parseRootRefused(rest string, _ bool) (sshdMsg, bool) {
	a, p, _, ok := leftAddr(rest)
	if !ok {
		return sshdMsg{}, false
	}
	m := hostile(DetailRootRefused)
	m.user, m.addr, m.port = "root", a, p
	return m, true
}

// parseRefusedConnect reads "refused connect from X (A)": sshd built with
// libwrap refusing a host of hosts.deny. X may hold an ident user name;
// the address in parentheses ends the line.
func parseRefusedConnect(rest string, _ bool) (sshdMsg, bool) {
	body, ok := strings.CutSuffix(rest, ")")
	i := strings.LastIndex(body, "(")
	if !ok || i < 0 {
		return sshdMsg{}, false
	}
	a, ok := parseAddr(body[i+1:])
	if !ok {
		return sshdMsg{}, false
	}
	m := hostile(DetailRefusedConnect)
	m.addr = a
	return m, true
}

// parsePAMModule reads "pam_MODULE(sshd:auth): authentication failure;
// logname= uid=0 euid=0 tty=ssh ruser= rhost=H  user=X". H is the address
// or a host name (then the pid table names the address); the user comes
// last, after rhost.
func parsePAMModule(rest string, _ bool) (sshdMsg, bool) {
	mod, rest, ok := strings.Cut(rest, "(sshd:auth): authentication failure;")
	if !ok || mod == "" || strings.ContainsAny(mod, " ()") {
		return sshdMsg{}, false
	}
	i := strings.Index(rest, " rhost=")
	if i < 0 {
		return sshdMsg{}, false
	}
	m := hostile(DetailPAMFailure)
	host, after, _ := strings.Cut(rest[i+7:], " ")
	m.addr, _ = parseAddr(host)
	if j := strings.Index(after, "user="); j >= 0 {
		m.user = after[j+5:]
	} else if j := strings.Index(rest[:i], "ruser="); j >= 0 {
		m.user = rest[j+6 : i]
	}
	return m, true
}

// parsePAM reads the failures sshd's PAM code logs after "PAM: ".
func parsePAM(rest string, _ bool) (sshdMsg, bool) {
	if s, ok := strings.CutPrefix(rest, "Authentication "); ok {
		return parsePAMAuth(s, false)
	}
	if s, ok := strings.CutPrefix(rest, "authentication "); ok {
		return parsePAMAuth(s, false)
	}
	if s, ok := strings.CutPrefix(rest, "unknown user for "); ok {
		return parsePAMFor(s, false)
	}
	if s, ok := strings.CutPrefix(rest, "User not known to the underlying authentication module for "); ok {
		return parsePAMFor(s, false)
	}
	return sshdMsg{}, false
}

// parsePAMAuth reads what follows "[PAM: ]Authentication ": "failure for",
// "error for" or "failed for", then the user and host.
func parsePAMAuth(rest string, _ bool) (sshdMsg, bool) {
	for _, w := range [...]string{"failure for ", "error for ", "failed for "} {
		if s, ok := strings.CutPrefix(rest, w); ok {
			return parsePAMFor(s, false)
		}
	}
	return sshdMsg{}, false
}

// parsePAMFor reads "[illegal user |invalid user ]X from H[ via L]": the
// host comes after the user, and macOS adds the local address L.
func parsePAMFor(rest string, _ bool) (sshdMsg, bool) {
	if s, ok := strings.CutPrefix(rest, "illegal user "); ok {
		rest = s
	} else if s, ok := strings.CutPrefix(rest, "invalid user "); ok {
		rest = s
	}
	if i := strings.LastIndex(rest, " via "); i >= 0 && strings.IndexByte(rest[i+5:], ' ') < 0 {
		rest = rest[:i]
	}
	i := strings.LastIndex(rest, " from ")
	if i < 0 {
		return sshdMsg{}, false
	}
	m := hostile(DetailPAMFailure)
	m.user = rest[:i]
	m.addr, _ = parseAddr(rest[i+6:])
	return m, true
}

// parseDisconnectingNoAddr reads the forms without a connection id that
// releases before 7.x wrote; the pid table names the address.
func parseDisconnectingNoAddr(rest string, _ bool) (sshdMsg, bool) {
	if s, ok := strings.CutPrefix(rest, "Too many authentication failures"); ok {
		m := hostile(DetailMaxAuthTries)
		m.user, _ = strings.CutPrefix(s, " for ")
		return m, true
	}
	if strings.HasPrefix(rest, "Change of username or service not allowed: ") {
		return hostile(DetailUsernameChange), true
	}
	return sshdMsg{}, false
}

// changeOfUser is what sshd writes after the connection id when a client
// switches users within one connection (auth2.c), followed by
// "OLDUSER,SERVICE) -> (NEWUSER,SERVICE)".
const changeOfUser = ": Change of username or service not allowed: ("

// parseDisconnecting reads "Disconnecting CONN: REASON" (packet.c,
// REASON cut at 100 bytes) for the reasons that mean a failed
// authentication.
func parseDisconnecting(rest string, _ bool) (sshdMsg, bool) {
	if body, ok := strings.CutSuffix(rest, ": Too many authentication failures"); ok {
		who, user, a, p, ok := connID(body)
		if !ok || who == connUser {
			return sshdMsg{}, false
		}
		m := hostile(DetailMaxAuthTries)
		m.user, m.addr, m.port = user, a, p
		return m, true
	}
	// The old user appears in the connection id and again in the reason,
	// both the client's text. Only a split where they agree is sshd's;
	// if several do, the line is ambiguous and the pid table names the
	// address instead.
	m := hostile(DetailUsernameChange)
	n := 0
	for off := 0; off < len(rest); {
		i := strings.Index(rest[off:], changeOfUser)
		if i < 0 {
			break
		}
		i += off
		off = i + 1
		who, user, a, p, ok := connID(rest[:i])
		if !ok || who == connUser || !reasonNamesUser(rest[i+len(changeOfUser):], user) {
			continue
		}
		if n > 0 && (a != m.addr || p != m.port) {
			m.user, m.addr, m.port = user, netip.Addr{}, 0
			return m, true
		}
		m.user, m.addr, m.port = user, a, p
		n++
	}
	return m, n > 0
}

// reasonNamesUser reports whether the "Change of username" reason starts
// with "user,", allowing for sshd's cut at 100 bytes.
func reasonNamesUser(reason, user string) bool {
	if len(reason) <= len(user) {
		return strings.HasPrefix(user, reason)
	}
	return strings.HasPrefix(reason, user) && reason[len(user)] == ','
}

// parseDisconnected reads "Disconnected from CONN" (packet.c): the client
// left. Before authentication (a user being authenticated, or
// [preauth]) it is hostile; "Disconnected from user X A port P" and the
// plain form without [preauth] are the end of a session.
func parseDisconnected(rest string, preauth bool) (sshdMsg, bool) {
	who, user, a, p, ok := connID(rest)
	if !ok {
		return sshdMsg{}, false
	}
	if who == connUser || (who == connPlain && !preauth) {
		return connLine(a, p)
	}
	m := hostile(DetailPreauthClose)
	m.user, m.addr, m.port = user, a, p
	return m, true
}

// parseClosed reads "Connection closed by CONN" and "Connection reset by
// CONN" (packet.c). Without a user and without [preauth] it is a
// connection that never finished its banner exchange (OpenSSH 7.x and
// later); releases before wrote no port ("Connection closed by A"), and
// there only [preauth] marks a close before authentication.
func parseClosed(rest string, preauth bool) (sshdMsg, bool) {
	m := hostile(DetailPreauthClose)
	if who, user, a, p, ok := connID(rest); ok {
		if who == connUser {
			return connLine(a, p)
		}
		m.user, m.addr, m.port = user, a, p
		return m, true
	}
	a, ok := parseAddr(rest)
	if !ok {
		return sshdMsg{}, false
	}
	if !preauth {
		return connLine(a, 0)
	}
	m.addr = a
	return m, true
}

// parseConnectionFrom reads "Connection from A port P on B port Q"
// (LogLevel VERBOSE): it names the connection of this pid.
func parseConnectionFrom(rest string, _ bool) (sshdMsg, bool) {
	a, p, _, ok := leftAddr(rest)
	if !ok {
		return sshdMsg{}, false
	}
	return connLine(a, p)
}

// Disconnect reason codes of RFC 4253 that mean the client gave up on
// authentication.
const disconnectNoMoreAuthMethods = 14 // SSH2_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE

// parseReceivedDisconnect reads "Received disconnect from A port P:CODE:
// TEXT" (OpenSSH 7.x and later) or "Received disconnect from A: CODE:
// TEXT" (before); TEXT is the client's. Code 14 ("No supported
// authentication methods available") or a TEXT ending in "Auth fail"
// (JSch) is a client that failed to authenticate; any other code is a
// close before authentication when [preauth] says so, and the end of a
// session otherwise.
func parseReceivedDisconnect(rest string, preauth bool) (sshdMsg, bool) {
	a, p, after, ok := leftAddr(rest)
	if !ok {
		return sshdMsg{}, false
	}
	after, _ = strings.CutPrefix(after, ":")
	after, _ = strings.CutPrefix(after, " ")
	n := 0
	for n < len(after) && n < 4 && after[n] >= '0' && after[n] <= '9' {
		n++
	}
	if n == 0 || n >= len(after) || after[n] != ':' {
		return sshdMsg{}, false
	}
	code, text := atoi(after[:n]), after[n+1:]
	var m sshdMsg
	switch {
	case code == disconnectNoMoreAuthMethods || strings.HasSuffix(text, "Auth fail"):
		m = hostile(DetailAuthGaveUp)
	case preauth:
		m = hostile(DetailPreauthClose)
	}
	m.addr, m.port = a, p
	return m, true
}

// parseReadFailed reads "Read from socket failed: Connection reset by
// peer [preauth]" (releases before 7.x): the pid table names the address.
func parseReadFailed(rest string, preauth bool) (sshdMsg, bool) {
	if !preauth || !strings.HasPrefix(rest, "Connection reset by peer") {
		return sshdMsg{}, false
	}
	return hostile(DetailPreauthClose), true
}

// parseTimeout reads "Timeout before authentication for A port P" (the
// LoginGraceTime alarm of the session process; the pattern of
// CVE-2024-6387 exploits, which hold many connections until it fires) and
// "Timeout before authentication for connection from A to B, pid = N"
// (the listener, OpenSSH 9.8 and later).
func parseTimeout(rest string, _ bool) (sshdMsg, bool) {
	rest, _ = strings.CutPrefix(rest, "connection from ")
	a, p, _, ok := leftAddr(rest)
	if !ok {
		return sshdMsg{}, false
	}
	m := hostile(DetailPreauthTimeout)
	m.addr, m.port = a, p
	return m, true
}

// parseDropConnection reads "drop connection #N from [A]:P on [B]:Q
// REASON" (sshd.c): the listener refused a connection, past MaxStartups
// or for a source penalty (PerSourcePenalties, OpenSSH 9.8 and later).
// A penalty for "exceeded LoginGraceTime" is the timeout pattern again.
func parseDropConnection(rest string, _ bool) (sshdMsg, bool) {
	_, rest, ok := strings.Cut(rest, " from [")
	if !ok {
		return sshdMsg{}, false
	}
	as, rest, ok := strings.Cut(rest, "]:")
	if !ok {
		return sshdMsg{}, false
	}
	a, ok := parseAddr(as)
	if !ok {
		return sshdMsg{}, false
	}
	ps, reason, _ := strings.Cut(rest, " ")
	p, ok := parsePort(ps)
	if !ok {
		return sshdMsg{}, false
	}
	m := hostile(DetailConnDropped)
	if strings.Contains(reason, "LoginGraceTime") {
		m.detail = DetailPreauthTimeout
	}
	m.addr, m.port = a, p
	return m, true
}

// parseNoIdent reads "Did not receive identification string from A[ port
// P]": a connection that sent nothing.
func parseNoIdent(rest string, _ bool) (sshdMsg, bool) {
	a, p, _, ok := leftAddr(rest)
	if !ok {
		return sshdMsg{}, false
	}
	m := hostile(DetailNoIdent)
	m.addr, m.port = a, p
	return m, true
}

// kexNoAddr is a key exchange failure whose line names no address
// ("kex_exchange_identification: Connection closed by remote host"): the
// pid table names it, or the closing line that follows.
func kexNoAddr(string, bool) (sshdMsg, bool) { return hostile(DetailKexFailure), true }

// kexLeftAddr is a key exchange failure where sshd writes "A port P" (or
// "A") before any client text.
func kexLeftAddr(rest string, _ bool) (sshdMsg, bool) {
	a, p, _, ok := leftAddr(rest)
	if !ok {
		return sshdMsg{}, false
	}
	m := hostile(DetailKexFailure)
	m.addr, m.port = a, p
	return m, true
}

// parseBadProtocol reads "Bad protocol version identification 'TEXT' from
// A port P" (older: "... TEXT from A"); TEXT is the client's, so the
// address is read from the right.
func parseBadProtocol(rest string, _ bool) (sshdMsg, bool) {
	m := hostile(DetailKexFailure)
	if _, a, p, ok := tailAddrPort(rest); ok {
		m.addr, m.port = a, p
		return m, true
	}
	if i := strings.LastIndex(rest, " from "); i >= 0 {
		if a, ok := parseAddr(rest[i+6:]); ok {
			m.addr = a
			return m, true
		}
	}
	return m, false
}

// parseDispatchFatal reads "ssh_dispatch_run_fatal: Connection from CONN:
// REASON".
func parseDispatchFatal(rest string, _ bool) (sshdMsg, bool) {
	m := hostile(DetailKexFailure)
	if !strings.HasPrefix(rest, "authenticating user ") && !strings.HasPrefix(rest, "invalid user ") {
		a, p, _, ok := leftAddr(rest)
		if !ok || p == 0 {
			return m, false
		}
		m.addr, m.port = a, p
		return m, true
	}
	// "... from invalid user X A port P: REASON": the user may hold ": ",
	// so try each ": " from the right until what precedes is a
	// connection id.
	for i := strings.LastIndex(rest, ": "); i > 0; i = strings.LastIndex(rest[:i], ": ") {
		if who, user, a, p, ok := connID(rest[:i]); ok && who != connUser && who != connPlain {
			m.user, m.addr, m.port = user, a, p
			return m, true
		}
	}
	return m, false
}

// parseLtype reads "SSH: Server;Ltype: KIND;Remote: A-P;..." (a vendor
// patch's connection log): it names the connection of this pid.
func parseLtype(rest string, _ bool) (sshdMsg, bool) {
	_, v, ok := strings.Cut(rest, ";Remote: ")
	if !ok {
		return sshdMsg{}, false
	}
	v, _, _ = strings.Cut(v, ";")
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return sshdMsg{}, false
	}
	a, ok := parseAddr(v[:i])
	p, ok2 := parsePort(v[i+1:])
	if !ok || !ok2 {
		return sshdMsg{}, false
	}
	return connLine(a, p)
}

// connWho says which preamble a connection id had.
type connWho uint8

const (
	connPlain          connWho = iota // "A port P"
	connAuthenticating                // "authenticating user X A port P"
	connInvalid                       // "invalid user X A port P"
	connUser                          // "user X A port P": after authentication
)

// connID reads sshd's connection id (packet.c sshpkt_fmt_connection_id):
// "[PREAMBLE ]A port P", where PREAMBLE is "authenticating user X",
// "invalid user X" or "user X". The address and port are read from the
// right, after the user.
func connID(s string) (who connWho, user string, a netip.Addr, port uint16, ok bool) {
	head, a, port, ok := tailAddrPort(s)
	if !ok {
		return 0, "", a, 0, false
	}
	switch {
	case head == "":
		return connPlain, "", a, port, true
	case strings.HasPrefix(head, "authenticating user "):
		return connAuthenticating, head[len("authenticating user "):], a, port, true
	case strings.HasPrefix(head, "invalid user "):
		return connInvalid, head[len("invalid user "):], a, port, true
	case strings.HasPrefix(head, "user "):
		return connUser, head[len("user "):], a, port, true
	case head == "authenticating user":
		return connAuthenticating, "", a, port, true
	case head == "invalid user":
		return connInvalid, "", a, port, true
	}
	return 0, "", netip.Addr{}, 0, false
}

// userFromAddrPort reads "X from A port P" from the right.
func userFromAddrPort(s string) (user string, a netip.Addr, port uint16, ok bool) {
	head, a, port, ok := tailAddrPort(s)
	if !ok {
		return "", a, 0, false
	}
	user, ok = cutFrom(head)
	return user, a, port, ok
}

// userFromAddr reads "X from A" from the right (releases that wrote no
// port).
func userFromAddr(s string) (user string, a netip.Addr, ok bool) {
	i := strings.LastIndex(s, " from ")
	if i < 0 {
		return "", a, false
	}
	a, ok = parseAddr(s[i+6:])
	return s[:i], a, ok
}

// leftAddr reads the address at the start of s, where sshd writes it
// before any client text, with an optional " port P", and returns what
// follows. The address ends at a space, at the end, or at a ':' or ','
// that cannot belong to it ("A: 11: Bye", old releases).
func leftAddr(s string) (a netip.Addr, port uint16, after string, ok bool) {
	end := strings.IndexByte(s, ' ')
	if end < 0 {
		end = len(s)
	}
	a, ok = parseAddr(s[:end])
	if !ok && end > 1 && (s[end-1] == ':' || s[end-1] == ',') {
		end--
		a, ok = parseAddr(s[:end])
	}
	if !ok {
		return a, 0, s, false
	}
	after = s[end:]
	rest, found := strings.CutPrefix(after, " port ")
	if !found {
		return a, 0, after, true
	}
	n := 0
	for n < len(rest) && n < 6 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n < len(rest) && rest[n] != ':' && rest[n] != ' ' && rest[n] != ',' {
		return a, 0, after, false
	}
	p, ok := parsePort(rest[:n])
	if !ok {
		return a, 0, after, false
	}
	return a, p, rest[n:], true
}

// parsePort parses a TCP port number.
func parsePort(s string) (uint16, bool) {
	if len(s) == 0 || len(s) > 5 || !allDigits(s) {
		return 0, false
	}
	p := atoi(s)
	if p > 65535 {
		return 0, false
	}
	return uint16(p), true
}

// tailAddrPort reads "<head> A port P" from the right: P must end s and A
// is the token before " port ". head is everything before A, without the
// separating space.
func tailAddrPort(s string) (head string, addr netip.Addr, port uint16, ok bool) {
	i := strings.LastIndex(s, " port ")
	if i < 0 {
		return "", addr, 0, false
	}
	port, ok = parsePort(s[i+6:])
	if !ok {
		return "", addr, 0, false
	}
	left := s[:i]
	j := strings.LastIndexByte(left, ' ')
	addr, ok = parseAddr(left[j+1:])
	if !ok {
		return "", addr, 0, false
	}
	if j < 0 {
		return "", addr, port, true
	}
	return left[:j], addr, port, true
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
