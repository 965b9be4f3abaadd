package webrule

import (
	"math/bits"
	"slices"
	"strings"
	"sync"

	ahocorasick "github.com/BobuSumisu/aho-corasick"
)

// Hit is one rule that matched a request, and the field where its first
// condition held ("path", "query", "ua", "method", "version", "request").
type Hit struct {
	Rule  *Rule
	Field string
}

// Set is a compiled set of rules. It is safe for concurrent use.
type Set struct {
	version string
	rules   []*Rule
	conds   [][]setCond // per rule, its conditions with atom numbers
	always  []uint64    // rules without conditions: candidates for every request
	fields  [nFields]fieldIndex
	scratch sync.Pool // *scratch
}

// fieldIndex is the automaton of one field.
type fieldIndex struct {
	trie  *ahocorasick.Trie // nil when no rule looks at the field
	atoms []string          // pattern number -> atom
	rules [][]int32         // pattern number -> rules using the atom
}

// setCond is a rule condition with its atoms numbered per field.
type setCond struct {
	c              *cond
	any, all, none [nFields][]int32
}

// maxText caps each field's text in bytes: the access log parser caps
// paths and queries at 1 KiB and user agents at 512 bytes, so this only
// bounds the work for other callers; the request line holds path and
// query together.
const maxText = 4096

// build compiles rules into a Set.
func build(version string, rules []*Rule) (*Set, error) {
	s := &Set{version: version, rules: rules, conds: make([][]setCond, len(rules)),
		always: make([]uint64, (len(rules)+63)/64)}
	ids := make([]map[string]int32, nFields)
	for f := range ids {
		ids[f] = map[string]int32{}
	}
	intern := func(f int, atom string, rule int32) int32 {
		fi := &s.fields[f]
		n, ok := ids[f][atom]
		if !ok {
			n = int32(len(fi.atoms))
			ids[f][atom] = n
			fi.atoms = append(fi.atoms, atom)
			fi.rules = append(fi.rules, nil)
		}
		if !slices.Contains(fi.rules[n], rule) {
			fi.rules[n] = append(fi.rules[n], rule)
		}
		return n
	}
	for ri, r := range rules {
		if len(r.conds) == 0 {
			s.always[ri/64] |= 1 << (ri % 64)
		}
		for ci := range r.conds {
			c := &r.conds[ci]
			sc := setCond{c: c}
			// Every condition must hold, so the first one's atoms are
			// enough to make the rule a candidate: its "any" atoms, or
			// its "all" atoms when it has no "any". Other atoms are only
			// looked up.
			anyTrigger, allTrigger := int32(-1), int32(-1)
			if ci == 0 {
				anyTrigger = int32(ri)
				if len(c.anyS) == 0 {
					allTrigger = int32(ri)
				}
			}
			for _, f := range c.fields {
				for _, a := range c.anyS {
					sc.any[f] = append(sc.any[f], intern(f, a, anyTrigger))
				}
				for _, a := range c.allS {
					sc.all[f] = append(sc.all[f], intern(f, a, allTrigger))
				}
				for _, a := range c.nnS {
					sc.none[f] = append(sc.none[f], intern(f, a, -1))
				}
			}
			s.conds[ri] = append(s.conds[ri], sc)
		}
	}
	for f := range s.fields {
		fi := &s.fields[f]
		for n := range fi.rules {
			fi.rules[n] = slices.DeleteFunc(fi.rules[n], func(r int32) bool { return r < 0 })
		}
		if len(fi.atoms) > 0 {
			b := ahocorasick.NewTrieBuilder()
			for _, a := range fi.atoms {
				b.AddString(a)
			}
			fi.trie = b.Build()
		}
	}
	s.scratch.New = func() any { return s.newScratch() }
	return s, nil
}

// Version returns the rule pack's version ("2026.12.1"; with user files,
// "2026.12.1+theirs").
func (s *Set) Version() string { return s.version }

// Rules returns the rules in order.
func (s *Set) Rules() []*Rule { return slices.Clone(s.rules) }

