package webrule

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/attackmap/attackmap/incident"
)

// Categories of rules.
const (
	CategorySensitiveFile = "sensitive_file"
	CategoryBackdoor      = "backdoor"
	CategoryTraversal     = "traversal"
	CategorySQLi          = "sqli"
	CategoryXSS           = "xss"
	CategoryCmdInjection  = "cmd_injection"
	CategoryAdminProbe    = "admin_probe"
	CategoryScannerUA     = "scanner_ua"
	CategoryOpenProxy     = "open_proxy"
	// CategoryProtocol: invalid HTTP versions, request lines that are not
	// HTTP (TLS, SSH, RDP bytes), w00tw00t, methods that are not tokens.
	CategoryProtocol = "protocol"
	// CategoryWordPress: plugin, theme, user and xmlrpc probing.
	CategoryWordPress = "wordpress"
	// CategoryLogin: brute-force evidence, such as a POST to wp-login.php
	// answered 200 (a failed login) or a 401 to a request with a user.
	CategoryLogin = "login"
	CategoryCVE   = "cve"
)

var categories = []string{CategorySensitiveFile, CategoryBackdoor, CategoryTraversal, CategorySQLi,
	CategoryXSS, CategoryCmdInjection, CategoryAdminProbe, CategoryScannerUA, CategoryOpenProxy,
	CategoryProtocol, CategoryWordPress, CategoryLogin, CategoryCVE}

// Fields a condition can look at, as Hit.Field names them.
const (
	FieldPath    = "path"
	FieldQuery   = "query"
	FieldUA      = "ua"
	FieldMethod  = "method"
	FieldVersion = "version"
	FieldRequest = "request"
)

// fieldNames is indexed by the field numbers below.
var fieldNames = [nFields]string{FieldPath, FieldQuery, FieldUA, FieldMethod, FieldVersion, FieldRequest}

const (
	fPath = iota
	fQuery
	fUA
	fMethod
	fVersion
	fRequest
	nFields
)

// Request is one HTTP request as a web server logged it. Strings are raw
// (as logged, URL-encoded).
type Request struct {
	Method, Path, Query, UA, Version string // Version e.g. "HTTP/1.1"; "" when the log line had none
	Status                           int    // 0 when unknown (error-log lines)
	User                             string // the authenticated user field of the access log ("" when "-")
}

// Rule is one detection rule.
type Rule struct {
	ID       string            // stable, e.g. "cve-2021-44228-log4shell", "sqli-union-select"
	Title    string            // precise: "Log4Shell exploit attempt (CVE-2021-44228)"
	Severity incident.Severity // github.com/attackmap/attackmap/incident
	Category string            // one of the Category* constants
	Tags     []string          // lower-case; CVE ids as "cve-2021-44228"

	// Methods, Status and User restrict the requests the rule applies to
	// (see the package documentation); Conditions must all hold.
	Methods    []string
	Status     []string
	User       bool
	Conditions []Condition

	// Positive and Negative are the rule's own examples: requests it must
	// and must not match.
	Positive, Negative []Request

	// Compiled by Parse.
	status statusSet
	conds  []cond
}

// Condition is one clause of a rule, as written in the rule file.
type Condition struct {
	In       []string `json:"in"`
	Any      []string `json:"any,omitempty"`
	All      []string `json:"all,omitempty"`
	None     []string `json:"none,omitempty"`
	Regex    string   `json:"regex,omitempty"`
	NotRegex string   `json:"not_regex,omitempty"`
	NotIn    []string `json:"not_in,omitempty"`
}

// cond is a compiled Condition; a Set maps its atoms to automaton
// patterns (setCond), so that one Rule can sit in several Sets.
type cond struct {
	fields          []int
	re, notRe       *regexp.Regexp
	anyS, allS, nnS []string // lower-cased atoms
	notIn           []string // lower-cased whole values
}

