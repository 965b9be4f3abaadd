// Package journald reads the systemd journal for the sensor: it parses the
// JSON export lines of `journalctl -o json` (Entry), and follows the journal
// through a `journalctl -o json --follow` child process (Follower) whose
// cursor is persisted, so a restart resumes after the last entry handled
// (`--after-cursor`) instead of losing or replaying entries.
//
// Talking to journalctl rather than linking libsystemd keeps the sensor a
// static Go binary; the journal's own tool also knows every journal file
// format version.
package journald

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/attackmap/attackmap/internal/atomicfile"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// MaxEntryBytes caps one JSON line from journalctl. The journal allows
// huge fields; 1 MiB is far beyond any sshd or kernel message, and longer
// lines are skipped so one giant entry cannot pin memory.
const MaxEntryBytes = 1 << 20

// Entry is the part of a journal entry the sensor uses.
type Entry struct {
	Cursor    string
	TS        time.Time // __REALTIME_TIMESTAMP
	Host      string    // _HOSTNAME
	Ident     string    // SYSLOG_IDENTIFIER, else _COMM
	PID       int       // _PID, else SYSLOG_PID
	Transport string    // _TRANSPORT: "syslog", "journal", "stdout", "kernel"
	Message   string
}

// rawEntry mirrors journalctl's JSON: every value is a string, an array
// of byte values (binary or non-UTF-8 data), an array of such values (a
// field set more than once), or null (too large).
type rawEntry struct {
	Cursor    json.RawMessage `json:"__CURSOR"`
	Realtime  json.RawMessage `json:"__REALTIME_TIMESTAMP"`
	Host      json.RawMessage `json:"_HOSTNAME"`
	Ident     json.RawMessage `json:"SYSLOG_IDENTIFIER"`
	Comm      json.RawMessage `json:"_COMM"`
	PID       json.RawMessage `json:"_PID"`
	SyslogPID json.RawMessage `json:"SYSLOG_PID"`
	Transport json.RawMessage `json:"_TRANSPORT"`
	Message   json.RawMessage `json:"MESSAGE"`
}

// ParseEntry parses one line of `journalctl -o json`.
func ParseEntry(line []byte) (Entry, error) {
	var r rawEntry
	if err := json.Unmarshal(line, &r); err != nil {
		return Entry{}, fmt.Errorf("journald: not a journal JSON entry: %w", err)
	}
	var e Entry
	e.Cursor = field(r.Cursor)
	us, err := strconv.ParseInt(field(r.Realtime), 10, 64)
	if err != nil || us <= 0 {
		return Entry{}, errors.New("journald: entry without __REALTIME_TIMESTAMP")
	}
	e.TS = time.UnixMicro(us).UTC()
	e.Host = field(r.Host)
	e.Ident = field(r.Ident)
	if e.Ident == "" {
		e.Ident = field(r.Comm)
	}
	e.PID, _ = strconv.Atoi(field(r.PID))
	if e.PID == 0 {
		e.PID, _ = strconv.Atoi(field(r.SyslogPID))
	}
	e.Transport = field(r.Transport)
	e.Message = field(r.Message)
	return e, nil
}

// field decodes a journal JSON value: a string, an array of byte values,
// or an array of those (the first is used). null and anything else give "".
func field(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '[':
		var b []byte
		var nums []int
		if json.Unmarshal(raw, &nums) == nil {
			b = make([]byte, 0, len(nums))
			for _, n := range nums {
				b = append(b, byte(n))
			}
			return string(b)
		}
		var multi []json.RawMessage
		if json.Unmarshal(raw, &multi) == nil && len(multi) > 0 {
			return field(multi[0])
		}
	}
	return ""
}

// Header returns the entry as a logparse.Header (source journald). Kernel
// entries get the program name "kernel".
func (e Entry) Header() logparse.Header {
	prog := e.Ident
	if e.Transport == "kernel" {
		prog = "kernel"
	}
	// sshd run with -e (containers, some units) logs to stderr, and
	// OpenSSH ends stderr lines with "\r\n": the journal keeps the CR.
	return logparse.Header{TS: e.TS, Host: e.Host, Prog: prog, PID: e.PID,
		Msg: strings.TrimSuffix(e.Message, "\r"), Source: event.SourceJournald}
}

