// Package detectcmd implements `attackmap-sensor detect`: it replays log
// files and raw event files through the same parsers (sensor/logparse) and
// detectors (sensor/detect) the daemon uses, on the timestamps inside them,
// and writes the incidents as JSONL to stdout. It is how the detectors are
// tested and how an operator replays old logs.
package detectcmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	_ "time/tzdata" // --tz works on hosts without /usr/share/zoneinfo

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/cli"
	"github.com/attackmap/attackmap/sensor/detect"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
	"github.com/attackmap/attackmap/sensor/logsrc"
	"github.com/attackmap/attackmap/sensor/webrule"
)

const usage = `usage: attackmap-sensor detect [--auth-log F]... [--access-log F]... [--error-log F]...
       [--fw-log F]... [--events F]... [--year Y] [--tz ZONE] [--include-private] [--config FILE]
       [--events-out FILE] [--explain]

Replays log files through the sensor's parsers and detectors, on the
timestamps inside them, and writes the incidents as JSONL to stdout. Files
are read together in time order. Lines a parser does not recognise are
skipped and counted (a summary goes to stderr).

  --auth-log F      sshd lines: auth.log/secure (BSD or RFC 3339 syslog stamps),
                    an 'sshd -E' file (no stamps: the time of reading), or a
                    journal export ('journalctl -o json'); repeatable
  --access-log F    web access log, common or combined format (nginx, Apache),
                    optionally with a vhost prefix or inside syslog lines; repeatable
  --error-log F     nginx or Apache (2.2, 2.4) error log: lines naming a client
                    (forbidden, not found, invalid URI or method, rate limited,
                    basic-auth failures), bare, inside syslog lines or a journal
                    export; zone-less stamps take --tz; repeatable
  --fw-log F        kernel firewall lines (iptables/nftables LOG, UFW) from
                    kern.log/syslog/messages or a journal export; repeatable
  --events F        raw events JSONL (events-YYYY-MM-DD.jsonl); repeatable
  --year Y          year of syslog stamps without one (default: the current year,
                    or the last one for stamps that would lie in the future);
                    a log running across New Year moves on to Y+1 by itself
  --tz ZONE         zone of stamps without one, e.g. UTC or Europe/Berlin
                    (default: Local)
  --include-private let loopback, private, link-local and documentation sources
                    raise incidents (skipped by default, as in the daemon)
  --config FILE     JSON detector settings: either a sensor config with a
                    "detect" section, or the detect section alone; fields left
                    out keep their defaults; its "web_rules" names rule files
                    added to the embedded web rule pack
  --events-out FILE also write every raw event the parsers produced (one per
                    recognised line) as JSONL to FILE
  --explain         instead of JSONL, write for every input line what the parser
                    made of it (kind, detail, address, the fields it read) or that
                    it did not recognise it, then what each detector that wants
                    such events did with it (the buckets it fed, before -> after,
                    the web rules it matched, or why it was ignored), and the
                    incidents it raised or updated ("=> " and the incident JSON)

Examples:
  attackmap-sensor detect --auth-log /var/log/auth.log --auth-log /var/log/auth.log.1
  attackmap-sensor detect --access-log access.log --tz Europe/Berlin --include-private
  journalctl -u ssh -o json > ssh.json && attackmap-sensor detect --auth-log ssh.json
  attackmap-sensor detect --access-log access.log --explain | less

Exit status: 0 success, 1 an input could not be read, 2 a bad flag, zone,
year or --config file.
`

// maxLine caps a log line read in a replay; longer lines are skipped.
// 1 MiB is far beyond any real log line (journal entries included) and
// bounds memory on a file with no newlines.
const maxLine = 1 << 20

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// Run implements `attackmap-sensor detect`. Errors are one line; a bad
// command line or --config file is a cli.UsageError (exit status 2), an
// input that cannot be read a plain error (1).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, args, stdout, stderr, time.Now)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	o, err := parseOptions(args, stdout, now)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	// Open every input before writing anything, so a typo fails at once.
	streams, err := o.open()
	defer func() {
		for _, s := range streams {
			s.f.Close()
		}
	}()
	if err != nil {
		return err
	}
	var evOut *bufio.Writer
	if o.eventsOut != "" {
		f, err := os.Create(o.eventsOut)
		if err != nil {
			return fmt.Errorf("detect: --events-out: %w", err)
		}
		defer f.Close()
		evOut = bufio.NewWriter(f)
	}
	rp := &replay{eng: detect.New(o.cfg, detect.WithWebRules(o.rules)), w: bufio.NewWriter(stdout),
		evOut: evOut, explain: o.explain, stderr: stderr}
	if err := rp.run(ctx, streams); err != nil {
		return err
	}
	if err := rp.w.Flush(); err != nil {
		return fmt.Errorf("detect: writing incidents: %w", err)
	}
	if evOut != nil {
		if err := evOut.Flush(); err != nil {
			return fmt.Errorf("detect: --events-out: %w", err)
		}
	}
	var lines, skipped int
	for _, s := range streams {
		lines += s.lines
		skipped += s.skipped
	}
	fmt.Fprintf(stderr, "detect: %d lines, %d events, %d unrecognised lines skipped, %d incidents written\n",
		lines, rp.events, skipped, rp.incidents)
	return nil
}

