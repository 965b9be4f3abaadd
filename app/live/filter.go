package live

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/attackmap/attackmap/incident"
)

// Filter selects the incidents the map shows: markers, arcs, the sidebar
// and the statistics all follow it (Model.SetFilter). Within one field the
// values are alternatives (severity high or critical); the fields combine
// (high or critical, and from host web-1). The zero Filter keeps
// everything.
type Filter struct {
	// Severities keeps incidents of these severities.
	Severities []incident.Severity
	// Types keeps incidents of these detectors: the incident's "source",
	// the names AttackType.Source lists ("ssh_bruteforce").
	Types []string
	// Hosts keeps incidents raised by these sensor hosts (the "host"
	// field; HostView.Name).
	Hosts []string
	// Countries keeps incidents from these attacker countries, as ISO
	// 3166-1 alpha-2 codes ("CN"); matched without regard to case.
	Countries []string
	// Query is a search, one of:
	//   - an IP address: the attacker address equals it ("203.0.113.7",
	//     "2001:db8::1"; IPv4-mapped IPv6 compares as IPv4);
	//   - a CIDR prefix: the attacker address is inside it
	//     ("203.0.113.0/24", "2001:db8::/32");
	//   - any other text: a case-insensitive (ASCII) substring of the
	//     address, title, summary, organisation, city, a tag, an
	//     attempted user name, a requested path or a user agent.
	Query string
	// BlockedOnly keeps incidents whose source the responder blocked
	// (action "blocked <ttl>").
	BlockedOnly bool
}

// Filter limits. A filter lives in the page's URL and is typed or
// pasted by people: the caps keep a hostile link from making every
// incident's match cost thousands of comparisons, and stay well above
// what a person selects (there are 5 severities and 9 detectors; a relay
// has a few sensor hosts).
const (
	// MaxFilterValues caps the values of one field.
	MaxFilterValues = 32
	// MaxFilterValue caps one value, in bytes (a host name is at most
	// incident.MaxHost bytes, a detector name incident.MaxSource).
	MaxFilterValue = 64
	// MaxQuery caps the search text, in bytes.
	MaxQuery = 256
)

// The URL query keys of a filter. "view" (the map's zoom and pan), "relay"
// and "wall" belong to other parts of the page.
const (
	keySeverity = "sev"
	keyType     = "type"
	keyHost     = "host"
	keyCountry  = "cc"
	keyQuery    = "q"
	keyBlocked  = "blocked"
)

// IsZero reports whether f keeps every incident.
func (f Filter) IsZero() bool {
	return len(f.Severities) == 0 && len(f.Types) == 0 && len(f.Hosts) == 0 &&
		len(f.Countries) == 0 && strings.TrimSpace(f.Query) == "" && !f.BlockedOnly
}

// Encode writes f into q under the keys sev, type, host, cc, q and blocked,
// one key per field with comma-separated values
// (sev=critical,high&cc=CN,RU); a field that is empty removes its key, so
// a shared link carries only what is set. Other keys are left alone.
func (f Filter) Encode(q url.Values) {
	sevs := make([]string, len(f.Severities))
	for i, s := range f.Severities {
		sevs[i] = string(s)
	}
	countries := make([]string, len(f.Countries))
	for i, c := range f.Countries {
		countries[i] = strings.ToUpper(c)
	}
	set := func(key string, vals []string) {
		if len(vals) == 0 {
			q.Del(key)
			return
		}
		q.Set(key, strings.Join(vals, ","))
	}
	set(keySeverity, sevs)
	set(keyType, f.Types)
	set(keyHost, f.Hosts)
	set(keyCountry, countries)
	if s := strings.TrimSpace(f.Query); s != "" {
		q.Set(keyQuery, s)
	} else {
		q.Del(keyQuery)
	}
	if f.BlockedOnly {
		q.Set(keyBlocked, "1")
	} else {
		q.Del(keyBlocked)
	}
}