// Matches for the sensor's two uses of the journal.
var (
	// SSHDMatches selects sshd's entries, under every name OpenSSH uses.
	SSHDMatches = []string{"SYSLOG_IDENTIFIER=sshd", "+", "SYSLOG_IDENTIFIER=sshd-session",
		"+", "SYSLOG_IDENTIFIER=sshd-auth"}
	// KernelMatches selects kernel messages (firewall log lines).
	KernelMatches = []string{"_TRANSPORT=kernel"}
)

// Follower follows the journal through journalctl.
type Follower struct {
	// Matches are journalctl match arguments (see SSHDMatches).
	Matches []string
	// StateFile keeps the cursor of the last handled entry. Empty: not
	// persisted, and following starts at the journal's end.
	StateFile string
	// Args are extra journalctl arguments, e.g. "--directory=DIR" or
	// "--file=F" to read other journal files, or "--boot".
	Args []string
	// Command is the journalctl binary; default "journalctl" from PATH.
	Command string
	// SaveEvery spaces cursor writes while entries flow. Default 1 s: a
	// crash replays at most a second of entries.
	SaveEvery time.Duration
	// Logger gets warnings (journalctl exits and restarts).
	Logger *slog.Logger
}

// Run follows the journal until ctx ends, calling fn for each entry. When
// journalctl exits it is restarted after a backoff (1 s doubling to 30 s:
// quick recovery from a one-off failure without spinning on a permanent
// one). An error from fn stops Run and is returned; ctx's end returns nil.
func (f *Follower) Run(ctx context.Context, fn func(Entry) error) error {
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cursor := f.loadCursor()
	backoff := time.Second
	for {
		start := time.Now()
		c, err := f.follow(ctx, cursor, fn)
		if c != "" {
			cursor = c
		}
		if ctx.Err() != nil {
			return nil
		}
		var fnErr *callbackError
		if errors.As(err, &fnErr) {
			return fnErr.err
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		log.Warn("journald: journalctl stopped, restarting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// CommandLine returns the journalctl command line Run starts for a cursor.
func (f *Follower) CommandLine(cursor string) []string {
	cmd := f.Command
	if cmd == "" {
		cmd = "journalctl"
	}
	args := []string{cmd, "--output=json", "--follow", "--no-pager", "--quiet"}
	if cursor != "" {
		args = append(args, "--after-cursor="+cursor)
	} else {
		args = append(args, "--lines=0") // from now on: no replay of history
	}
	args = append(args, f.Args...)
	return append(args, f.Matches...)
}

// follow runs one journalctl process and returns the last cursor handled.
func (f *Follower) follow(ctx context.Context, cursor string, fn func(Entry) error) (string, error) {
	argv := f.CommandLine(cursor)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = nil
	cmd.WaitDelay = 2 * time.Second // do not hang on a stuck pipe when ctx ends
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("journald: starting %s: %w", argv[0], err)
	}
	last, saved := "", cursor
	lastSave := time.Now()
	every := f.SaveEvery
	if every <= 0 {
		every = time.Second
	}
	r := bufio.NewReaderSize(out, 64<<10)
	var rerr error
	for {
		line, err := readLine(r)
		if len(line) > 0 {
			e, perr := ParseEntry(line)
			if perr == nil {
				if ferr := fn(e); ferr != nil {
					rerr = &callbackError{ferr}
					break
				}
				if e.Cursor != "" {
					last = e.Cursor
				}
				if last != saved && time.Since(lastSave) >= every {
					f.saveCursor(last)
					saved, lastSave = last, time.Now()
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = err
			}
			break
		}
	}
	if last != "" && last != saved {
		f.saveCursor(last)
	}
	if rerr == nil || ctx.Err() != nil {
		werr := cmd.Wait()
		if rerr == nil {
			rerr = werr
		}
	} else {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	if rerr == nil {
		rerr = errors.New("journalctl exited")
	}
	return last, rerr
}

// readLine reads one line, skipping (and returning empty) lines over
// MaxEntryBytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) <= MaxEntryBytes {
			buf = append(buf, chunk...)
		} else {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			return nil, err
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(buf, "\n"), err
	}
}

func (f *Follower) loadCursor() string {
	if f.StateFile == "" {
		return ""
	}
	b, err := os.ReadFile(f.StateFile)
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(b))
	if len(c) > 4096 || strings.ContainsAny(c, "\n\x00") {
		return ""
	}
	return c
}

// saveCursor writes the cursor atomically (temp file, fsync, rename).
func (f *Follower) saveCursor(c string) {
	if f.StateFile == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(f.StateFile), 0o750); err != nil {
		return
	}
	_ = atomicfile.Write(f.StateFile, []byte(c+"\n"), 0o640)
}
