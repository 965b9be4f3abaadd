package incident

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Length caps, in bytes, on every string and list of an incident. They keep
// one incident under MaxBytes and keep attacker-chosen text short enough to
// show in a sidebar line.
const (
	MaxID             = 256
	MaxSource         = 64
	MaxIP             = 64
	MaxCity           = 128
	MaxOrg            = 256
	MaxHost           = 64
	MaxTitle          = 128
	MaxSummary        = 1024
	MaxAction         = 32
	MaxTags           = 16
	MaxTag            = 32
	MaxList           = 32
	MaxEvidenceString = 256
	MaxGeoSource      = 32
)

// MaxCount caps an incident's count. A detector counts attempts within
// one episode of minutes to hours; even a flood of 100,000 attempts a
// second for three hours stays near 10^9, and a larger number is a broken
// or hostile sensor that would overflow sums in the stats.
const MaxCount = 1_000_000_000

// Validate checks every field against the contract and returns the first
// problem as a one-line error naming the field, e.g.
// `severity: unknown value "hgih"`. It neither encodes nor allocates on a
// valid incident; the encoded size is CheckSize's job, on the bytes the
// caller already has.
func (in *Incident) Validate() error {
	if err := checkText("id", in.ID, MaxID, true); err != nil {
		return err
	}
	if err := checkName("source", in.Source, MaxSource, false); err != nil {
		return err
	}
	if !in.Severity.Valid() {
		return fmt.Errorf("severity: unknown value %s", quote(string(in.Severity)))
	}
	if in.IP == "" {
		return fmt.Errorf("ip: missing")
	}
	if len(in.IP) > MaxIP {
		return fmt.Errorf("ip: %d bytes, over the %d byte limit", len(in.IP), MaxIP)
	}
	if a, err := netip.ParseAddr(in.IP); err != nil || a.Zone() != "" {
		return fmt.Errorf("ip: not an IPv4 or IPv6 address: %s", quote(in.IP))
	}
	if err := checkCountry("country", in.Country); err != nil {
		return err
	}
	switch {
	case in.Lat == nil && in.Lon == nil:
	case in.Lat == nil || in.Lon == nil:
		return fmt.Errorf("lat, lon: give both or neither")
	default:
		if err := checkLatLon("", *in.Lat, *in.Lon); err != nil {
			return err
		}
	}
	if in.TS.IsZero() {
		return fmt.Errorf("ts: missing")
	}
	if err := checkText("city", in.City, MaxCity, false); err != nil {
		return err
	}
	if err := checkText("org", in.Org, MaxOrg, false); err != nil {
		return err
	}
	if in.AccuracyKM < 0 || in.AccuracyKM > 20040 {
		return fmt.Errorf("accuracy_km: %d is not between 0 and 20040", in.AccuracyKM)
	}
	if err := checkText("host", in.Host, MaxHost, false); err != nil {
		return err
	}
	if t := in.Target; t != nil {
		if err := checkLatLon("target.", t.Lat, t.Lon); err != nil {
			return err
		}
		if err := checkCountry("target.country", t.Country); err != nil {
			return err
		}
	}
	if err := checkText("title", in.Title, MaxTitle, false); err != nil {
		return err
	}
	if err := checkText("summary", in.Summary, MaxSummary, false); err != nil {
		return err
	}
	if !in.FirstSeen.IsZero() && !in.LastSeen.IsZero() && in.LastSeen.Before(in.FirstSeen) {
		return fmt.Errorf("last_seen: before first_seen")
	}
	if in.Count < 0 {
		return fmt.Errorf("count: %d is negative", in.Count)
	}
	if in.Count > MaxCount {
		return fmt.Errorf("count: %d is over the %d limit", in.Count, MaxCount)
	}
	if err := in.Evidence.validate(); err != nil {
		return err
	}
	if s := in.AbuseScore; s != nil && (*s < 0 || *s > 100) {
		return fmt.Errorf("abuse_score: %d is not between 0 and 100", *s)
	}
	if len(in.Tags) > MaxTags {
		return fmt.Errorf("tags: %d items, over the %d item limit", len(in.Tags), MaxTags)
	}
	for i, t := range in.Tags {
		if err := checkName("tags", t, MaxTag, true); err != nil {
			return atIndex(err, "tags", i)
		}
	}
	if in.Action != "" {
		if err := checkAction(in.Action); err != nil {
			return err
		}
	}
	if in.GeoSource != "" {
		if err := checkName("geo_source", in.GeoSource, MaxGeoSource, true); err != nil {
			return err
		}
	}
	return nil
}

