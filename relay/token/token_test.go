package token

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const h64 = "5c160b3a93ea3424a72d614843f27964f387201493e3846f164242c0af518377"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
		n             int
	}{
		{"two lines", "# comment\n\nweb-1 " + h64 + " 50.11 8.68\nweb-2 " + strings.ToUpper(h64) + "\n", "", 2},
		{"three fields", "web-1 " + h64 + " 50\n", "line 1: want NAME SHA256-HEX [LAT LON], got 3 fields", 0},
		{"short hash", "web-1 abcd\n", "line 1: hash: want 64 hex digits", 0},
		{"bad name", "w\x01b " + h64 + "\n", "line 1: name:", 0},
		{"lat out of range", "web " + h64 + " 91 0\n", "line 1: lat: 91 is not between -90 and 90", 0},
		{"NaN", "web " + h64 + " NaN 0\n", "line 1: lat: NaN", 0},
		{"duplicate", "a " + h64 + "\na " + h64 + "\n", `line 2: name "a" appears twice`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || s.Len() != tc.n {
				t.Fatalf("%v, %d entries", err, s.Len())
			}
		})
	}
}

func TestAddThenLookup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	tok, err := Add(path, "web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 43 {
		t.Fatalf("token %q", tok)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), tok) || !strings.Contains(string(b), Hash(tok)) {
		t.Fatalf("file holds %q", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	if _, err := Add(path, "web-1", nil); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("duplicate name: %v", err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok, _ := f.Lookup(tok); !ok || e.Name != "web-1" || e.Target != nil {
		t.Fatalf("lookup %+v %v", e, ok)
	}
	for _, bad := range []string{"", tok + "x", tok[1:], Hash(tok)} {
		if _, ok, _ := f.Lookup(bad); ok {
			t.Fatalf("%q accepted", bad)
		}
	}
	// A token added later works without reopening.
	tok2, err := Add(path, "web-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok, err := f.Lookup(tok2); !ok || e.Name != "web-2" || err != nil {
		t.Fatalf("after add: %+v %v %v", e, ok, err)
	}
}

func TestBrokenOrMissingFileRefusesEveryToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	tok, err := Add(path, "web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e, ok, _ := f.Lookup(tok)
	if !ok || !f.Current(e) {
		t.Fatal("good token refused")
	}
	tests := []struct {
		name   string
		break_ func() error
	}{
		{"a malformed line", func() error { return os.WriteFile(path, append(good, "broken line\n"...), 0o600) }},
		{"a deleted file", func() error { return os.Remove(path) }},
		{"an unreadable file", func() error {
			if err := os.Remove(path); err != nil {
				return err
			}
			return os.Mkdir(path, 0o700) // reading a directory fails for root too
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.break_(); err != nil {
				t.Fatal(err)
			}
			_, ok, err := f.Lookup(tok)
			if ok || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("lookup with a broken file: ok %v err %v, want refused with ErrUnavailable", ok, err)
			}
			if f.Current(e) {
				t.Fatal("entry still current with a broken file")
			}
			// Fixed again: the token works again.
			_ = os.RemoveAll(path)
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := f.Lookup(tok); !ok || err != nil {
				t.Fatalf("after the fix: ok %v err %v", ok, err)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	if err := os.WriteFile(path, []byte("# sensors\nweb-1 "+h64+" 50.11 8.68\n\nweb-2 "+h64+"\n# end\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Remove(path, "web-1"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := "# sensors\n\nweb-2 " + h64 + "\n# end\n"; string(b) != want {
		t.Fatalf("file after remove:\n%s\nwant:\n%s", b, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the old file's 0640", st.Mode().Perm())
	}
	if err := Remove(path, "web-1"); !errors.Is(err, ErrNoSuchName) {
		t.Fatalf("removing a missing name: %v", err)
	}
	entries, err := List(path)
	if err != nil || len(entries) != 1 || entries[0].Name != "web-2" {
		t.Fatalf("list %+v %v", entries, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".tokens.tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestWatchSeesRemovalAtOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	tok, err := Add(path, "web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Add(path, "web-2", nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e, _, _ := f.Lookup(tok)
	changed := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// An hour's poll: only fsnotify can see the change in time.
	go func() { _ = f.Watch(ctx, time.Hour, func() { changed <- struct{}{} }); close(done) }()
	defer func() { cancel(); <-done }()
	if err := Remove(path, "web-1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no change seen within 5 s of the removal")
	}
	if f.Current(e) {
		t.Fatal("removed entry still current")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("web-1 " + h64 + " 50.11 8.68\n")
	f.Add("# c\n\na " + h64 + "\nb " + h64 + " -90 180\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(strings.NewReader(in))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		for _, e := range s.entries {
			if CheckName(e.Name) != nil {
				t.Fatalf("bad name %q accepted", e.Name)
			}
			if e.Target != nil && CheckLocation(e.Target.Lat, e.Target.Lon) != nil {
				t.Fatalf("bad location %+v accepted", e.Target)
			}
		}
	})
}
