// Package logsrc is the sensor's log collector front: it follows the
// configured auth, web access, web error and firewall logs (files through sensor/tail,
// the systemd journal through sensor/journald), parses every line with
// sensor/logparse and sends the raw events on a channel. Defaults picks the
// system's usual files when they exist.
package logsrc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/journald"
	"github.com/attackmap/attackmap/sensor/logparse"
	"github.com/attackmap/attackmap/sensor/tail"
)

// Config names the logs to follow.
type Config struct {
	// AuthLogs hold sshd lines (auth.log, secure, or an `sshd -E` file).
	AuthLogs []string `json:"auth_logs,omitempty"`
	// AccessLogs hold web access lines (nginx/Apache common or combined).
	AccessLogs []string `json:"access_logs,omitempty"`
	// ErrorLogs hold nginx or Apache error lines (error.log, error_log).
	ErrorLogs []string `json:"error_logs,omitempty"`
	// FWLogs hold kernel firewall lines (kern.log, syslog, messages).
	FWLogs []string `json:"fw_logs,omitempty"`
	// UseJournal follows sshd in the systemd journal.
	UseJournal bool `json:"use_journal,omitempty"`
	// JournalFirewall follows kernel firewall lines in the journal.
	JournalFirewall bool `json:"journal_firewall,omitempty"`
	// JournalArgs are extra journalctl arguments (e.g. "--directory=DIR").
	JournalArgs []string `json:"journal_args,omitempty"`
	// StateDir holds the byte offsets and journal cursors, so a restart
	// resumes where the last run stopped. Empty: nothing is persisted and
	// files are followed from their end.
	StateDir string `json:"-"`
	// FromStart reads files without a saved offset from their beginning
	// (default: from their end, so a first start does not replay history).
	FromStart bool `json:"-"`
	// Resume gives, by path, where to start reading instead of the saved
	// offsets: the positions of the detection checkpoint, so that exactly
	// the lines after the ones the checkpointed state has seen are read.
	Resume map[string]event.FilePos `json:"-"`
	// Parse sets the zone of zone-less stamps (default local time).
	Parse logparse.Options `json:"-"`
	// Logger gets warnings; nothing is logged per line.
	Logger *slog.Logger `json:"-"`
	// Tailers, when set, receives each file's tailer, for the metrics.
	Tailers *tail.Set `json:"-"`
}

// Kind says which parser a log needs.
type Kind int

// Kinds of log.
const (
	Auth Kind = iota
	Access
	Firewall
	Error
)

// source is the event source of a kind's files.
func (k Kind) source() string {
	return [...]string{event.SourceAuthLog, event.SourceAccessLog, event.SourceFirewallLog, event.SourceErrorLog}[k]
}

// IsMark reports whether ev is a position mark (see Config.Run): no event,
// only the position of its file's reader.
func IsMark(ev *event.Event) bool { return ev.Kind == "" && ev.TS.IsZero() && ev.Origin.Key != "" }

func (k Kind) String() string {
	return [...]string{"auth", "access", "firewall", "error"}[k]
}

// Usual locations, in order of preference.
var (
	defaultAuth   = []string{"/var/log/auth.log", "/var/log/secure"}
	defaultAccess = []string{"/var/log/nginx/access.log", "/var/log/apache2/access.log",
		"/var/log/apache2/other_vhosts_access.log", "/var/log/httpd/access_log"}
	defaultError     = []string{"/var/log/nginx/error.log", "/var/log/apache2/error.log", "/var/log/httpd/error_log"}
	defaultFW        = []string{"/var/log/kern.log", "/var/log/messages", "/var/log/syslog"}
	journalDirs      = []string{"/var/log/journal", "/run/log/journal"}
	journalctlOnPATH = func() bool { _, err := exec.LookPath("journalctl"); return err == nil }
)

// Defaults picks the system's usual logs: /var/log/auth.log or
// /var/log/secure (the journal's sshd entries when there is neither and
// the journal is in use), every nginx/Apache access and error log found, and the
// first of kern.log, messages and syslog for firewall lines (the journal's
// kernel entries when there is none).
func Defaults() Config {
	var c Config
	if p := firstExisting(defaultAuth); p != "" {
		c.AuthLogs = []string{p}
	} else if journalInUse() {
		c.UseJournal = true
	}
	for _, p := range defaultAccess {
		if exists(p) {
			c.AccessLogs = append(c.AccessLogs, p)
		}
	}
	for _, p := range defaultError {
		if exists(p) {
			c.ErrorLogs = append(c.ErrorLogs, p)
		}
	}
	if p := firstExisting(defaultFW); p != "" {
		c.FWLogs = []string{p}
	} else if journalInUse() {
		c.JournalFirewall = true
	}
	return c
}

// Empty reports whether c names no log at all.
func (c Config) Empty() bool {
	return len(c.AuthLogs)+len(c.AccessLogs)+len(c.ErrorLogs)+len(c.FWLogs) == 0 && !c.UseJournal && !c.JournalFirewall
}

func journalInUse() bool {
	if !journalctlOnPATH() {
		return false
	}
	for _, d := range journalDirs {
		if ents, err := os.ReadDir(d); err == nil && len(ents) > 0 {
			return true
		}
	}
	return false
}

