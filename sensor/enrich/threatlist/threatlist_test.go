package threatlist

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestParsesTheCommonFormats(t *testing.T) {
	for _, c := range []struct {
		file string
		want string
		bad  int
	}{
		{"feodo.csv", "51.75.144.43/32 162.243.103.246/32", 0},
		{"et-compromised.txt", "1.12.231.30/32 2.56.10.0/32 185.220.101.34/32", 0},
		{"drop.txt", "1.10.16.0/20 2001:db8:1000::/36", 2},
	} {
		t.Run(c.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ps, bad, err := Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(ps); got != "["+c.want+"]" || bad != c.bad {
				t.Fatalf("got %s (bad %d), want [%s] (bad %d)", got, bad, c.want, c.bad)
			}
		})
	}
}

func TestMatchesAddressesAndNetworks(t *testing.T) {
	s, err := New(Options{Sources: []Source{
		{Name: "feodo", Path: "testdata/feodo.csv"},
		{Name: "et-compromised", Path: "testdata/et-compromised.txt"},
		{Name: "drop", Path: "testdata/drop.txt"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]string{
		"51.75.144.43":          "feodo",
		"185.220.101.34":        "et-compromised",
		"::ffff:185.220.101.34": "et-compromised",
		"1.10.20.1":             "drop",
		"1.10.32.1":             "",
		"2001:db8:1fff::1":      "drop",
		"2001:db8:2000::1":      "",
		"8.8.8.8":               "",
	} {
		if got := strings.Join(s.Match(netip.MustParseAddr(ip)), ","); got != want {
			t.Errorf("Match(%s) = %q, want %q", ip, got, want)
		}
	}
}

func TestRefusesBadSources(t *testing.T) {
	for _, src := range []Source{
		{Name: "Bad Name", Path: "testdata/drop.txt"},
		{Name: "x"},
		{Name: "x", Path: "a", URL: "http://b"},
		{Name: "x", URL: "ftp://b"},
		{Name: "x", Path: "testdata/missing.txt"},
	} {
		if _, err := New(Options{Sources: []Source{src}}); err == nil {
			t.Errorf("%+v accepted", src)
		}
	}
}

func TestReloadsAChangedFileAndKeepsTheOldCopyOnFailure(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mine.txt")
	os.WriteFile(p, []byte("203.0.113.7\n"), 0o644)
	s, err := New(Options{Sources: []Source{{Name: "mine", Path: p}}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("203.0.113.8\n"), 0o644)
	s.Refresh(context.Background())
	if s.Match(netip.MustParseAddr("203.0.113.8")) == nil || s.Match(netip.MustParseAddr("203.0.113.7")) != nil {
		t.Fatal("not reloaded")
	}
	os.WriteFile(p, []byte(strings.Repeat("x", 5000)+"\n"), 0o644) // not a list
	s.Refresh(context.Background())
	if s.Match(netip.MustParseAddr("203.0.113.8")) == nil {
		t.Fatal("a broken file replaced the previous copy")
	}
}

func TestFetchesURLs(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 1 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "# ET compromised\n198.51.100.9")
	}))
	defer srv.Close()
	s, err := New(Options{Sources: []Source{{Name: "et", URL: srv.URL + "/compromised-ips.txt"}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Refresh(context.Background())
	ip := netip.MustParseAddr("198.51.100.9")
	if got := s.Match(ip); len(got) != 1 || got[0] != "et" {
		t.Fatalf("Match = %v", got)
	}
	s.Refresh(context.Background()) // 503: the previous copy stays
	if got := s.Match(ip); len(got) != 1 {
		t.Fatalf("after a failed refresh Match = %v", got)
	}
	if s.Sizes()["et"] != 1 {
		t.Errorf("Sizes = %v", s.Sizes())
	}
}

func TestCapsTheListSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.txt")
	os.WriteFile(p, []byte(strings.Repeat("203.0.113.7\n", 100)), 0o644)
	if _, err := New(Options{Sources: []Source{{Name: "big", Path: p}}, MaxBytes: 100}); err == nil {
		t.Fatal("oversized list accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"feodo.csv", "et-compromised.txt", "drop.txt"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		f.Add(b)
	}
	f.Add([]byte("1.2.3.4:443\n[::1]:80\n\"::ffff:1.2.3.0/120\"\nfe80::1%eth0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, _, err := Parse(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("bad prefix %v", p)
			}
			if p.Addr().Is4() && p.Bits() < 8 || p.Addr().Is6() && p.Bits() < 16 {
				t.Fatalf("too wide %v", p)
			}
		}
	})
}
