package logparse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/attackmap/attackmap/incident"
)

// checkEvent holds for every event any parser returns, whatever the input.
func checkEvent(t *testing.T, p Parser, line string) {
	ev, ok := p.Line(line)
	if !ok {
		return
	}
	if ev.Kind == "" || ev.Source == "" || ev.TS.IsZero() || !ev.SrcIP.IsValid() || ev.SrcIP.Zone() != "" {
		t.Fatalf("incomplete event %+v from %q", ev, line)
	}
	for _, s := range []struct {
		name, v string
		max     int
	}{{"user", ev.User, MaxUser}, {"path", ev.Path, MaxPath}, {"query", ev.Query, MaxQuery},
		{"ua", ev.UA, MaxUA}, {"method", ev.Method, MaxMethod}, {"vhost", ev.Vhost, MaxVhost}, {"host", ev.Host, incident.MaxHost}} {
		if len(s.v) > s.max || !utf8.ValidString(s.v) || incident.CleanText(s.v, s.max) != s.v {
			t.Fatalf("%s not clean or over %d bytes: %q", s.name, s.max, s.v)
		}
	}
	// The address sshd wrote is in the line: never one taken from elsewhere.
	if ev.Source == "auth_log" && ev.SrcIP.Is4() {
		if !containsAddr(line, ev.SrcIP.String()) {
			t.Fatalf("address %s not in line %q", ev.SrcIP, line)
		}
	}
}

func containsAddr(line, a string) bool {
	for i := 0; i+len(a) <= len(line); i++ {
		if line[i:i+len(a)] == a {
			return true
		}
	}
	return false
}

func FuzzAuth(f *testing.F) {
	addSeeds(f, "auth")
	f.Fuzz(func(t *testing.T, line string) {
		// A fresh parser each time, so that every address must come
		// from the line itself (the pid table is tested elsewhere).
		p := &Auth{st: newStamper(testOpts()), source: "auth_log", pids: newPidTable(8)}
		checkEvent(t, p, line)
	})
}

func FuzzAccess(f *testing.F) {
	addSeeds(f, "access")
	p := NewAccess(testOpts())
	f.Fuzz(func(t *testing.T, line string) { checkEvent(t, p, line) })
}

func FuzzFirewall(f *testing.F) {
	addSeeds(f, "firewall")
	p := NewFirewall(testOpts())
	f.Fuzz(func(t *testing.T, line string) { checkEvent(t, p, line) })
}

func FuzzHeader(f *testing.F) {
	addSeeds(f, "auth")
	addSeeds(f, "firewall")
	st := newStamper(testOpts())
	f.Fuzz(func(t *testing.T, line string) {
		h, ok := st.ParseHeader(line)
		if !ok && h.Msg != line {
			t.Fatalf("unparsed line not returned whole")
		}
		if ok && h.TS.IsZero() {
			t.Fatalf("parsed header without time")
		}
	})
}

// addSeeds adds every line of testdata/seeds/<name>.log to the corpus.
func addSeeds(f *testing.F, name string) {
	b, err := os.ReadFile(filepath.Join("testdata", "seeds", name+".log"))
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f.Add(l)
	}
}
