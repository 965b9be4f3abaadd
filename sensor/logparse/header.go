// Package logparse turns log lines into raw events (sensor/event): sshd and
// PAM authentication lines (Auth), web server access lines (Access) and
// kernel firewall lines (Firewall). Lines come as whole syslog lines (BSD
// "Mar 22 14:32:01 host sshd[123]: ...", RFC 3339/ISO 8601 stamps as rsyslog
// writes them, RFC 5424), as bare messages (what `sshd -E file` writes), or
// as already split messages from the journal (Header).
//
// Parsers never resolve host names and never trust text an attacker chose:
// addresses are read from the positions the server writes them at (anchored
// from the right after attacker-chosen usernames), and every attacker string
// is passed through incident.CleanText before it lands in an event. A line
// a parser does not recognise is ignored (ok == false), never an error.
//
// Parsers keep a little state (the year of year-less stamps, the sshd pid
// table), so one parser serves one stream and is not safe for concurrent use.
package logparse

import (
	"strings"
	"time"

	"github.com/attackmap/attackmap/sensor/event"
)

// Parser turns one line, or one message already split by the journal, into
// at most one event.
type Parser interface {
	// Line parses a whole log line (without its newline).
	Line(line string) (event.Event, bool)
	// Message parses a message whose stamp, host and program are known.
	Message(h Header) (event.Event, bool)
}

// Header is what a syslog line says before its message, or what the journal
// says about an entry.
type Header struct {
	TS   time.Time // zero when the line carried no stamp
	Host string
	Prog string // syslog tag without pid, e.g. "sshd", "kernel"
	PID  int    // 0 when absent
	Msg  string
	// Source is the event source to report (event.SourceJournald for
	// journal entries); empty means the parser's own default.
	Source string
}

