package tools

import (
	"net/netip"
	"strings"
	"testing"
)

func TestLineAddrFindsTheClient(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"combined access line", `127.20.0.9 - - [01/Dec/2026:04:23:08 +0000] "GET /admin HTTP/1.1" 404 153 "-" "gobuster/3.5"`, "127.20.0.9"},
		{"ipv6 access line", `::1 - - [01/Dec/2026:04:23:08 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/7.88.1"`, "::1"},
		{"failed password", "Failed password for invalid user admin from 127.20.0.1 port 43036 ssh2", "127.20.0.1"},
		{"sshd -E line with CR", "Failed password for root from 127.20.0.4 port 40000 ssh2\r", "127.20.0.4"},
		{"verbose connection line names the client, not the server", `Connection from 127.20.0.5 port 39173 on 127.0.0.1 port 41925 rdomain ""`, "127.20.0.5"},
		{"username that says port", "Invalid user x from 10.0.0.1 port 1 from 127.20.0.2 port 5555", "127.20.0.2"},
		{"disconnected, address after the user", "Disconnected from invalid user admin 127.20.0.1 port 43006 [preauth]", "127.20.0.1"},
		{"mapped address", `::ffff:127.20.0.3 - - [01/Dec/2026:04:23:08 +0000] "GET / HTTP/1.1" 200 5 "-" "-"`, "127.20.0.3"},
		{"no address", "Server listening on :: port", ""},
		{"no port", "Received signal 15; terminating.", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := lineAddr(tt.line)
			if tt.want == "" {
				if ok {
					t.Errorf("lineAddr(%q) = %s, want none", tt.line, got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Errorf("lineAddr(%q) = %s, %v; want %s", tt.line, got, ok, tt.want)
			}
		})
	}
}

func TestNewerThanReadsTheSSHDBanner(t *testing.T) {
	tests := []struct {
		banner       string
		major, minor int
		want         bool
	}{
		{"OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15", 9, 8, false},
		{"OpenSSH_9.8p1, OpenSSL 3.3.1", 9, 8, true},
		{"OpenSSH_10.0p2 Debian-5, OpenSSL 3.5.0", 9, 8, true},
		{"OpenSSH_9.10, LibreSSL", 9, 8, true},
		{"unknown option -- V", 9, 8, false},
	}
	for _, tt := range tests {
		t.Run(tt.banner, func(t *testing.T) {
			if got := newerThan(tt.banner, tt.major, tt.minor); got != tt.want {
				t.Errorf("newerThan(%q, %d, %d) = %v, want %v", tt.banner, tt.major, tt.minor, got, tt.want)
			}
		})
	}
}

// FuzzLineAddr checks that an address lineAddr returns was written in the
// line, whatever an attacker put around it. Seeds: testdata/fuzz/FuzzLineAddr.
func FuzzLineAddr(f *testing.F) {
	f.Fuzz(func(t *testing.T, line string) {
		a, ok := lineAddr(line)
		if !ok {
			return
		}
		if !a.IsValid() || a.Is4In6() {
			t.Fatalf("lineAddr(%q) = %v: not a valid unmapped address", line, a)
		}
		for _, w := range strings.Split(strings.TrimRight(line, "\r"), " ") {
			if b, err := netip.ParseAddr(w); err == nil && b.Unmap() == a {
				return
			}
		}
		t.Fatalf("lineAddr(%q) = %s, which is not a word of the line", line, a)
	})
}