// options are detect's command line, checked.
type options struct {
	auth, access, errLogs, fw, events []string
	parse                             logparse.Options
	cfg                               detect.Config
	rules                             *webrule.Set
	eventsOut                         string
	explain                           bool
}

// parseOptions reads the flags and the --config file. It returns
// flag.ErrHelp after printing the help, and usage errors (exit status 2)
// for anything wrong in them.
func parseOptions(args []string, stdout io.Writer, now func() time.Time) (options, error) {
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var auth, access, errLogs, fw, events listFlag
	fs.Var(&auth, "auth-log", "")
	fs.Var(&access, "access-log", "")
	fs.Var(&errLogs, "error-log", "")
	fs.Var(&fw, "fw-log", "")
	fs.Var(&events, "events", "")
	year := fs.Int("year", 0, "")
	tz := fs.String("tz", "Local", "")
	includePrivate := fs.Bool("include-private", false, "")
	configFile := fs.String("config", "", "")
	eventsOut := fs.String("events-out", "", "")
	explain := fs.Bool("explain", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return options{}, err
		}
		return options{}, cli.FlagError("attackmap-sensor detect", err)
	}
	if fs.NArg() > 0 {
		return options{}, cli.Usagef("detect: unexpected argument %q (files go after --auth-log, --access-log, --error-log, --fw-log or --events)", fs.Arg(0))
	}
	if len(auth)+len(access)+len(errLogs)+len(fw)+len(events) == 0 {
		return options{}, cli.Usagef("detect: no input: give --auth-log, --access-log, --error-log, --fw-log or --events")
	}
	if *year != 0 && (*year < 1970 || *year > 9999) {
		return options{}, cli.Usagef("detect: --year %d is not a year", *year)
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return options{}, cli.Usagef("detect: --tz %q: unknown zone", *tz)
	}
	cfg := detect.DefaultConfig()
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			return options{}, cli.Usage(fmt.Errorf("detect: --config: %w", err))
		}
		if cfg, err = detect.DecodeConfig(b); err != nil {
			return options{}, cli.Usage(fmt.Errorf("detect: --config %s: %w", *configFile, err))
		}
	}
	if *includePrivate {
		cfg.IncludePrivate = true
	}
	rules, err := webrule.Load(cfg.WebRules...)
	if err != nil {
		return options{}, cli.Usage(fmt.Errorf("detect: web_rules: %w", oneLine(err)))
	}
	return options{auth: auth, access: access, errLogs: errLogs, fw: fw, events: events,
		parse: logparse.Options{Year: *year, Location: loc, Now: now}, cfg: cfg, rules: rules,
		eventsOut: *eventsOut, explain: *explain}, nil
}

// open opens every input with its decoder. The streams opened before an
// error are returned with it, for the caller to close.
func (o *options) open() ([]*stream, error) {
	var streams []*stream
	add := func(paths []string, parser string, decode func() func([]byte) (event.Event, bool)) error {
		for _, p := range paths {
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("detect: %w", err)
			}
			if fi, err := f.Stat(); err == nil && fi.IsDir() {
				f.Close()
				return fmt.Errorf("detect: %s is a directory", p)
			}
			streams = append(streams, &stream{name: p, f: f, r: bufio.NewReaderSize(f, 64<<10), decode: decode(), parser: parser})
		}
		return nil
	}
	for _, in := range []struct {
		paths []string
		kind  logsrc.Kind
	}{{o.auth, logsrc.Auth}, {o.access, logsrc.Access}, {o.errLogs, logsrc.Error}, {o.fw, logsrc.Firewall}} {
		decode := func() func([]byte) (event.Event, bool) { return logsrc.NewDecoder(in.kind, o.parse).Decode }
		if err := add(in.paths, in.kind.String()+" parser", decode); err != nil {
			return streams, err
		}
	}
	err := add(o.events, "raw event reader", func() func([]byte) (event.Event, bool) { return decodeEvent })
	return streams, err
}

// replay runs the merged inputs through the detectors and writes the
// incidents (and, with --events-out, the raw events).
type replay struct {
	eng     *detect.Engine
	w       *bufio.Writer
	evOut   *bufio.Writer // nil without --events-out
	explain bool
	stderr  io.Writer

	events, incidents int
}

// emit writes valid incidents, one JSON line each. As in the daemon, the
// fields are validated without encoding, the incident is encoded once and
// its size is checked on those bytes (incident.CheckSize): full evidence
// lists can pass Validate and still be over incident.MaxBytes, which a
// relay would refuse.
func (rp *replay) emit(ins []incident.Incident) error {
	for i := range ins {
		if err := ins[i].Validate(); err != nil {
			fmt.Fprintf(rp.stderr, "detect: dropping invalid incident %s: %v\n", ins[i].ID, err)
			continue
		}
		b, err := incident.Marshal(&ins[i])
		if err != nil {
			return fmt.Errorf("detect: %w", err)
		}
		if err := incident.CheckSize(b); err != nil {
			fmt.Fprintf(rp.stderr, "detect: dropping invalid incident %s: %v\n", ins[i].ID, err)
			continue
		}
		if rp.explain {
			rp.w.WriteString("  => ")
		}
		rp.w.Write(b)
		rp.w.WriteByte('\n')
		rp.incidents++
	}
	return nil
}