// Options configure how a parser reads stamps.
type Options struct {
	// Year is the year of BSD syslog stamps, which carry none. 0 means the
	// current year, except that a stamp more than a day in the future is
	// taken to be from last year. Either way, a stamp whose month jumps
	// back from the end of the year to its start (Dec -> Jan) moves to the
	// next year, so a year-less log across New Year stays in order.
	Year int
	// Location is the zone of stamps that have none (BSD syslog, zone-less
	// ISO 8601). nil means time.Local.
	Location *time.Location
	// Now is the clock, used for lines without any stamp (sshd -E files)
	// and to guess the year. nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// stamper turns year-less BSD stamps into times, keeping the year across a
// stream.
type stamper struct {
	opts      Options
	year      int
	lastMonth time.Month
}

func newStamper(o Options) stamper {
	return stamper{opts: o.withDefaults(), year: o.Year}
}

// bsdTime completes a BSD syslog stamp with a year.
func (s *stamper) bsdTime(mon time.Month, day, hh, mm, ss int) time.Time {
	if s.year == 0 {
		now := s.opts.Now()
		s.year = now.In(s.opts.Location).Year()
		t := time.Date(s.year, mon, day, hh, mm, ss, 0, s.opts.Location)
		if t.After(now.Add(24 * time.Hour)) {
			s.year--
		}
		s.lastMonth = mon
	}
	year := s.year
	switch {
	case s.lastMonth != 0 && s.lastMonth-mon >= 6:
		// Dec -> Jan: a new year began. Six months apart cannot be
		// ordinary reordering of lines.
		s.year++
		year = s.year
		s.lastMonth = mon
	case s.lastMonth != 0 && mon-s.lastMonth >= 6:
		// A late December line after January ones: last year, and it
		// does not move the stream's year back.
		year--
	default:
		s.lastMonth = mon
	}
	return time.Date(year, mon, day, hh, mm, ss, 0, s.opts.Location)
}

// ParseHeader splits a syslog line into stamp, host, program, pid and
// message. It knows BSD (RFC 3164) lines, RFC 3339/ISO 8601 stamps as
// rsyslog writes them, and RFC 5424; an optional <PRI> is skipped. What may
// follow a stamp is described at afterStamp. A line without a stamp is
// returned whole as the message with ok == false.
func (s *stamper) ParseHeader(line string) (Header, bool) {
	rest := line
	if len(rest) > 2 && rest[0] == '<' {
		if i := indexByteN(rest, '>', 5); i > 1 && allDigits(rest[1:i]) {
			rest = rest[i+1:]
			if len(rest) > 2 && rest[0] == '1' && rest[1] == ' ' {
				if h, ok := s.rfc5424(rest[2:]); ok {
					return h, true
				}
				return Header{Msg: line}, false
			}
		}
	}
	var h Header
	var ok bool
	if len(rest) >= 16 && rest[0] >= '0' && rest[0] <= '9' {
		h.TS, rest, ok = s.isoStamp(rest)
	} else {
		h.TS, rest, ok = s.bsdStamp(rest)
	}
	if !ok {
		return Header{Msg: line}, false
	}
	return s.afterStamp(h.TS, rest), true
}

// afterStamp splits what follows a syslog stamp. It knows "HOST TAG: MSG";
// "TAG: MSG" and "[TAG] MSG" without a host; "HOST FACILITY.LEVEL TAG: MSG"
// (syslogds told to write the priority, e.g. "vps auth.info sshd[1]: ");
// and "FACILITY.LEVEL: MSG" (svlogd and similar, where the program is
// unknown and Prog stays empty). Solaris's "[ID 800047 auth.info] " after
// the tag is dropped. Anything else is a bare message with a stamp (e.g.
// "2018-06-26 13:22:02.108781500 Failed password ..."), Prog empty.
func (s *stamper) afterStamp(ts time.Time, rest string) Header {
	h := Header{TS: ts}
	tok, after := cutToken(rest)
	if !isTag(tok) {
		tok2, after2 := cutToken(after)
		if isFacilityLevel(tok2) {
			tok2, after2 = cutToken(after2)
		}
		if tok == "" || !isTag(tok2) || tok2[0] == '[' {
			return Header{TS: ts, Msg: rest}
		}
		h.Host, tok, after = tok, tok2, after2
	}
	tag, _ := strings.CutSuffix(tok, ":")
	switch {
	case tag[0] == '[': // "[sshd]"
		tag = tag[1 : len(tag)-1]
	case tag[len(tag)-1] == ']':
		if i := indexByte(tag, '['); i > 0 {
			h.PID = atoi(tag[i+1 : len(tag)-1])
			tag = tag[:i]
		}
	}
	if !isFacilityLevel(tag) {
		h.Prog = tag
	}
	if strings.HasPrefix(after, "[ID ") {
		if i := indexByteN(after, ']', 64); i > 0 {
			after = strings.TrimPrefix(after[i+1:], " ")
		}
	}
	h.Msg = after
	return h
}

// cutToken splits s at its first space.
func cutToken(s string) (tok, rest string) {
	if i := indexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// isTag reports whether tok is a syslog tag: "prog:", "prog[pid]:", or
// "[prog]" / "[prog]:" as some syslogds write it.
func isTag(tok string) bool {
	n := len(tok)
	if n < 2 {
		return false
	}
	if tok[0] == '[' {
		tok = strings.TrimSuffix(tok, ":")
		return len(tok) > 2 && tok[len(tok)-1] == ']' && indexByte(tok[1:], '[') < 0
	}
	return tok[n-1] == ':'
}

// isFacilityLevel reports whether tok is a syslog "facility.level" such as
// "auth.info" (an optional ':' after it is allowed).
func isFacilityLevel(tok string) bool {
	tok = strings.TrimSuffix(tok, ":")
	i := strings.LastIndexByte(tok, '.')
	if i <= 0 {
		return false
	}
	for j := 0; j < i; j++ {
		if c := tok[j]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	switch tok[i+1:] {
	case "emerg", "panic", "alert", "crit", "err", "error", "warn", "warning", "notice", "info", "debug":
		return true
	}
	return false
}

// rfc5424 parses "TS HOST APP PROCID MSGID SD MSG" (after "<PRI>1 ").
func (s *stamper) rfc5424(rest string) (Header, bool) {
	var h Header
	var ok bool
	h.TS, rest, ok = s.isoStamp(rest)
	if !ok {
		return h, false
	}
	var f [4]string
	for i := range f {
		sp := indexByte(rest, ' ')
		if sp < 0 {
			return h, false
		}
		f[i], rest = rest[:sp], rest[sp+1:]
	}
	if f[0] != "-" {
		h.Host = f[0]
	}
	if f[1] != "-" {
		h.Prog = f[1]
	}
	h.PID = atoi(f[2])
	// structured data: "-" or one or more [..] elements with \] escapes
	switch {
	case len(rest) > 0 && rest[0] == '-':
		rest = rest[1:]
	case len(rest) > 0 && rest[0] == '[':
		for len(rest) > 0 && rest[0] == '[' {
			i := 1
			for i < len(rest) && rest[i] != ']' {
				if rest[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(rest) {
				return h, false
			}
			rest = rest[i+1:]
		}
	default:
		return h, false
	}
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	// An optional UTF-8 BOM starts the message.
	if len(rest) >= 3 && rest[:3] == "\xef\xbb\xbf" {
		rest = rest[3:]
	}
	h.Msg = rest
	return h, true
}

// bsdStamp parses "Mar 22 14:32:01 " (day space- or zero-padded, or not
// padded) and returns the rest of the line.
func (s *stamper) bsdStamp(l string) (time.Time, string, bool) {
	if len(l) < 15 || l[3] != ' ' {
		return time.Time{}, l, false
	}
	mon := monthOf(l[:3])
	if mon == 0 {
		return time.Time{}, l, false
	}
	i := 4
	if l[i] == ' ' {
		i++
	}
	day, n := digitsAt(l, i, 2)
	if n == 0 || day < 1 || day > 31 {
		return time.Time{}, l, false
	}
	i += n
	if i+10 > len(l) || l[i] != ' ' || l[i+3] != ':' || l[i+6] != ':' || l[i+9] != ' ' {
		return time.Time{}, l, false
	}
	hh, n1 := digitsAt(l, i+1, 2)
	mm, n2 := digitsAt(l, i+4, 2)
	ss, n3 := digitsAt(l, i+7, 2)
	if n1 != 2 || n2 != 2 || n3 != 2 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, l, false
	}
	return s.bsdTime(mon, day, hh, mm, ss), l[i+10:], true
}

// isoStamp parses "2026-03-22T14:32:01[.123456][Z|+01:00|+0100] " and
// returns the rest of the line. A stamp without zone takes Options.Location.
func (s *stamper) isoStamp(l string) (time.Time, string, bool) {
	t, n, ok := ParseISO(l, s.opts.Location)
	if !ok || n >= len(l) || l[n] != ' ' {
		return time.Time{}, l, false
	}
	return t, l[n+1:], true
}

// dateTimeAt reads the numbers of "YYYY?MM?DD?HH?MM?SS" at the start of l
// (the caller checks the separators: '-' or '/' in the date, ':' in the
// time) and checks their ranges.
func dateTimeAt(l string) (y, mo, d, hh, mm, ss int, ok bool) {
	y, n0 := digitsAt(l, 0, 4)
	mo, n1 := digitsAt(l, 5, 2)
	d, n2 := digitsAt(l, 8, 2)
	hh, n3 := digitsAt(l, 11, 2)
	mm, n4 := digitsAt(l, 14, 2)
	ss, n5 := digitsAt(l, 17, 2)
	ok = n0 == 4 && n1 == 2 && n2 == 2 && n3 == 2 && n4 == 2 && n5 == 2 &&
		mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && hh <= 23 && mm <= 59 && ss <= 60
	return y, mo, d, hh, mm, ss, ok
}

// ParseISO parses an ISO 8601/RFC 3339 stamp at the start of l (date, 'T'
// or space, time, optional fraction, optional zone) and returns the time and
// its length. Zone-less stamps are in loc.
func ParseISO(l string, loc *time.Location) (time.Time, int, bool) {
	if len(l) < 19 || l[4] != '-' || l[7] != '-' || (l[10] != 'T' && l[10] != ' ') ||
		l[13] != ':' || l[16] != ':' {
		return time.Time{}, 0, false
	}
	y, mo, d, hh, mm, ss, ok := dateTimeAt(l)
	if !ok {
		return time.Time{}, 0, false
	}
	i := 19
	nsec := 0
	if i < len(l) && (l[i] == '.' || l[i] == ',') {
		i++
		start := i
		scale := 100000000
		for i < len(l) && l[i] >= '0' && l[i] <= '9' {
			if i-start < 9 {
				nsec += int(l[i]-'0') * scale
				scale /= 10
			}
			i++
		}
		if i == start {
			return time.Time{}, 0, false
		}
	}
	zone := loc
	if i < len(l) {
		switch c := l[i]; {
		case c == 'Z' || c == 'z':
			zone = time.UTC
			i++
		case c == '+' || c == '-':
			zh, a := digitsAt(l, i+1, 2)
			j := i + 1 + a
			if j < len(l) && l[j] == ':' {
				j++
			}
			zm, b := digitsAt(l, j, 2)
			if a != 2 || b != 2 || zh > 14 || zm > 59 {
				return time.Time{}, 0, false
			}
			off := (zh*60 + zm) * 60
			if c == '-' {
				off = -off
			}
			zone = fixedZone(off)
			i = j + 2
		}
	}
	if zone == nil {
		zone = time.Local
	}
	return time.Date(y, time.Month(mo), d, hh, mm, ss, nsec, zone).UTC(), i, true
}

// fixedZone returns a zone for an offset; UTC for 0 so that stamps compare
// and print alike.
func fixedZone(off int) *time.Location {
	if off == 0 {
		return time.UTC
	}
	return time.FixedZone("", off)
}

func monthOf(s string) time.Month {
	switch s {
	case "Jan":
		return time.January
	case "Feb":
		return time.February
	case "Mar":
		return time.March
	case "Apr":
		return time.April
	case "May":
		return time.May
	case "Jun":
		return time.June
	case "Jul":
		return time.July
	case "Aug":
		return time.August
	case "Sep":
		return time.September
	case "Oct":
		return time.October
	case "Nov":
		return time.November
	case "Dec":
		return time.December
	}
	return 0
}

// digitsAt reads up to max decimal digits at s[i:] and returns the value
// and how many digits it read.
func digitsAt(s string, i, max int) (int, int) {
	v, n := 0, 0
	for n < max && i+n < len(s) && s[i+n] >= '0' && s[i+n] <= '9' {
		v = v*10 + int(s[i+n]-'0')
		n++
	}
	return v, n
}

// atoi parses a small non-negative decimal; 0 for anything else.
func atoi(s string) int {
	if len(s) == 0 || len(s) > 9 {
		return 0
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		v = v*10 + int(c-'0')
	}
	return v
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func indexByte(s string, c byte) int { return strings.IndexByte(s, c) }

func indexByteN(s string, c byte, n int) int {
	for i := 0; i < len(s) && i < n; i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