func firstExisting(paths []string) string {
	for _, p := range paths {
		if exists(p) {
			return p
		}
	}
	return ""
}

func exists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// retryAfter is how long a failed source waits before it is tried again:
// long enough not to spin on a permission error, short enough that fixing
// the permission takes effect soon.
const retryAfter = 30 * time.Second

// Run follows every configured log until ctx ends, sending events on out.
// Sends block: the log files are the buffer, so a slow consumer delays
// reading rather than losing lines. A source that fails (unreadable file,
// journalctl missing) is logged and retried. Run returns nil when ctx ends,
// or an error at once when nothing is configured.
func (c Config) Run(ctx context.Context, out chan<- event.Event) error {
	if c.Empty() {
		return errors.New("logsrc: no logs configured")
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	start := func(name string, run func() error) {
		wg.Go(func() {
			for {
				err := run()
				if ctx.Err() != nil {
					return
				}
				log.Warn("logsrc: source failed, retrying", "source", name, "err", err, "in", retryAfter)
				select {
				case <-ctx.Done():
					return
				case <-time.After(retryAfter):
				}
			}
		})
	}
	files := []struct {
		kind  Kind
		paths []string
	}{{Auth, c.AuthLogs}, {Access, c.AccessLogs}, {Error, c.ErrorLogs}, {Firewall, c.FWLogs}}
	for _, f := range files {
		for _, p := range f.paths {
			kind, path := f.kind, p
			start(path, func() error { return c.tailFile(ctx, kind, path, log, out) })
		}
	}
	if c.UseJournal {
		start("journal sshd", func() error {
			return c.followJournal(ctx, Auth, journald.SSHDMatches, "journal-sshd.cursor", log, out)
		})
	}
	if c.JournalFirewall {
		start("journal kernel", func() error {
			return c.followJournal(ctx, Firewall, journald.KernelMatches, "journal-kernel.cursor", log, out)
		})
	}
	wg.Wait()
	return nil
}

func (c Config) tailFile(ctx context.Context, kind Kind, path string, log *slog.Logger, out chan<- event.Event) error {
	d := NewDecoder(kind, c.Parse)
	cfg := tail.Config{Path: path, FromStart: c.FromStart, Logger: log}
	if c.StateDir != "" {
		cfg.StateFile = filepath.Join(c.StateDir, "tail-"+stateName(path)+".json")
	}
	if p, ok := c.Resume[path]; ok {
		cfg.Resume = &p
	}
	// Every event carries its file and the reader's position past its line
	// (event.Origin). Lines that make no event move the position too: when
	// the tailer has caught up after such lines, a mark (an event with no
	// kind and no time, which the detection stage only takes the position
	// from) says so, so a restart does not read them all again.
	var tl *tail.Tailer
	unmarked := false
	send := func(ev event.Event) error {
		select {
		case out <- ev:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	cfg.Idle = func() {
		if unmarked {
			unmarked = false
			_ = send(event.Event{Source: kind.source(), Origin: event.Origin{Key: path, Pos: tl.Pos()}})
		}
	}
	tl = tail.New(cfg)
	c.Tailers.Add(tl)
	err := tl.Run(ctx, func(line []byte) error {
		ev, ok := d.Decode(line)
		if !ok {
			unmarked = true
			return nil
		}
		unmarked = false
		ev.Origin = event.Origin{Key: path, Pos: tl.Pos()}
		return send(ev)
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (c Config) followJournal(ctx context.Context, kind Kind, matches []string, state string, log *slog.Logger, out chan<- event.Event) error {
	d := NewDecoder(kind, c.Parse)
	f := &journald.Follower{Matches: matches, Args: c.JournalArgs, Logger: log}
	if c.StateDir != "" {
		f.StateFile = filepath.Join(c.StateDir, state)
	}
	err := f.Run(ctx, func(e journald.Entry) error {
		ev, ok := d.p.Message(e.Header())
		if !ok {
			return nil
		}
		select {
		case out <- ev:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// stateName turns a path into a file name: "/var/log/auth.log" ->
// "var_log_auth.log".
func stateName(path string) string {
	s := strings.Trim(filepath.Clean(path), "/")
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < 0x20 {
			return '_'
		}
		return r
	}, s)
}

// Decoder parses lines of one kind of log: syslog or plain lines, and
// journal JSON export lines (`journalctl -o json`), which it recognises by
// their opening brace.
type Decoder struct {
	p logparse.Parser
}

// NewDecoder returns a decoder for kind.
func NewDecoder(kind Kind, o logparse.Options) *Decoder {
	var p logparse.Parser
	switch kind {
	case Auth:
		p = logparse.NewAuth(o)
	case Access:
		p = logparse.NewAccess(o)
	case Firewall:
		p = logparse.NewFirewall(o)
	case Error:
		p = logparse.NewErrorLog(o)
	default:
		panic(fmt.Sprintf("logsrc: unknown kind %d", kind))
	}
	return &Decoder{p: p}
}

// Decode parses one line (without its newline).
func (d *Decoder) Decode(line []byte) (event.Event, bool) {
	if len(line) > 0 && line[0] == '{' {
		if e, err := journald.ParseEntry(line); err == nil {
			return d.p.Message(e.Header())
		}
		// Not a journal entry: an access log line never starts with '{',
		// but let the parser decide.
	}
	return d.p.Line(string(line))
}