// CheckSize refuses an encoded incident over MaxBytes. It is separate from
// Validate, which judges the fields and never encodes: whoever holds the
// incident's bytes (the sensor after its one encode, the relay after its
// re-encode) checks their length, so no incident is marshalled only to be
// measured.
func CheckSize(b []byte) error {
	if len(b) > MaxBytes {
		return fmt.Errorf("incident: %d bytes encoded, over the %d byte limit", len(b), MaxBytes)
	}
	return nil
}

func (e *Evidence) validate() error {
	if e == nil {
		return nil
	}
	lists := []struct {
		name string
		v    []string
	}{
		{"evidence.users", e.Users}, {"evidence.paths", e.Paths},
		{"evidence.user_agents", e.UserAgents}, {"evidence.methods", e.Methods},
		{"evidence.argv", e.Argv}, {"evidence.lists", e.Lists},
	}
	for _, l := range lists {
		if len(l.v) > MaxList {
			return fmt.Errorf("%s: %d items, over the %d item limit", l.name, len(l.v), MaxList)
		}
		for i, s := range l.v {
			if err := checkText(l.name, s, MaxEvidenceString, false); err != nil {
				return atIndex(err, l.name, i)
			}
		}
	}
	if len(e.Ports) > MaxList {
		return fmt.Errorf("evidence.ports: %d items, over the %d item limit", len(e.Ports), MaxList)
	}
	for i, p := range e.Ports {
		if p < 0 || p > 65535 {
			return fmt.Errorf("evidence.ports[%d]: %d is not a port", i, p)
		}
	}
	if len(e.Statuses) > MaxList {
		return fmt.Errorf("evidence.statuses: %d items, over the %d item limit", len(e.Statuses), MaxList)
	}
	for i, s := range e.Statuses {
		if s < 100 || s > 999 {
			return fmt.Errorf("evidence.statuses[%d]: %d is not an HTTP status", i, s)
		}
	}
	for _, f := range []struct{ name, v string }{
		{"evidence.comm", e.Comm}, {"evidence.parent", e.Parent}, {"evidence.dst", e.Dst},
	} {
		if err := checkText(f.name, f.v, MaxEvidenceString, false); err != nil {
			return err
		}
	}
	return nil
}

// atIndex names the list item an error is about: "tags: ..." becomes
// "tags[3]: ...". Building the indexed name only on failure keeps Validate
// free of allocations on a valid incident.
func atIndex(err error, list string, i int) error {
	msg := strings.TrimPrefix(err.Error(), list+": ")
	return errors.New(list + "[" + strconv.Itoa(i) + "]: " + msg)
}

func checkLatLon(prefix string, lat, lon float64) error {
	if math.IsNaN(lat) || lat < -90 || lat > 90 {
		return fmt.Errorf("%slat: %v is not between -90 and 90", prefix, lat)
	}
	if math.IsNaN(lon) || lon < -180 || lon > 180 {
		return fmt.Errorf("%slon: %v is not between -180 and 180", prefix, lon)
	}
	return nil
}

func checkCountry(field, c string) error {
	if c == "" {
		return nil
	}
	if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return fmt.Errorf("%s: %s is not an ISO 3166 alpha-2 code", field, quote(c))
	}
	return nil
}

