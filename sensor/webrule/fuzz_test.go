package webrule

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParse feeds rule files to Parse: it must not panic, and its errors
// are one line.
func FuzzParse(f *testing.F) {
	f.Add([]byte(userRule))
	f.Add([]byte(`{"version": "1", "rules": [{"id": "a", "disabled": true}]}`))
	f.Add([]byte(`{"rules": [{"id": "r", "title": "T", "severity": "low", "category": "xss", "tags": [], "match": [{"in": ["query"], "any": ["<x"], "regex": "<x[a-z]+"}], "examples": {"match": ["GET /?a=<xy HTTP/1.1"], "nomatch": ["GET / HTTP/1.1"]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error on several lines: %q", err)
			}
			return
		}
		for _, r := range s.Rules() {
			if r.ID == "" || len(r.Positive) == 0 || len(r.Negative) == 0 {
				t.Fatalf("accepted rule %+v", r)
			}
		}
	})
}

// FuzzMatch matches fuzzed requests against the full pack: it must not
// panic, and matching twice gives the same hits (no state leaks from one
// call to the next through the pooled scratch).
func FuzzMatch(f *testing.F) {
	for _, r := range append(slices.Clone(benign), attacks...) {
		f.Add(r.Method, r.Path, r.Query, r.UA, r.Version, r.Status, r.User)
	}
	f.Add("GET", "/%%32%65%252e%2", "a=%zz+%2", "() { :; };", "HTTP/1.1", 401, "jeff")
	s := Default()
	f.Fuzz(func(t *testing.T, method, path, query, ua, version string, status int, user string) {
		r := Request{Method: method, Path: path, Query: query, UA: ua, Version: version, Status: status, User: user}
		a := s.Match(&r, nil)
		s.Match(&Request{Method: "GET", Path: "/.env", UA: "sqlmap/1.7"}, nil) // dirty the scratch
		b := s.Match(&r, nil)
		if len(a) != len(b) {
			t.Fatalf("%d hits, then %d", len(a), len(b))
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("hit %d: %v, then %v", i, a[i], b[i])
			}
		}
	})
}
