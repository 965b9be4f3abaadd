package webrule

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/sensor/logparse"
)

// TestSSHGuardWebCorpus replays the "#### Web" section of SSHGuard's
// parser test vectors (testdata/sshguard at the repository root): every
// line SSHGuard calls an attack (services 350, 360, 370) parses and hits
// at least one rule, from the attacker's address; no rule fires on a line
// it calls harmless ("*"), and a line the parser cannot read counts as
// harmless.
func TestSSHGuardWebCorpus(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "sshguard", "tests.txt"))
	if err != nil {
		t.Fatalf("the SSHGuard corpus must be in the repository: %v", err)
	}
	defer f.Close()
	type record struct {
		n                int
		line, want, addr string
	}
	var recs []record
	sc := bufio.NewScanner(f)
	section, n := "", 0
	var pending *record
	for sc.Scan() {
		n++
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "#### "):
			section = strings.TrimPrefix(l, "#### ")
		case section != "Web" || l == "" || strings.HasPrefix(l, "#"):
		case l == "M":
			pending = nil
		case pending == nil:
			recs = append(recs, record{n: n, line: l})
			pending = &recs[len(recs)-1]
		default:
			fs := strings.Fields(l)
			pending.want = fs[0]
			if len(fs) > 1 {
				pending.addr = fs[1]
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	p := logparse.NewAccess(logparse.Options{})
	set := Default()
	var attacks, caught, harmless, quiet int
	for _, r := range recs {
		if r.want != "*" && r.want != "350" && r.want != "360" && r.want != "370" {
			continue // another service's line inside the section
		}
		t.Run("line_"+strconv.Itoa(r.n), func(t *testing.T) {
			ev, ok := p.Line(r.line)
			var hits []Hit
			if ok {
				hits = set.Match(&Request{Method: ev.Method, Path: ev.Path, Query: ev.Query, UA: ev.UA,
					Version: ev.HTTPVersion, Status: ev.Status, User: ev.User}, nil)
			}
			if r.want == "*" {
				harmless++
				if len(hits) > 0 {
					t.Errorf("%q: harmless by SSHGuard, hits %v", r.line, ids(hits))
					return
				}
				quiet++
				return
			}
			attacks++
			switch {
			case !ok:
				t.Errorf("%q: not parsed", r.line)
			case ev.SrcIP.String() != r.addr:
				t.Errorf("%q: address %s, want %s", r.line, ev.SrcIP, r.addr)
			case len(hits) == 0:
				t.Errorf("%q: no rule matched (%+v)", r.line, ev)
			default:
				caught++
			}
		})
	}
	if attacks == 0 || harmless == 0 {
		t.Fatalf("found %d attacks and %d harmless lines in the Web section", attacks, harmless)
	}
	t.Logf("web attacks recognised: %d/%d; harmless lines kept quiet: %d/%d", caught, attacks, quiet, harmless)
}
