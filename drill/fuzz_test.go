package drill

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzSSHDLineAddr: whatever sshd (or a username inside its message) says,
// the address found is one that appears verbatim before the last " port ".
func FuzzSSHDLineAddr(f *testing.F) {
	f.Add("Failed password for root from 127.10.0.1 port 40000 ssh2")
	f.Add("Connection closed by invalid user x from 1.2.3.4 port 1 127.10.0.2 port 59849 [preauth]")
	f.Add("Connection reset by fe80::1%eth0 port 22 [preauth]")
	f.Fuzz(func(t *testing.T, msg string) {
		a, ok := sshdLineAddr(msg)
		if !ok {
			return
		}
		i := strings.LastIndex(msg, " port ")
		if i < 0 || !a.IsValid() || a.Is4In6() {
			t.Fatalf("sshdLineAddr(%q) = %v without a port or mapped", msg, a)
		}
		word := msg[strings.LastIndexByte(msg[:i], ' ')+1 : i]
		if w, err := netip.ParseAddr(word); err != nil || w.Unmap() != a {
			t.Fatalf("sshdLineAddr(%q) = %v, but the word before the last port is %q", msg, a, word)
		}
	})
}

// FuzzParseListenPorts: any input parses without panicking, and only lines
// with the LISTEN state contribute ports.
func FuzzParseListenPorts(f *testing.F) {
	for _, name := range []string{"proc_net_tcp", "proc_net_tcp6"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("   0: 0100007F:FFFF 00000000:0000 0A\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ports := map[uint16]bool{}
		if err := parseListenPorts(bytes.NewReader(b), ports); err != nil {
			return // only over-long lines fail
		}
		if len(ports) > 0 && !bytes.Contains(b, []byte(" 0A")) {
			t.Fatalf("ports %v from input without a LISTEN line", ports)
		}
		if ports[0] {
			t.Fatal("port 0 reported")
		}
	})
}

// FuzzAppendCombined: whatever the attacker sends, the access log line is
// exactly one line with exactly the six quotes that delimit the request,
// referer and user agent, and only printable ASCII.
func FuzzAppendCombined(f *testing.F) {
	f.Add("GET /.env HTTP/1.1", "sqlmap/1.7.2#stable (https://sqlmap.org)", "", "-")
	f.Add("GET /a\"b HTTP/1.1", "x\" \"y\n127.0.0.1 - - [", "http://evil/\\", "admin\x00")
	f.Add("", "\xff\xfe", "\r\n", "")
	f.Fuzz(func(t *testing.T, request, ua, referer, user string) {
		line := appendCombined(nil, combined{
			remoteAddr: "127.10.0.4", remoteUser: user, at: time.Unix(0, 0).UTC(),
			request: request, status: 404, size: 146, referer: referer, ua: ua,
		})
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("not one line: %q", line)
		}
		if n := bytes.Count(line, []byte(`"`)); n != 6 {
			t.Fatalf("%d quotes in %q", n, line)
		}
		for _, c := range line[:len(line)-1] {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("byte %#x in %q", c, line)
			}
		}
		if m := combinedRE.FindSubmatch(line[:len(line)-1]); m == nil {
			t.Fatalf("not a combined line: %q", line)
		}
	})
}