// statusSet holds status classes (1..5 for 1xx..5xx) and exact codes.
type statusSet struct {
	classes uint8
	codes   []int
}

func (s *statusSet) empty() bool { return s.classes == 0 && len(s.codes) == 0 }

func (s *statusSet) has(code int) bool {
	if code < 100 || code > 999 {
		return false
	}
	if c := code / 100; c <= 7 && s.classes&(1<<c) != 0 {
		return true
	}
	return slices.Contains(s.codes, code)
}

// Example is a rule example as the file writes it: a request line, or an
// object with the other fields.
type example struct {
	Req    string `json:"req"`
	Status int    `json:"status"`
	UA     string `json:"ua"`
	User   string `json:"user"`
}

func (e *example) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &e.Req)
	}
	type plain example
	var p plain
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return err
	}
	*e = example(p)
	return nil
}

// request turns an example into a Request: the line splits at its first
// and last spaces like an access log's request; a line that does not end
// in an HTTP version is kept whole as the path, as the access log parser
// does with request lines that are not HTTP.
func (e example) request() Request {
	r := Request{Status: e.Status, UA: e.UA, User: e.User}
	i := strings.IndexByte(e.Req, ' ')
	j := strings.LastIndexByte(e.Req, ' ')
	if i <= 0 || j <= i || !strings.HasPrefix(e.Req[j+1:], "HTTP/") {
		r.Path = e.Req
		return r
	}
	r.Method, r.Version = e.Req[:i], e.Req[j+1:]
	r.Path, r.Query, _ = strings.Cut(e.Req[i+1:j], "?")
	return r
}

type ruleJSON struct {
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	Severity incident.Severity `json:"severity"`
	Category string            `json:"category"`
	Tags     []string          `json:"tags"`
	Methods  []string          `json:"methods"`
	Status   []string          `json:"status"`
	User     bool              `json:"user"`
	Match    []Condition       `json:"match"`
	Examples struct {
		Match   []example `json:"match"`
		NoMatch []example `json:"nomatch"`
	} `json:"examples"`
	Disabled bool `json:"disabled"`
}

type fileJSON struct {
	Version string     `json:"version"`
	Rules   []ruleJSON `json:"rules"`
}

