package kernel

import (
	"strings"
	"testing"
)

func TestCompileRules(t *testing.T) {
	for _, c := range []struct {
		path, err string
	}{
		{"/etc/shadow", ""},
		{"/home/*/.ssh/", ""},
		{"etc/shadow", "not absolute"},
		{"/home/*x/.ssh/", "whole component"},
		{"/home/x*/.ssh/", "whole component"},
		{"/home/*/a/*/b", "at most one"},
		{"/" + strings.Repeat("a", 63), "over 63 bytes"},
		{"/home/*/" + strings.Repeat("a", 31), "over 31 bytes"},
		{"/etc/\x00", "NUL"},
	} {
		_, err := compileRules([]string{c.path})
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("compileRules(%q) = %v, want error containing %q", c.path, err, c.err)
		}
	}
	if _, err := compileRules(make([]string, 9)); err == nil {
		t.Error("nine rules accepted")
	}
	if _, err := compileRules(DefaultSensitivePaths()); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestRuleMatches(t *testing.T) {
	rules, err := compileRules([]string{"/etc/shadow", "/home/*/.ssh/"})
	if err != nil {
		t.Fatal(err)
	}
	shadow, ssh := rules[0], rules[1]
	for _, c := range []struct {
		r    rule
		path string
		want bool
	}{
		{shadow, "/etc/shadow", true},
		{shadow, "/etc/shadow-", true},
		{shadow, "/etc/shado", false},
		{shadow, "/etc/passwd", false},
		{ssh, "/home/bob/.ssh/authorized_keys", true},
		{ssh, "/home/bob/.ssh/", true},
		{ssh, "/home/bob/.sshx", false},
		{ssh, "/home//.ssh/k", false},
		{ssh, "/home/bob/x/.ssh/k", false},
		{ssh, "/home/" + strings.Repeat("b", 63) + "/.ssh/k", true},
		{ssh, "/home/" + strings.Repeat("b", 64) + "/.ssh/k", false}, // the kernel scans 63 bytes
	} {
		if got := c.r.matches(c.path); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.r.prefix+"*"+c.r.tail, c.path, got, c.want)
		}
	}
	h, m := shadow.head()
	if h != 0x6168732f6374652f || m != ^uint64(0) { // "/etc/sha" little-endian
		t.Errorf("head of /etc/shadow = %#x/%#x", h, m)
	}
	h, m = ssh.head()
	if m != 0xffffffffffff || h != 0x2f656d6f682f { // "/home/"
		t.Errorf("head of /home/ = %#x/%#x", h, m)
	}
}

func TestCheckComms(t *testing.T) {
	if err := checkComms(DefaultIgnoreComms()); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "sixteen-bytes-xx", "a\x00b"} {
		if err := checkComms([]string{bad}); err == nil {
			t.Errorf("comm %q accepted", bad)
		}
	}
}

// FuzzCompileRules: any accepted rule fits the kernel's buffers, and its
// 8-byte head never rejects a path that the full match accepts.
func FuzzCompileRules(f *testing.F) {
	for _, p := range append(DefaultSensitivePaths(), "/a/*/b", "/x", "bad") {
		f.Add(p, p+"tail")
	}
	f.Fuzz(func(t *testing.T, p, path string) {
		rules, err := compileRules([]string{p})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		r := rules[0]
		if len(r.prefix) == 0 || len(r.prefix) > maxRulePrefix || len(r.tail) > maxRuleTail {
			t.Fatalf("rule %+v does not fit", r)
		}
		if r.matches(path) {
			var word uint64
			for i := 0; i < 8 && i < len(path); i++ {
				word |= uint64(path[i]) << (8 * i)
			}
			h, m := r.head()
			if word&m != h {
				t.Fatalf("head of %q rejects %q", p, path)
			}
		}
	})
}