// scratch is the per-call state of Match, pooled so that Match does not
// allocate.
type scratch struct {
	s    *Set
	text [nFields][3][]byte // raw, decoded once, decoded twice (when they differ)
	nv   [nFields]int
	seen [nFields][]uint64 // atoms that occurred, per field
	cand []uint64          // candidate rules
	f    int               // the field being walked
	mark ahocorasick.WalkFn
}

func (s *Set) newScratch() *scratch {
	sc := &scratch{s: s, cand: make([]uint64, len(s.always))}
	for f := range sc.text {
		sc.seen[f] = make([]uint64, (len(s.fields[f].atoms)+63)/64)
		for v := range sc.text[f] {
			sc.text[f][v] = make([]byte, 0, 256)
		}
	}
	// One func value for the scratch's lifetime: no closure per call.
	sc.mark = func(_, _, pattern int64) bool {
		seen := sc.seen[sc.f]
		if seen[pattern/64]&(1<<(pattern%64)) != 0 {
			return true
		}
		seen[pattern/64] |= 1 << (pattern % 64)
		for _, r := range sc.s.fields[sc.f].rules[pattern] {
			sc.cand[r/64] |= 1 << (r % 64)
		}
		return true
	}
	return sc
}

// Match appends a Hit for every rule that matches r, each rule once, in
// rule order. It does not allocate when nothing matches and hits has
// room for the matches.
func (s *Set) Match(r *Request, hits []Hit) []Hit {
	if s == nil || len(s.rules) == 0 {
		return hits
	}
	sc := s.scratch.Get().(*scratch)
	defer s.scratch.Put(sc)
	copy(sc.cand, s.always)
	for f := range sc.seen {
		clear(sc.seen[f])
		sc.nv[f] = 0
	}
	sc.prepare(r)
	for f := range s.fields {
		if s.fields[f].trie == nil {
			continue
		}
		sc.f = f
		for v := range sc.nv[f] {
			s.fields[f].trie.Walk(sc.text[f][v], sc.mark)
		}
	}
	for w, word := range sc.cand {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &^= 1 << b
			ri := w*64 + b
			if field, ok := sc.eval(ri, r); ok {
				hits = append(hits, Hit{Rule: s.rules[ri], Field: field})
			}
		}
	}
	return hits
}

// prepare fills the texts of the fields that some rule looks at.
func (sc *scratch) prepare(r *Request) {
	fs := &sc.s.fields
	if fs[fPath].trie != nil {
		sc.raw(fPath, r.Path)
		sc.decodeVariants(fPath, false)
	}
	if fs[fQuery].trie != nil && r.Query != "" {
		sc.raw(fQuery, r.Query)
		sc.decodeVariants(fQuery, true)
	}
	if fs[fUA].trie != nil && r.UA != "" {
		sc.raw(fUA, r.UA)
	}
	if fs[fMethod].trie != nil && r.Method != "" {
		sc.raw(fMethod, r.Method)
	}
	if fs[fVersion].trie != nil && r.Version != "" {
		sc.raw(fVersion, r.Version)
	}
	if fs[fRequest].trie != nil {
		// "METHOD path?query VERSION", as the access log wrote it; a
		// request line that was not HTTP is the path alone.
		b := sc.text[fRequest][0][:0]
		if r.Method != "" {
			b = appendLower(b, r.Method)
			b = append(b, ' ')
		}
		b = appendLower(b, r.Path)
		if r.Query != "" {
			b = append(b, '?')
			b = appendLower(b, r.Query)
		}
		if r.Version != "" {
			b = append(b, ' ')
			b = appendLower(b, r.Version)
		}
		sc.text[fRequest][0] = b
		sc.nv[fRequest] = 1
		sc.decodeVariants(fRequest, false)
	}
}

// raw sets a field's first variant: the lower-cased text.
func (sc *scratch) raw(f int, s string) {
	sc.text[f][0] = appendLower(sc.text[f][0][:0], s)
	sc.nv[f] = 1
}

