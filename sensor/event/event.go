// Package event defines the raw event: one observation by a collector (a
// kernel tracepoint hit, an sshd log line, an access log line, a firewall
// drop) before any detector has judged it. Events are the detectors' input
// and are written one per line to events-YYYY-MM-DD.jsonl (docs/DESIGN.md).
//
// Collectors fill only the fields that apply. Strings that an attacker
// chooses (user, path, argv, ua) must be passed through incident.CleanText
// (or an equivalent cap) by the collector before they land here.
package event

import (
	"net/netip"
	"time"
)

// Kinds of event. Add new kinds here rather than inventing them at a call site.
const (
	KindExec        = "exec"
	KindConnect     = "connect"
	KindAccept      = "accept"
	KindOpen        = "open"
	KindProbe       = "probe" // a TCP reset sent for a closed port: someone knocked
	KindSSHFailed   = "ssh_failed"
	KindSSHAccepted = "ssh_accepted"
	KindHTTPRequest = "http_request"
	KindFWDrop      = "fw_drop"
	// KindHTTPError is a web server error-log line that names a client
	// (nginx "client: A", Apache "[client A:port]"): Detail says what the
	// server refused, Path and Method are set when the line quotes the
	// request.
	KindHTTPError = "http_error"
)

// Sources of events.
const (
	SourceEBPF        = "ebpf"
	SourceAuthLog     = "auth_log"
	SourceJournald    = "journald"
	SourceAccessLog   = "access_log"
	SourceFirewallLog = "firewall_log"
	SourceErrorLog    = "error_log"
)

// Event is one raw observation. The JSON names are the raw events format of
// docs/DESIGN.md; fields after Status are additions that keep the same
// style (snake_case, omitted when empty). Only ever add fields.
type Event struct {
	TS     time.Time `json:"ts"`
	Kind   string    `json:"kind"`
	Source string    `json:"source"`

	PID  uint32 `json:"pid,omitempty"`
	PPID uint32 `json:"ppid,omitempty"`
	// UID is a pointer because uid 0 (root) is the most interesting value
	// and must not be omitted.
	UID  *uint32  `json:"uid,omitempty"`
	Comm string   `json:"comm,omitempty"`
	Path string   `json:"path,omitempty"`
	Argv []string `json:"argv,omitempty"`

	SrcIP   netip.Addr `json:"src_ip,omitzero"`
	SrcPort uint16     `json:"src_port,omitempty"`
	DstIP   netip.Addr `json:"dst_ip,omitzero"`
	DstPort uint16     `json:"dst_port,omitempty"`

	User   string `json:"user,omitempty"`
	Method string `json:"method,omitempty"`
	Status int    `json:"status,omitempty"`
	UA     string `json:"ua,omitempty"`

	// ParentComm is the parent process's comm, for exec events.
	ParentComm string `json:"parent_comm,omitempty"`
	// Query is the URL query string of an http_request, without the '?'.
	Query string `json:"query,omitempty"`
	// Size is the response size of an http_request in bytes.
	Size int64 `json:"size,omitempty"`
	// Vhost is the virtual host of an http_request, when the log has one.
	Vhost string `json:"vhost,omitempty"`
	// Proto is the transport of a fw_drop or network event ("tcp", "udp").
	Proto string `json:"proto,omitempty"`
	// Detail refines the kind, e.g. for sshd: "invalid_user",
	// "failed_password", "max_auth_tries", "preauth_close", "kex_failure",
	// "no_ident", "accepted_publickey".
	Detail string `json:"detail,omitempty"`
	// Host is the name of the machine whose log held the line (syslog host).
	Host string `json:"host,omitempty"`
	// HTTPVersion is the protocol of an http_request's request line as
	// logged ("HTTP/1.1"); empty when the line had none.
	HTTPVersion string `json:"http_version,omitempty"`

	// Origin says where a collector read the event. It is not part of the
	// JSON (the raw events format is unchanged): the detection stage keeps
	// a clock per origin and ties its checkpoint to the lines consumed.
	Origin Origin `json:"-"`
}

// Origin is where an event was read.
type Origin struct {
	// Key names the input: the path of a followed log file. Empty for the
	// kernel and the journal, which Source names.
	Key string
	// Pos is the file reader's state just past the event's line (zero for
	// other inputs).
	Pos FilePos
}

// FilePos is the state of a file reader (sensor/tail): the file at the
// followed path and, while it is still drained after a rotation, its
// renamed predecessor.
type FilePos struct {
	Cur, Prev FileRef
}

// FileRef is one file and how far it was read.
type FileRef struct {
	// Dev and Ino identify the file while it keeps its inode.
	Dev, Ino uint64
	// Off is the byte offset just past the last line handed over.
	Off int64
	// Sum is a fingerprint (FNV-1a) of the file's first SumLen bytes: it
	// tells a file truncated and refilled in place (copytruncate), or
	// compressed under a new name, from another one. SumLen 0: none yet.
	Sum    uint64
	SumLen int64
}