// checkText accepts valid UTF-8 without control characters, up to max bytes.
func checkText(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%s: missing", field)
		}
		return nil
	}
	if len(s) > max {
		return fmt.Errorf("%s: %d bytes, over the %d byte limit", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: not valid UTF-8", field)
	}
	for _, r := range s {
		if isControl(r) {
			return fmt.Errorf("%s: control character %U not allowed", field, r)
		}
	}
	return nil
}

// checkName accepts lowercase identifiers: a-z, 0-9, '_' and, when
// punct is set, also '-', '.' and ':'.
func checkName(field, s string, max int, punct bool) error {
	if s == "" {
		return fmt.Errorf("%s: missing", field)
	}
	if len(s) > max {
		return fmt.Errorf("%s: %d bytes, over the %d byte limit", field, len(s), max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' ||
			punct && (c == '-' || c == '.' || c == ':')
		if !ok {
			return fmt.Errorf("%s: %s has characters other than a-z, 0-9 and _", field, quote(s))
		}
	}
	return nil
}

// checkAction accepts a short phrase: "logged", "blocked 1h", "would block
// (dry run)", "not blocked: allow list". Lower-case letters, digits, space
// and _ ( ) : - . only, so an action is plain text wherever it is shown,
// never markup.
func checkAction(s string) error {
	if len(s) > MaxAction {
		return fmt.Errorf("action: %d bytes, over the %d byte limit", len(s), MaxAction)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("_ ():-.", c) >= 0) {
			return fmt.Errorf("action: %s has a character outside [a-z0-9 _():.-]", quote(s))
		}
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' || strings.Contains(s, "  ") {
		return fmt.Errorf("action: %s has stray spaces", quote(s))
	}
	return nil
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029
}

// isFormat reports the invisible characters that change how text around
// them is shown without being seen themselves: the bidirectional controls
// (U+202A-202E embeddings and overrides, U+2066-2069 isolates, U+200E/200F
// marks, U+061C the Arabic letter mark) and the zero-width characters
// (U+200B-200D, U+2060 word joiner, U+FEFF byte order mark). An override in
// a user name or path can make "gpj.exe" read as "exe.jpg", and a zero-width
// space can make two different names look alike.
func isFormat(r rune) bool {
	switch {
	case r < 0x61c:
		return false
	case r == 0x61c, r == 0xfeff, r == 0x2060:
		return true
	case r >= 0x200b && r <= 0x200f:
		return true
	case r >= 0x202a && r <= 0x202e:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// quote quotes s for an error message, shortened so a hostile value cannot
// make the message long.
func quote(s string) string {
	if len(s) > 40 {
		s = CleanText(s, 40)
	}
	return strconv.Quote(s)
}

// CleanText makes attacker-controlled text safe to put in an incident:
// invalid UTF-8 becomes U+FFFD, control characters become \xNN escapes,
// bidirectional controls and zero-width characters (see isFormat) become
// \uNNNN escapes, so text cannot be visually spoofed, and the result is cut
// to at most max bytes on a rune boundary, ending in "…" when cut. Sensors
// call it on usernames, paths, user agents and argv before building an
// incident, the relay on every text field it receives (CleanFormat), the
// map on everything it shows; the result always passes Validate's text
// checks.
func CleanText(s string, max int) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || isControl(r) || isFormat(r) {
			clean = false
			break
		}
	}
	if clean && len(s) <= max {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				r = '\uFFFD'
			}
		}
		if isControl(r) || isFormat(r) {
			if r <= 0xff {
				fmt.Fprintf(&b, "\\x%02x", r)
			} else {
				fmt.Fprintf(&b, "\\u%04x", r)
			}
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	if len(out) <= max {
		return out
	}
	const ell = "…"
	cut := max - len(ell)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	if max < len(ell) {
		return out[:cut]
	}
	return out[:cut] + ell
}