// decodeVariants adds the once- and twice-decoded texts of a field when
// they differ from the one before.
func (sc *scratch) decodeVariants(f int, plus bool) {
	sc.nv[f] = 1
	raw := sc.text[f][0]
	if !needsDecode(raw, plus) {
		return
	}
	d1 := decode(sc.text[f][1][:0], raw, plus)
	sc.text[f][1] = d1
	sc.nv[f] = 2
	if !needsDecode(d1, plus) {
		return
	}
	d2 := decode(sc.text[f][2][:0], d1, plus)
	sc.text[f][2] = d2
	if string(d2) != string(d1) {
		sc.nv[f] = 3
	}
}

// appendLower appends s, ASCII lower-cased and capped at maxText bytes.
func appendLower(b []byte, s string) []byte {
	if room := maxText - len(b); len(s) > room {
		s = s[:max(room, 0)]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

func lowerString(s string) string {
	return string(appendLower(make([]byte, 0, len(s)), s))
}

// needsDecode reports whether decoding would change b.
func needsDecode(b []byte, plus bool) bool {
	for i, c := range b {
		if c == '+' && plus {
			return true
		}
		if c == '%' && i+2 < len(b) && unhex(b[i+1]) >= 0 && unhex(b[i+2]) >= 0 {
			return true
		}
	}
	return false
}

// decode appends src URL-decoded and lower-cased: %XX becomes the byte,
// '+' a space when plus; an invalid escape is kept as it is.
func decode(dst, src []byte, plus bool) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '%' && i+2 < len(src) && unhex(src[i+1]) >= 0 && unhex(src[i+2]) >= 0:
			c = byte(unhex(src[i+1])<<4 | unhex(src[i+2]))
			i += 2
		case c == '+' && plus:
			c = ' '
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// eval reports whether rule ri matches, and the field where its first
// condition held.
func (sc *scratch) eval(ri int, r *Request) (string, bool) {
	rule := sc.s.rules[ri]
	if len(rule.Methods) > 0 && !hasMethod(rule.Methods, r.Method) {
		return "", false
	}
	if !rule.status.empty() && !rule.status.has(r.Status) {
		return "", false
	}
	if rule.User && (r.User == "" || r.User == "-") {
		return "", false
	}
	field := ""
	for ci := range sc.s.conds[ri] {
		c := &sc.s.conds[ri][ci]
		f, ok := sc.holds(c)
		if !ok {
			return "", false
		}
		if ci == 0 {
			field = fieldNames[f]
		}
	}
	if field == "" {
		field = FieldRequest
		if len(rule.Methods) > 0 {
			field = FieldMethod
		}
	}
	return field, true
}

// holds reports whether a condition holds in one of its fields.
func (sc *scratch) holds(c *setCond) (int, bool) {
	for _, f := range c.c.fields {
		seen := sc.seen[f]
		if len(c.any[f]) > 0 && !anySeen(seen, c.any[f]) {
			continue
		}
		if !allSeen(seen, c.all[f]) || anySeen(seen, c.none[f]) {
			continue
		}
		if c.c.re != nil && !sc.anyVariant(f, c.c.re.Match) {
			continue
		}
		if c.c.notRe != nil && sc.anyVariant(f, c.c.notRe.Match) {
			continue
		}
		if len(c.c.notIn) > 0 && sc.isOneOf(f, c.c.notIn) {
			continue
		}
		return f, true
	}
	return 0, false
}

func (sc *scratch) anyVariant(f int, match func([]byte) bool) bool {
	for v := range sc.nv[f] {
		if match(sc.text[f][v]) {
			return true
		}
	}
	return false
}

func anySeen(seen []uint64, atoms []int32) bool {
	for _, n := range atoms {
		if seen[n/64]&(1<<(n%64)) != 0 {
			return true
		}
	}
	return false
}

func allSeen(seen []uint64, atoms []int32) bool {
	for _, n := range atoms {
		if seen[n/64]&(1<<(n%64)) == 0 {
			return false
		}
	}
	return true
}

func hasMethod(methods []string, m string) bool {
	for _, x := range methods {
		if strings.EqualFold(x, m) {
			return true
		}
	}
	return false
}

// isOneOf reports whether a field's raw (lower-cased) text is exactly one
// of list.
func (sc *scratch) isOneOf(f int, list []string) bool {
	if sc.nv[f] == 0 {
		return false
	}
	for _, x := range list {
		if string(sc.text[f][0]) == x {
			return true
		}
	}
	return false
}