// Limits on a rule file, so that a mistaken or hostile file cannot make
// the automaton or a regular expression huge.
const (
	maxFileSize = 4 << 20 // the embedded pack is ~100 KiB
	maxAtom     = 256     // longer literals belong in a regex
	maxRegex    = 1024
)

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`)

// file is one parsed rule file: its version, its rules in order, and the
// ids it disables.
type file struct {
	version  string
	rules    []*Rule
	disabled []string
}

// parseFile decodes and checks one rule file. Errors are one line and
// name the rule id and the field.
func parseFile(data []byte) (*file, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("webrule: rule file larger than %d bytes", maxFileSize)
	}
	var fj fileJSON
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&fj); err != nil {
		return nil, fmt.Errorf("webrule: %s", oneLine(err.Error()))
	}
	if d.More() {
		return nil, errors.New("webrule: data after the rule file's object")
	}
	f := &file{version: fj.Version}
	if len(f.version) > 64 || strings.ContainsFunc(f.version, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return nil, fmt.Errorf("webrule: version %q: at most 64 printable characters", f.version)
	}
	seen := map[string]bool{}
	for i := range fj.Rules {
		rj := &fj.Rules[i]
		if !idRE.MatchString(rj.ID) {
			return nil, fmt.Errorf("webrule: rule %d: id %q: want 1-100 characters of [a-z0-9._-]", i, rj.ID)
		}
		if seen[rj.ID] {
			return nil, fmt.Errorf("webrule: rule %s: id: defined twice", rj.ID)
		}
		seen[rj.ID] = true
		if rj.Disabled {
			f.disabled = append(f.disabled, rj.ID)
			continue
		}
		r, err := compileRule(rj)
		if err != nil {
			return nil, fmt.Errorf("webrule: rule %s: %s", rj.ID, oneLine(err.Error()))
		}
		f.rules = append(f.rules, r)
	}
	return f, nil
}

func compileRule(rj *ruleJSON) (*Rule, error) {
	r := &Rule{ID: rj.ID, Title: rj.Title, Severity: rj.Severity, Category: rj.Category,
		Tags: rj.Tags, Methods: rj.Methods, Status: rj.Status, User: rj.User, Conditions: rj.Match}
	if r.Title == "" || len(r.Title) > 200 || incident.CleanText(r.Title, 200) != r.Title {
		return nil, fmt.Errorf("title: want 1-200 printable characters")
	}
	if !r.Severity.Valid() {
		return nil, fmt.Errorf("severity: unknown value %q", r.Severity)
	}
	if !slices.Contains(categories, r.Category) {
		return nil, fmt.Errorf("category: unknown value %q", r.Category)
	}
	for _, t := range r.Tags {
		if t == "" || t != strings.ToLower(t) || len(t) > 64 || incident.CleanText(t, 64) != t {
			return nil, fmt.Errorf("tags: %q: want lower-case, 1-64 printable characters", t)
		}
	}
	for i, m := range r.Methods {
		if m == "" || len(m) > 32 || strings.ContainsAny(m, " \t\r\n") {
			return nil, fmt.Errorf("methods: %q: want a method name", m)
		}
		r.Methods[i] = strings.ToUpper(m)
	}
	for _, s := range r.Status {
		switch {
		case len(s) == 3 && s[0] >= '1' && s[0] <= '7' && strings.EqualFold(s[1:], "xx"):
			r.status.classes |= 1 << (s[0] - '0')
		default:
			n, err := strconv.Atoi(s)
			if err != nil || n < 100 || n > 999 {
				return nil, fmt.Errorf("status: %q: want a class like \"4xx\" or a code like \"401\"", s)
			}
			r.status.codes = append(r.status.codes, n)
		}
	}
	if len(r.Conditions) == 0 && len(r.Methods) == 0 && !r.User {
		return nil, errors.New("match: a rule without conditions needs methods or user")
	}
	for i, c := range r.Conditions {
		cc, err := compileCond(c)
		if err != nil {
			return nil, fmt.Errorf("match[%d].%s", i, err)
		}
		r.conds = append(r.conds, cc)
	}
	for _, e := range rj.Examples.Match {
		r.Positive = append(r.Positive, e.request())
	}
	for _, e := range rj.Examples.NoMatch {
		r.Negative = append(r.Negative, e.request())
	}
	if len(r.Positive) == 0 || len(r.Negative) == 0 {
		return nil, errors.New("examples: want at least one \"match\" and one \"nomatch\" example")
	}
	return r, nil
}

func compileCond(c Condition) (cond, error) {
	var cc cond
	if len(c.In) == 0 {
		return cc, errors.New("in: want at least one field")
	}
	for _, name := range c.In {
		f := slices.Index(fieldNames[:], name)
		if f < 0 {
			return cc, fmt.Errorf("in: unknown field %q", name)
		}
		if slices.Contains(cc.fields, f) {
			return cc, fmt.Errorf("in: field %q twice", name)
		}
		cc.fields = append(cc.fields, f)
	}
	if len(c.Any)+len(c.All) == 0 {
		return cc, errors.New("any: want at least one literal atom in any or all (the prefilter)")
	}
	lower := func(name string, atoms []string) ([]string, error) {
		var out []string
		for _, a := range atoms {
			if a == "" || len(a) > maxAtom {
				return nil, fmt.Errorf("%s: %q: want 1-%d bytes", name, a, maxAtom)
			}
			out = append(out, lowerString(a))
		}
		return out, nil
	}
	var err error
	if cc.anyS, err = lower("any", c.Any); err != nil {
		return cc, err
	}
	if cc.allS, err = lower("all", c.All); err != nil {
		return cc, err
	}
	if cc.nnS, err = lower("none", c.None); err != nil {
		return cc, err
	}
	if cc.notIn, err = lower("not_in", c.NotIn); err != nil {
		return cc, err
	}
	if cc.re, err = compileRE("regex", c.Regex); err != nil {
		return cc, err
	}
	if cc.notRe, err = compileRE("not_regex", c.NotRegex); err != nil {
		return cc, err
	}
	return cc, nil
}

// compileRE compiles a rule's regular expression case-insensitively (the
// text it runs on is lower-cased already; (?i) forgives upper-case in the
// rule) and with . matching newlines.
func compileRE(name, expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	if len(expr) > maxRegex {
		return nil, fmt.Errorf("%s: longer than %d bytes", name, maxRegex)
	}
	re, err := regexp.Compile("(?is)" + expr)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", name, oneLine(err.Error()))
	}
	return re, nil
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

//go:embed rules.json
var embedded []byte

// Default returns the embedded rule pack, compiled once.
func Default() *Set { return defaultSet() }

var defaultSet = sync.OnceValue(func() *Set {
	s, err := Parse(embedded)
	if err != nil {
		panic("webrule: the embedded rule pack is invalid: " + err.Error())
	}
	return s
})

// Parse compiles one rule file into a Set and checks every rule against
// its own examples.
func Parse(data []byte) (*Set, error) {
	f, err := parseFile(data)
	if err != nil {
		return nil, err
	}
	s, err := build(f.version, f.rules)
	if err != nil {
		return nil, err
	}
	if err := s.checkExamples(f.rules); err != nil {
		return nil, err
	}
	return s, nil
}

// Load returns Default() with user rule files merged over it: a rule with
// an id already present replaces it, a new id is added, and a rule with
// "disabled": true removes the rule of its id. Every user rule is checked
// against its own examples.
func Load(paths ...string) (*Set, error) {
	base := Default()
	if len(paths) == 0 {
		return base, nil
	}
	rules := slices.Clone(base.rules)
	version := base.version
	var mine []*Rule
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("webrule: reading rules: %w", err)
		}
		f, err := parseFile(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, id := range f.disabled {
			rules = slices.DeleteFunc(rules, func(r *Rule) bool { return r.ID == id })
			mine = slices.DeleteFunc(mine, func(r *Rule) bool { return r.ID == id })
		}
		for _, r := range f.rules {
			if i := slices.IndexFunc(rules, func(o *Rule) bool { return o.ID == r.ID }); i >= 0 {
				rules[i] = r
			} else {
				rules = append(rules, r)
			}
			mine = slices.DeleteFunc(mine, func(o *Rule) bool { return o.ID == r.ID })
			mine = append(mine, r)
		}
		v := f.version
		if v == "" {
			v = "local"
		}
		version += "+" + v
	}
	s, err := build(version, rules)
	if err != nil {
		return nil, err
	}
	if err := s.checkExamples(mine); err != nil {
		return nil, err
	}
	return s, nil
}

// checkExamples matches each rule's examples against the whole set: a
// positive example must be among the hits, a negative one must not.
func (s *Set) checkExamples(rules []*Rule) error {
	var hits []Hit
	for _, r := range rules {
		for i := range r.Positive {
			hits = s.Match(&r.Positive[i], hits[:0])
			if !hasRule(hits, r) {
				return fmt.Errorf("webrule: rule %s: examples.match[%d]: does not match", r.ID, i)
			}
		}
		for i := range r.Negative {
			hits = s.Match(&r.Negative[i], hits[:0])
			if hasRule(hits, r) {
				return fmt.Errorf("webrule: rule %s: examples.nomatch[%d]: matches", r.ID, i)
			}
		}
	}
	return nil
}

func hasRule(hits []Hit, r *Rule) bool {
	for _, h := range hits {
		if h.Rule == r {
			return true
		}
	}
	return false
}
