package webrule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const userRule = `{"version": "site-3", "rules": [
{"id": "site-secret-panel", "title": "Probe of our internal panel", "severity": "high", "category": "admin_probe", "tags": ["site"],
 "match": [{"in": ["path"], "any": ["/internal-panel"]}],
 "examples": {"match": ["GET /internal-panel/ HTTP/1.1"], "nomatch": ["GET /panel HTTP/1.1"]}},
{"id": "sensitive-git", "title": "Git metadata (site override)", "severity": "critical", "category": "sensitive_file", "tags": [],
 "match": [{"in": ["path"], "any": ["/.git/config"]}],
 "examples": {"match": ["GET /.git/config HTTP/1.1"], "nomatch": ["GET /.git/HEAD HTTP/1.1"]}},
{"id": "open-proxy-connect", "disabled": true}
]}`

func TestLoadMergesUserFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "site.json")
	if err := os.WriteFile(p, []byte(userRule), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default().Version() + "+site-3"; s.Version() != want {
		t.Errorf("version %q, want %q", s.Version(), want)
	}
	byID := map[string]*Rule{}
	for _, r := range s.Rules() {
		byID[r.ID] = r
	}
	if len(s.Rules()) != len(Default().Rules()) {
		t.Errorf("%d rules, want %d (one added, one disabled)", len(s.Rules()), len(Default().Rules()))
	}
	t.Run("adds a new rule", func(t *testing.T) {
		if hits := s.Match(&Request{Method: "GET", Path: "/internal-panel/x"}, nil); !hasRule(hits, byID["site-secret-panel"]) {
			t.Fatalf("hits %v", ids(hits))
		}
	})
	t.Run("replaces the rule of the same id", func(t *testing.T) {
		if r := byID["sensitive-git"]; r == nil || r.Severity != "critical" {
			t.Fatalf("sensitive-git is %+v", r)
		}
		if hits := s.Match(&Request{Method: "GET", Path: "/.git/HEAD"}, nil); hasRule(hits, byID["sensitive-git"]) {
			t.Fatalf("the replaced rule still matches its old pattern: %v", ids(hits))
		}
	})
	t.Run("disables a rule", func(t *testing.T) {
		if byID["open-proxy-connect"] != nil {
			t.Fatal("open-proxy-connect is still there")
		}
		if hits := s.Match(&Request{Method: "CONNECT", Path: "example.com:443", Version: "HTTP/1.1"}, nil); len(hits) != 0 {
			t.Fatalf("hits %v", ids(hits))
		}
	})
	t.Run("leaves the default set alone", func(t *testing.T) {
		if hits := Default().Match(&Request{Method: "CONNECT", Path: "example.com:443"}, nil); len(hits) == 0 {
			t.Fatal("Default lost open-proxy-connect")
		}
	})
}

func TestLoadReportsTheFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.json"))
	if err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("err %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	rule := func(body string) string {
		return `{"version": "1", "rules": [{"id": "r1", "title": "T", "severity": "high", "category": "sqli", "tags": [],` + body + `}]}`
	}
	ex := `"examples": {"match": ["GET /a HTTP/1.1"], "nomatch": ["GET /b HTTP/1.1"]}`
	cases := []struct{ name, data, want string }{
		{"not json", `{`, "webrule: unexpected EOF"},
		{"an unknown field", rule(`"match": [{"in": ["path"], "any": ["/a"]}], "colour": 1, ` + ex), `unknown field "colour"`},
		{"a bad id", `{"rules": [{"id": "Bad Id"}]}`, `rule 0: id "Bad Id"`},
		{"a duplicate id", `{"rules": [{"id": "a", "disabled": true}, {"id": "a", "disabled": true}]}`, "rule a: id: defined twice"},
		{"a bad severity", strings.Replace(rule(`"match": [{"in": ["path"], "any": ["/a"]}], `+ex), "high", "hgih", 1), `rule r1: severity: unknown value "hgih"`},
		{"a regex without atoms", rule(`"match": [{"in": ["path"], "regex": "^/a"}], ` + ex), "rule r1: match[0].any: want at least one literal atom"},
		{"a bad regex", rule(`"match": [{"in": ["path"], "any": ["/a"], "regex": "("}], ` + ex), "rule r1: match[0].regex: error parsing regexp"},
		{"an unknown field name", rule(`"match": [{"in": ["cookie"], "any": ["/a"]}], ` + ex), `rule r1: match[0].in: unknown field "cookie"`},
		{"a bad status", rule(`"status": ["4x"], "match": [{"in": ["path"], "any": ["/a"]}], ` + ex), `rule r1: status: "4x"`},
		{"no examples", rule(`"match": [{"in": ["path"], "any": ["/a"]}]`), "rule r1: examples: want at least one"},
		{"a positive example that does not match", rule(`"match": [{"in": ["path"], "any": ["/c"]}], ` + ex), "rule r1: examples.match[0]: does not match"},
		{"a negative example that matches", rule(`"match": [{"in": ["path"], "any": ["/"]}], ` + ex), "rule r1: examples.nomatch[0]: matches"},
		{"no conditions, methods or user", rule(ex), "rule r1: match: a rule without conditions needs methods or user"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want it to contain %q", err, c.want)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("err %q is not one line", err)
			}
		})
	}
}