// CleanFormat escapes bidirectional controls and zero-width characters
// (see CleanText) in every free-text field, keeping each within its
// length cap. The relay calls it on every incident it accepts, so text
// from a sensor that does not clean it itself is still shown as written,
// not reordered or hidden. Fields that Validate restricts to ASCII names
// (source, tags, action, geo_source) cannot hold them.
func (in *Incident) CleanFormat() {
	in.ID = cleanFormat(in.ID, MaxID)
	in.City = cleanFormat(in.City, MaxCity)
	in.Org = cleanFormat(in.Org, MaxOrg)
	in.Host = cleanFormat(in.Host, MaxHost)
	in.Title = cleanFormat(in.Title, MaxTitle)
	in.Summary = cleanFormat(in.Summary, MaxSummary)
	if e := in.Evidence; e != nil {
		for _, l := range [][]string{e.Users, e.Paths, e.UserAgents, e.Methods, e.Argv, e.Lists} {
			for i := range l {
				l[i] = cleanFormat(l[i], MaxEvidenceString)
			}
		}
		e.Comm = cleanFormat(e.Comm, MaxEvidenceString)
		e.Parent = cleanFormat(e.Parent, MaxEvidenceString)
		e.Dst = cleanFormat(e.Dst, MaxEvidenceString)
	}
}

// cleanFormat is CleanText for text that already passed checkText; it
// leaves text without format characters untouched (no copy).
func cleanFormat(s string, max int) string {
	for _, r := range s {
		if isFormat(r) {
			return CleanText(s, max)
		}
	}
	return s
}

// MaxClockAhead is how far ahead of the receiver's clock an incident's
// times may be. Five minutes covers an unsynchronised clock on a host
// that runs NTP only now and then; an incident from further in the
// future would outlive every marker on the map.
const MaxClockAhead = 5 * time.Minute

// ErrClockAhead and ErrTooOld mark the errors of CheckTimes, so a receiver
// can count them apart from other rejections.
var (
	ErrClockAhead = errors.New("ahead of the relay's clock")
	ErrTooOld     = errors.New("older than the relay keeps")
)

// CheckTimes checks ts, first_seen and last_seen against the receiver's
// clock now: none may be more than MaxClockAhead ahead of it (the sensor's
// clock is wrong, and such an incident would stay on maps for hours), and
// ts and last_seen may not be older than maxAge (0: no floor). first_seen
// may be older: a slow episode can start long before it is raised, but
// never more than a year before it. The error names the field, the offset
// and how to fix it, in one line.
func (in *Incident) CheckTimes(now time.Time, maxAge time.Duration) error {
	for _, f := range []struct {
		name string
		t    time.Time
		age  time.Duration
	}{
		{"ts", in.TS, maxAge},
		{"last_seen", in.LastSeen, maxAge},
		{"first_seen", in.FirstSeen, 366 * 24 * time.Hour},
	} {
		if f.t.IsZero() {
			continue
		}
		if d := f.t.Sub(now); d > MaxClockAhead {
			return fmt.Errorf("%s: %s is %s %w (at most %s; check the sensor's clock and NTP)",
				f.name, f.t.UTC().Format(time.RFC3339), roughly(d), ErrClockAhead, MaxClockAhead)
		}
		if f.age > 0 && now.Sub(f.t) > f.age {
			return fmt.Errorf("%s: %s is %s old, %w (%s)",
				f.name, f.t.UTC().Format(time.RFC3339), roughly(now.Sub(f.t)), ErrTooOld, roughly(f.age))
		}
	}
	return nil
}

// roughly prints a duration to the second, or in days when it is long
// (year 9999 is millions of hours away, which says nothing).
func roughly(d time.Duration) string {
	if d < 0 || d >= 100*365*24*time.Hour {
		return "over 100 years"
	}
	if d >= 72*time.Hour {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + " days"
	}
	return d.Round(time.Second).String()
}