// run merges the streams by event time, so that the detectors see one
// timeline, and flushes the detectors at the end of the input.
func (rp *replay) run(ctx context.Context, streams []*stream) error {
	if rp.explain {
		for _, s := range streams {
			s.skip = func(name, parser string, n int, line []byte) { explainSkipped(rp.w, name, parser, n, line) }
		}
	}
	for _, s := range streams {
		if err := s.next(); err != nil {
			return err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return errors.New("detect: interrupted")
		}
		var min *stream
		for _, s := range streams {
			if s.ok && (min == nil || s.ev.TS.Before(min.ev.TS)) {
				min = s
			}
		}
		if min == nil {
			break
		}
		if err := rp.handle(min); err != nil {
			return err
		}
		if err := min.next(); err != nil {
			return err
		}
	}
	if ins := rp.eng.Flush(); len(ins) > 0 {
		if rp.explain {
			rp.w.WriteString("end of input: the last copy of each incident that changed since it was written\n")
		}
		return rp.emit(ins)
	}
	return nil
}

// handle passes the current event of s to the detectors.
func (rp *replay) handle(s *stream) error {
	ev := s.ev
	rp.events++
	if rp.evOut != nil {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("detect: %w", err)
		}
		rp.evOut.Write(b)
		rp.evOut.WriteByte('\n')
	}
	if rp.explain {
		ins, notes := rp.eng.Explain(ev)
		explainEvent(rp.w, s.name, s.evLine, &ev, notes)
		return rp.emit(ins)
	}
	return rp.emit(rp.eng.Handle(ev))
}

// stream reads events from one file in order.
type stream struct {
	name    string
	parser  string // which parser reads it, for --explain
	f       *os.File
	r       *bufio.Reader
	decode  func([]byte) (event.Event, bool)
	ev      event.Event
	ok      bool
	lines   int
	skipped int
	evLine  int // line number of ev
	// skip, when set, is told about every line no event came from
	// (--explain).
	skip func(name, parser string, n int, line []byte)
}

// next reads up to the next recognised line.
func (s *stream) next() error {
	s.ok = false
	for {
		line, err := readLine(s.r)
		if line != nil {
			s.lines++
			if ev, ok := s.decode(line); ok && !ev.TS.IsZero() {
				s.ev, s.ok, s.evLine = ev, true, s.lines
				return nil
			}
			if len(bytes.TrimSpace(line)) > 0 {
				s.skipped++
				if s.skip != nil {
					s.skip(s.name, s.parser, s.lines, line)
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("detect: reading %s: %w", s.name, err)
		}
	}
}

// readLine returns the next line without its newline; an over-long line
// is returned empty (skipped). At the end it returns the last unterminated
// line, if any, with io.EOF.
func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLine {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return []byte{}, err
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			buf = append(buf, chunk...)
			continue
		}
		if buf != nil {
			chunk = append(buf, chunk...)
		}
		if err == io.EOF && len(chunk) == 0 {
			return nil, io.EOF
		}
		return bytes.TrimSuffix(bytes.TrimSuffix(chunk, []byte("\n")), []byte("\r")), err
	}
}

// decodeEvent reads one raw event line. Attacker strings are capped again:
// the file may come from anywhere.
func decodeEvent(line []byte) (event.Event, bool) {
	var ev event.Event
	if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &ev) != nil || ev.Kind == "" {
		return ev, false
	}
	ev.User = incident.CleanText(ev.User, logparse.MaxUser)
	ev.Path = incident.CleanText(ev.Path, logparse.MaxPath)
	ev.Query = incident.CleanText(ev.Query, logparse.MaxQuery)
	ev.UA = incident.CleanText(ev.UA, logparse.MaxUA)
	ev.Method = incident.CleanText(ev.Method, logparse.MaxMethod)
	ev.Comm = incident.CleanText(ev.Comm, 64)
	ev.ParentComm = incident.CleanText(ev.ParentComm, 64)
	if len(ev.Argv) > incident.MaxList {
		ev.Argv = ev.Argv[:incident.MaxList]
	}
	for i, a := range ev.Argv {
		ev.Argv[i] = incident.CleanText(a, incident.MaxEvidenceString)
	}
	ev.SrcIP = ev.SrcIP.WithZone("").Unmap()
	ev.DstIP = ev.DstIP.WithZone("").Unmap()
	ev.TS = ev.TS.UTC()
	return ev, true
}

// oneLine keeps an error on one line (a rule file's error may quote it).
func oneLine(err error) error {
	if !strings.ContainsAny(err.Error(), "\r\n") {
		return err
	}
	return errors.New(strings.Join(strings.Fields(err.Error()), " "))
}
