package webrule

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/incident"
)

// TestRuleExamples runs every rule's own examples against the full pack.
func TestRuleExamples(t *testing.T) {
	s := Default()
	for _, r := range s.Rules() {
		t.Run(r.ID, func(t *testing.T) {
			for i := range r.Positive {
				if hits := s.Match(&r.Positive[i], nil); !hasRule(hits, r) {
					t.Errorf("match[%d] %+v: no hit (hits %v)", i, r.Positive[i], ids(hits))
				}
			}
			for i := range r.Negative {
				if hits := s.Match(&r.Negative[i], nil); hasRule(hits, r) {
					t.Errorf("nomatch[%d] %+v: hit", i, r.Negative[i])
				}
			}
		})
	}
}

// TestEveryRuleHasExamplesAndMetadata checks the pack's own discipline.
func TestEveryRuleHasExamplesAndMetadata(t *testing.T) {
	rules := Default().Rules()
	cves := 0
	for _, r := range rules {
		if len(r.Positive) == 0 || len(r.Negative) == 0 {
			t.Errorf("%s: want at least one positive and one negative example", r.ID)
		}
		if !r.Severity.Valid() || r.Title == "" || !slices.Contains(categories, r.Category) {
			t.Errorf("%s: bad severity, title or category", r.ID)
		}
		if r.Category == CategoryCVE {
			cves++
			if r.Severity != incident.High && r.Severity != incident.Critical {
				t.Errorf("%s: a cve rule must be high or critical, is %s", r.ID, r.Severity)
			}
			if !slices.ContainsFunc(r.Tags, func(tag string) bool { return strings.HasPrefix(tag, "cve-") }) {
				t.Errorf("%s: a cve rule needs its CVE id in tags", r.ID)
			}
		}
	}
	t.Logf("%d rules, %d cve rules", len(rules), cves)
}

func ids(hits []Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.Rule.ID+"@"+h.Field)
	}
	return out
}

func TestMatchDoesNotAllocateOnBenignRequests(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items: allocation counts are meaningless")
	}
	s := Default()
	hits := make([]Hit, 0, 8)
	for _, r := range benign {
		s.Match(&r, hits[:0]) // warm the pool
		if n := testing.AllocsPerRun(100, func() { hits = s.Match(&r, hits[:0]) }); n != 0 {
			t.Errorf("%+v: %v allocations per Match, want 0", r, n)
		}
		if len(hits) != 0 {
			t.Errorf("%+v: benign request hit %v", r, ids(hits))
		}
	}
}

// benign is ordinary browsing, used by the allocation test and the
// benchmarks.
var benign = []Request{
	{Method: "GET", Path: "/", Version: "HTTP/1.1", Status: 200, UA: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36"},
	{Method: "GET", Path: "/blog/2024/03/how-we-moved-to-go", Version: "HTTP/2.0", Status: 200, UA: "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"},
	{Method: "GET", Path: "/search", Query: "q=union+station+select+a+seat&page=2", Version: "HTTP/1.1", Status: 200, UA: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1"},
	{Method: "POST", Path: "/api/v1/orders", Query: "utm_source=newsletter&utm_medium=email%20campaign", Version: "HTTP/1.1", Status: 201, UA: "okhttp/4.12.0"},
	{Method: "GET", Path: "/wp-content/themes/twentytwentyfour/style.css", Query: "ver=6.4.3", Version: "HTTP/1.1", Status: 200, UA: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
}

func TestMatchDecodesOnceAndTwice(t *testing.T) {
	s := Default()
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"raw traversal in the path", Request{Method: "GET", Path: "/a/../../etc/passwd"}, "traversal-dotdot"},
		{"encoded once in the query", Request{Method: "GET", Path: "/dl", Query: "f=..%2F..%2Fetc%2Fpasswd"}, "traversal-dotdot"},
		{"encoded twice in the path", Request{Method: "GET", Path: "/%252e%252e/%252e%252e/etc/passwd"}, "traversal-dotdot"},
		{"plus is a space in the query", Request{Method: "GET", Path: "/p", Query: "id=1+union+select+1,2"}, "sqli-union-select"},
		{"upper case", Request{Method: "GET", Path: "/P", Query: "ID=1%20UNION%20SELECT%201"}, "sqli-union-select"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if hits := s.Match(&c.req, nil); !slices.ContainsFunc(hits, func(h Hit) bool { return h.Rule.ID == c.want }) {
				t.Fatalf("hits %v, want %s", ids(hits), c.want)
			}
		})
	}
}

func TestDecodeLeavesInvalidEscapes(t *testing.T) {
	cases := []struct{ in, want string }{
		{"%2e%2E%zz%4", "..%zz%4"},
		{"a+b%2Bc", "a b+c"},
		{"%%32%65", "%2e"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := string(decode(nil, []byte(c.in), true)); got != c.want {
				t.Fatalf("decode(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestMatchIsSafeForConcurrentUse(t *testing.T) {
	s := Default()
	want := make([][]Hit, len(attacks))
	for i := range attacks {
		want[i] = s.Match(&attacks[i], nil)
	}
	done := make(chan string)
	for g := range 4 {
		go func() {
			for n := range 200 {
				i := (g + n) % len(attacks)
				if got := s.Match(&attacks[i], nil); !slices.Equal(got, want[i]) {
					done <- fmt.Sprintf("attack %d: %v, want %v", i, ids(got), ids(want[i]))
					return
				}
			}
			done <- ""
		}()
	}
	for range 4 {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}
