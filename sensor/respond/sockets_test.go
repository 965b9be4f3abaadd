package respond

import (
	"net/netip"
	"strings"
	"testing"
)

func TestSessionsAreEstablishedSSHConnectionsExceptOpenSSHPreAuth(t *testing.T) {
	cases := []struct {
		name, addr string
		want       bool
	}{
		{"an authenticated OpenSSH session", "192.168.0.1", true},
		{"a connection OpenSSH shows as pre-auth (a login attempt)", "192.168.0.2", false},
		{"a closed connection in TIME_WAIT", "192.168.0.3", false},
		{"an established connection to another port", "192.168.0.4", false},
		{"a connection held by something that is not OpenSSH", "192.168.0.5", true},
		{"an IPv6 connection held by something that is not OpenSSH", "2001:db8::99", true},
		{"an IPv4-mapped pre-auth connection on the IPv6 socket", "192.168.0.6", false},
		{"an address with no connection", "192.168.0.7", false},
	}
	for _, discover := range []bool{false, true} {
		p := newProcSessions("testdata/proc", []int{22})
		name := "configured port"
		if discover {
			// No configured port: sshd's listening port is found in the
			// process table.
			p = newProcSessions("testdata/proc", nil)
			p.refresh()
			name = "discovered port"
		}
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				got, err := p.hasSession(netip.MustParseAddr(c.addr))
				if err != nil {
					t.Fatal(err)
				}
				if got != c.want {
					t.Fatalf("hasSession(%s) = %v, want %v", c.addr, got, c.want)
				}
			})
		}
	}
}

func TestMissingSocketTableIsAnErrorNotPermission(t *testing.T) {
	p := newProcSessions(t.TempDir(), []int{22})
	if _, err := p.hasSession(netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Fatal("no error without /proc/net/tcp")
	}
}

func TestAuthenticatedTitle(t *testing.T) {
	for title, want := range map[string]bool{
		"sshd: alice@pts/0":        true,
		"sshd: bob@notty":          true,
		"sshd-session: root@pts/3": true,
		"sshd: root [priv]":        false,
		"sshd: unknown [net]":      false,
		"sshd: root [preauth]":     false,
		"sshd-auth: root [net]":    false,
		"sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups": false,
		"bash: x@y": false,
		"":          false,
	} {
		if got := authenticatedTitle(title); got != want {
			t.Errorf("authenticatedTitle(%q) = %v, want %v", title, got, want)
		}
	}
}

func FuzzParseSockets(f *testing.F) {
	f.Add("  sl  local_address rem_address   st\n   1: 0F02000A:0016 0100A8C0:D431 01 00000000:00000000 02:0009F1E2 00000000     0        0 5001 2\n")
	f.Add("h\n 1: B80D0120000000000000000001000000:0016 B80D0120000000000000000099000000:D431 01 0:0 0:0 0 0 0 6001\n")
	f.Add("h\n 1: zz:zz zz:zz zz a b c d e f\n")
	f.Fuzz(func(t *testing.T, s string) {
		_ = parseSockets(strings.NewReader(s), func(l sockLine) {
			if !l.local.IsValid() || !l.remote.IsValid() {
				t.Fatalf("invalid address passed on: %+v", l)
			}
			if l.remote.Addr().Is4In6() {
				t.Fatalf("mapped address passed on: %v", l.remote)
			}
		})
	})
}