// ParseFilter reads a filter from a page URL's query (the keys Encode
// writes; a key given twice adds its values). Values are trimmed, empty
// ones and repeats dropped. A value that cannot be right (an unknown
// severity, a country that is not two letters, a host or detector name
// with characters no sensor uses, anything over the caps) is left out and
// named in the error: the returned filter always holds the valid rest, so
// a page can apply it and say what it ignored.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	var errs []error // each names what was ignored
	values := func(key string) []string {
		var out []string
		for _, v := range q[key] {
			for part := range strings.SplitSeq(v, ",") {
				part = strings.TrimSpace(part)
				if part == "" || slices.Contains(out, part) {
					continue
				}
				if len(out) == MaxFilterValues {
					errs = append(errs, fmt.Errorf("filter %s: more than %d values", key, MaxFilterValues))
					return out
				}
				out = append(out, part)
			}
		}
		return out
	}
	for _, v := range values(keySeverity) {
		s := incident.Severity(strings.ToLower(v))
		if !s.Valid() {
			errs = append(errs, fmt.Errorf("filter %s: unknown severity %q", keySeverity, clip(v)))
			continue
		}
		if !slices.Contains(f.Severities, s) {
			f.Severities = append(f.Severities, s)
		}
	}
	for _, v := range values(keyType) {
		if !isName(v, incident.MaxSource, false) {
			errs = append(errs, fmt.Errorf("filter %s: %q is not a detector name", keyType, clip(v)))
			continue
		}
		f.Types = append(f.Types, v)
	}
	for _, v := range values(keyHost) {
		if !isName(v, incident.MaxHost, true) {
			errs = append(errs, fmt.Errorf("filter %s: %q is not a host name", keyHost, clip(v)))
			continue
		}
		f.Hosts = append(f.Hosts, v)
	}
	for _, v := range values(keyCountry) {
		if len(v) != 2 || !isAlpha(v[0]) || !isAlpha(v[1]) {
			errs = append(errs, fmt.Errorf("filter %s: %q is not a two-letter country code", keyCountry, clip(v)))
			continue
		}
		if c := strings.ToUpper(v); !slices.Contains(f.Countries, c) {
			f.Countries = append(f.Countries, c)
		}
	}
	if qs := q[keyQuery]; len(qs) > 0 {
		s := strings.TrimSpace(qs[0])
		switch {
		case len(s) > MaxQuery:
			errs = append(errs, fmt.Errorf("filter %s: %d bytes, over the %d byte limit", keyQuery, len(s), MaxQuery))
		case !printable(s):
			errs = append(errs, fmt.Errorf("filter %s: contains control characters", keyQuery))
		default:
			f.Query = s
		}
	}
	if bs := q[keyBlocked]; len(bs) > 0 {
		switch strings.ToLower(strings.TrimSpace(bs[0])) {
		case "1", "true", "yes", "on":
			f.BlockedOnly = true
		case "", "0", "false", "no", "off":
		default:
			errs = append(errs, fmt.Errorf("filter %s: %q is not 1 or 0", keyBlocked, clip(bs[0])))
		}
	}
	if len(errs) == 0 {
		return f, nil
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	// One line, as every error of the app: the page shows it as is.
	return f, errors.New(strings.Join(msgs, "; "))
}

// clip shortens a refused value for an error message shown in the page.
func clip(s string) string { return incident.CleanText(s, 40) }

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isName accepts what detector names are made of ([a-z0-9_]) and, for
// host names, what the relay's token file allows (ASCII letters, digits,
// '.', '_' and '-'), up to max bytes: refusing anything else keeps a link
// from smuggling text into the filter chips.
func isName(s string, max int, host bool) bool {
	if s == "" || len(s) > max || len(s) > MaxFilterValue {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
		case host && (c >= 'A' && c <= 'Z' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return true
}

// Match reports whether f keeps in. Model.SetFilter prepares the filter
// once; Match prepares it on every call, for a single test.
func (f Filter) Match(in *incident.Incident) bool {
	m := compile(f)
	return m.match(in)
}

// matcher is a Filter prepared for matching many incidents: the query
// parsed once, the severities as a bit set.
type matcher struct {
	all       bool
	sevs      uint8 // bit per severity rank; 0 = any
	types     []string
	hosts     []string
	countries []string
	blocked   bool
	addr      netip.Addr   // valid when the query is an address
	prefix    netip.Prefix // valid when the query is a CIDR prefix
	text      string       // the query otherwise
}

func compile(f Filter) matcher {
	m := matcher{all: f.IsZero(), types: f.Types, hosts: f.Hosts, blocked: f.BlockedOnly}
	for _, s := range f.Severities {
		if r := s.Rank(); r >= 0 {
			m.sevs |= 1 << r
		}
	}
	for _, c := range f.Countries {
		m.countries = append(m.countries, strings.ToUpper(c))
	}
	q := strings.TrimSpace(f.Query)
	if a, err := netip.ParseAddr(q); err == nil {
		m.addr = a.Unmap().WithZone("")
	} else if p, err := netip.ParsePrefix(q); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		m.prefix = p.Masked()
	} else {
		m.text = q
	}
	return m
}

func (m *matcher) match(in *incident.Incident) bool {
	if m.all {
		return true
	}
	if m.sevs != 0 {
		r := in.Severity.Rank()
		if r < 0 || m.sevs&(1<<r) == 0 {
			return false
		}
	}
	if len(m.types) > 0 && !slices.Contains(m.types, in.Source) {
		return false
	}
	if len(m.hosts) > 0 && !slices.Contains(m.hosts, in.Host) {
		return false
	}
	if len(m.countries) > 0 && (len(in.Country) != 2 || !slices.ContainsFunc(m.countries, func(c string) bool { return strings.EqualFold(c, in.Country) })) {
		return false
	}
	if m.blocked && !Blocked(in.Action) {
		return false
	}
	switch {
	case m.addr.IsValid():
		a, err := netip.ParseAddr(in.IP)
		return err == nil && a.Unmap().WithZone("") == m.addr
	case m.prefix.IsValid():
		a, err := netip.ParseAddr(in.IP)
		return err == nil && m.prefix.Contains(a.Unmap().WithZone(""))
	case m.text != "":
		return m.matchText(in)
	}
	return true
}

func (m *matcher) matchText(in *incident.Incident) bool {
	for _, s := range [...]string{in.IP, in.Title, in.Summary, in.Org, in.City} {
		if containsFold(s, m.text) {
			return true
		}
	}
	if slices.ContainsFunc(in.Tags, m.has) {
		return true
	}
	if ev := in.Evidence; ev != nil {
		return slices.ContainsFunc(ev.Users, m.has) || slices.ContainsFunc(ev.Paths, m.has) ||
			slices.ContainsFunc(ev.UserAgents, m.has)
	}
	return false
}

func (m *matcher) has(s string) bool { return containsFold(s, m.text) }

// containsFold reports whether sub is in s, ignoring ASCII case, without
// allocating (it runs for every incident the model holds on each filter
// change). Letters outside ASCII compare as they are.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if asciiEqualFold(s[i:i+n], sub) {
			return true
		}
	}
	return false
}

func asciiEqualFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}

// Blocked reports whether an incident's action says its source was
// blocked ("blocked 1h"; not "would block (dry run)" nor "not blocked:
// ...").
func Blocked(action string) bool { return strings.HasPrefix(action, "blocked") }

// Filter returns the filter the model applies.
func (m *Model) Filter() Filter { return m.filter }

// SetFilter changes what the map shows. Markers and arcs of the held
// incidents the filter drops are taken off; those it now keeps, and whose
// marker time has not run out, are put back (settled, without a pulse;
// markers that stay keep their slots, so the page re-renders only what
// changed); the sidebar lists the newest kept incidents; Stats counts the
// kept ones. The work is bounded by Config.MaxIncidents.
func (m *Model) SetFilter(f Filter) {
	f.Severities = slices.Clone(f.Severities)
	f.Types = slices.Clone(f.Types)
	f.Hosts = slices.Clone(f.Hosts)
	f.Countries = slices.Clone(f.Countries)
	m.filter = f
	m.matcher = compile(f)
	var back []*entry
	for _, e := range m.entries {
		keep := m.matcher.match(&e.in)
		switch {
		case e.match && !keep:
			m.unplace(e)
		case !e.match && keep && e.expires.After(m.now):
			back = append(back, e)
		}
		e.match = keep
	}
	// Newest first, and without evicting: when the layers fill up, the
	// older incidents stay off the map, as eviction would have taken them.
	slices.SortFunc(back, func(a, b *entry) int { return cmp.Compare(b.order, a.order) })
	for _, e := range back {
		m.placeAt(e, m.now, Options{}, false)
	}
	m.relabelMarkers()
	m.rebuildSidebar()
	m.touch()
}

// relabelMarkers points every marker's Latest (what a click selects) at
// the newest incident it still shows.
func (m *Model) relabelMarkers() {
	for i := range m.Markers {
		mk := &m.Markers[i]
		var newest *entry
		for e := mk.members; e != nil; e = e.links[onMarker].next {
			if newest == nil || e.order > newest.order {
				newest = e
			}
		}
		if newest != nil && mk.Latest != newest.in.ID {
			mk.Latest = newest.in.ID
			m.dirtyMarker(i)
		}
	}
}
