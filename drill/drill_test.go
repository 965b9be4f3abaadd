package drill

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// testTimeout bounds one drill in a test; a full run takes about a second.
const testTimeout = time.Minute

func attackNamed(t *testing.T, name string) Attack {
	t.Helper()
	for _, a := range Plan() {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no attack %q in the plan", name)
	return Attack{}
}

func runDrill(t *testing.T, cfg Config) Report {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = testTimeout
	}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, res := range rep.Results {
		t.Logf("%s from %s: count %d, lines %d, %s, last %s", res.Name, res.Addr, res.Count, res.Lines,
			res.Duration, res.Last.Format(time.RFC3339Nano))
		if res.Skipped != "" {
			t.Errorf("%s skipped: %s", res.Name, res.Skipped)
		}
		if res.Last.Before(res.Start) || res.Last.After(rep.Finished) {
			t.Errorf("%s: last %s outside [%s, %s]", res.Name, res.Last, res.Start, rep.Finished)
		}
	}
	return rep
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestPlanIsConsistent(t *testing.T) {
	seen := map[netip.Addr]string{}
	for _, a := range Plan() {
		if prev, dup := seen[a.Addr]; dup {
			t.Errorf("%s and %s share %s", prev, a.Name, a.Addr)
		}
		seen[a.Addr] = a.Name
		if !a.Addr.Is4() || !a.Addr.IsLoopback() {
			t.Errorf("%s: %s is not an IPv4 loopback address", a.Name, a.Addr)
		}
		if !a.Severity.Valid() || a.Planned <= 0 || a.Source == "" || a.Place.City == "" {
			t.Errorf("%s: incomplete plan entry %+v", a.Name, a)
		}
		if a.Place.Lat < -85 || a.Place.Lat > 85 || a.Place.Lon < -180 || a.Place.Lon > 180 {
			t.Errorf("%s: %v,%v is off the Mercator map", a.Name, a.Place.Lat, a.Place.Lon)
		}
		if a.Place.ASN < 64496 || a.Place.ASN > 64511 {
			t.Errorf("%s: AS%d is not a documentation ASN", a.Name, a.Place.ASN)
		}
		// The incident the attack should raise must be a valid one.
		in := incident.Incident{ID: a.Source + ":" + a.Addr.String(), Source: a.Source, Severity: a.Severity,
			IP: a.Addr.String(), Country: a.Place.Country, TS: time.Now().UTC(), GeoSource: "drill"}
		in.SetLocation(a.Place.Lat, a.Place.Lon)
		if err := in.Validate(); err != nil {
			t.Errorf("%s: expected incident is invalid: %v", a.Name, err)
		}
	}
	if got, want := Names(), []string{PortScan, WebScan, ExploitProbe, WebLoginStuff, SSHBruteForce, SSHCredStuffer}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
}

func TestOverlayReadsBackWithGeoIP2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "geoip-drill.mmdb")
	if err := WriteOverlay(path); err != nil {
		t.Fatal(err)
	}
	db, err := geoip2.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if md := db.Metadata(); md.DatabaseType != OverlayDatabaseType || md.Description["en"] != OverlayDescription {
		t.Errorf("metadata: type %q, description %q", md.DatabaseType, md.Description["en"])
	}
	raw, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, a := range Plan() {
		t.Run(a.Name, func(t *testing.T) {
			c, err := db.City(a.Addr)
			if err != nil {
				t.Fatal(err)
			}
			if !c.HasData() {
				t.Fatalf("%s not found", a.Addr)
			}
			p := a.Place
			if c.Country.ISOCode != p.Country || c.City.Names.English != p.City ||
				c.Continent.Code != p.Continent || c.RegisteredCountry.ISOCode != p.Country {
				t.Errorf("got %s, %s, %s; want %s, %s, %s", c.City.Names.English, c.Country.ISOCode,
					c.Continent.Code, p.City, p.Country, p.Continent)
			}
			l := c.Location
			if l.Latitude == nil || l.Longitude == nil || *l.Latitude != p.Lat || *l.Longitude != p.Lon ||
				int(l.AccuracyRadius) != p.AccuracyKM || l.TimeZone != p.TimeZone {
				t.Errorf("location %+v, want %v,%v r=%d %s", l, p.Lat, p.Lon, p.AccuracyKM, p.TimeZone)
			}
			var traits struct {
				Traits struct {
					ASN uint   `maxminddb:"autonomous_system_number"`
					Org string `maxminddb:"autonomous_system_organization"`
				} `maxminddb:"traits"`
			}
			if err := raw.Lookup(a.Addr).Decode(&traits); err != nil {
				t.Fatal(err)
			}
			if traits.Traits.ASN != uint(p.ASN) || traits.Traits.Org != p.Org {
				t.Errorf("traits %+v, want AS%d %q", traits.Traits, p.ASN, p.Org)
			}
			// The IPv4-mapped form finds the same record.
			if m, err := db.City(netip.AddrFrom16(a.Addr.As16())); err != nil || m.City.Names.English != p.City {
				t.Errorf("mapped %s: %v %q", a.Addr, err, m.City.Names.English)
			}
		})
	}
	// Everything else is a miss, not an error: the overlay sits first in a
	// list of databases.
	for _, s := range []string{"127.0.0.1", "127.10.0.99", "8.8.8.8", "::1", "2001:db8::1"} {
		c, err := db.City(netip.MustParseAddr(s))
		if err != nil || c.HasData() {
			t.Errorf("%s: err %v, data %v; want a clean miss", s, err, c.HasData())
		}
	}
}

func TestParseListenPorts(t *testing.T) {
	ports := map[uint16]bool{}
	for _, f := range []string{"proc_net_tcp", "proc_net_tcp6"} {
		fh, err := os.Open(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		err = parseListenPorts(fh, ports)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[uint16]bool{2024: true, 8080: true, 3306: true, 631: true}
	if len(ports) != len(want) {
		t.Errorf("got %v, want %v", ports, want)
	}
	for p := range want {
		if !ports[p] {
			t.Errorf("listening port %d missing from %v", p, ports)
		}
	}
}

func TestScanTargetsSkipOpenPorts(t *testing.T) {
	open := map[uint16]bool{}
	for _, p := range scanPorts {
		open[p] = true // every common port open: all targets from the fill range
	}
	open[scanFillFrom] = true
	got := scanTargets(5, open)
	if want := []uint16{scanFillFrom + 1, scanFillFrom + 2, scanFillFrom + 3, scanFillFrom + 4, scanFillFrom + 5}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	got = scanTargets(3, map[uint16]bool{21: true})
	if want := []uint16{23, 25, 53}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestPortScanKnocksOnClosedPorts(t *testing.T) {
	// A listener on one of the scanned ports must be skipped, not knocked.
	const busy = 11211
	l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(busy))
	if err == nil {
		defer l.Close()
	} else {
		t.Logf("port %d is taken already (%v); it is skipped either way", busy, err)
	}
	// From another address than the plan's: a sensor with eBPF running at
	// the same time (the end-to-end test) must not see this test's knocks
	// as the drill's.
	a := attackNamed(t, PortScan)
	a.Addr = netip.MustParseAddr("127.10.9.3")
	res := runPortScan(t.Context(), a, netip.MustParseAddr("127.0.0.1"))
	t.Logf("ports %v in %s", res.Ports, res.Duration)
	if res.Error != "" || res.Last.Before(res.Start) {
		t.Fatalf("result %+v", res)
	}
	if res.Count != a.Planned || len(res.Ports) != a.Planned {
		t.Errorf("count %d, ports %v; want %d refused knocks", res.Count, res.Ports, a.Planned)
	}
	if slices.Contains(res.Ports, busy) {
		t.Errorf("knocked on listening port %d", busy)
	}
	// The knocked ports really are closed for the drill's source address.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: a.Addr.AsSlice()}, Timeout: scanDialTimeout}
	for _, p := range res.Ports[:3] {
		c, err := d.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			c.Close()
			t.Errorf("port %d accepts connections", p)
		} else if !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("port %d: %v, want connection refused", p, err)
		}
	}
}

// combinedRE matches an nginx combined line (values escaped, no bare quote).
var combinedRE = regexp.MustCompile(`^(\S+) - (\S+) \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$`)

func TestWebAttacksWriteCombinedAccessLog(t *testing.T) {
	dir := t.TempDir()
	accessLog := filepath.Join(dir, "access.log")
	// The log is appended to, never truncated.
	if err := os.WriteFile(accessLog, []byte("10.0.0.1 - - [01/Jan/2026:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := runDrill(t, Config{AccessLog: accessLog, Only: []string{WebScan, ExploitProbe, WebLoginStuff}})
	if len(rep.Results) != 3 {
		t.Fatalf("results %+v", rep.Results)
	}
	lines := readLines(t, accessLog)
	if !strings.HasPrefix(lines[0], "10.0.0.1 ") {
		t.Errorf("first line lost: %q", lines[0])
	}
	byAddr := map[string][]string{} // address -> matched lines
	for _, line := range lines[1:] {
		m := combinedRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("not a combined line: %q", line)
			continue
		}
		ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", m[3])
		if err != nil || ts.Before(rep.Started.Truncate(time.Second)) || ts.After(rep.Finished) {
			t.Errorf("time %q outside the drill (%v)", m[3], err)
		}
		byAddr[m[1]] = append(byAddr[m[1]], line)
	}
	for _, tc := range []struct {
		name     string
		statuses func(i int) int
	}{
		{WebScan, func(i int) int {
			if i == 0 {
				return 200 // the landing page first
			}
			return 404
		}},
		{ExploitProbe, func(int) int { return 404 }},
		{WebLoginStuff, func(int) int { return 401 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := attackNamed(t, tc.name)
			res, _ := rep.Result(tc.name)
			got := byAddr[a.Addr.String()]
			if res.Count != a.Planned || res.Lines != a.Planned || len(got) != a.Planned {
				t.Fatalf("count %d, lines reported %d, lines in log %d; want %d", res.Count, res.Lines, len(got), a.Planned)
			}
			reqs := webRequests(tc.name)
			for i, line := range got {
				m := combinedRE.FindStringSubmatch(line)
				want := reqs[i].method + " " + reqs[i].target + " HTTP/1.1"
				if m[4] != want || m[8] != reqs[i].ua {
					t.Errorf("line %d: request %q ua %q; want %q ua %q", i, m[4], m[8], want, reqs[i].ua)
				}
				if st, _ := strconv.Atoi(m[5]); st != tc.statuses(i) || res.Statuses[i] != st {
					t.Errorf("line %d: status %s (client saw %d), want %d", i, m[5], res.Statuses[i], tc.statuses(i))
				}
				if m[6] == "0" {
					t.Errorf("line %d: no body bytes", i)
				}
			}
		})
	}
}

func TestAppendCombinedEscapesAttackerText(t *testing.T) {
	line := string(appendCombined(nil, combined{
		remoteAddr: "127.10.0.4", at: time.Date(2026, 3, 22, 14, 32, 1, 0, time.FixedZone("", 3600)),
		request: `GET /a"b\c HTTP/1.1`, status: 404, size: 146,
		ua: "evil\" \"-\"\n127.0.0.1 - - [x] \"GET / HTTP/1.1\" 200 1 \"-\" \"ok\xff",
	}))
	want := `127.10.0.4 - - [22/Mar/2026:14:32:01 +0100] "GET /a\x22b\x5Cc HTTP/1.1" 404 146 "-" ` +
		`"evil\x22 \x22-\x22\x0A127.0.0.1 - - [x] \x22GET / HTTP/1.1\x22 200 1 \x22-\x22 \x22ok\xFF"` + "\n"
	if line != want {
		t.Errorf("got  %s\nwant %s", line, want)
	}
}

// syslogBSD and syslogRFC3339 match the two auth log prefixes.
var (
	syslogBSD     = regexp.MustCompile(`^([A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d) (\S+) sshd\[(\d+)\]: (.*)$`)
	syslogRFC3339 = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d) (\S+) sshd\[(\d+)\]: (.*)$`)
)

func needSSHD(t *testing.T) {
	t.Helper()
	if _, err := FindSSHD(); err != nil {
		t.Skipf("needs the Debian package openssh-server (CI installs it): %v", err)
	}
}

func TestSSHAttacksWriteRealSSHDLines(t *testing.T) {
	needSSHD(t)
	authLog := filepath.Join(t.TempDir(), "auth.log")
	before := sshdDirs(t)
	rep := runDrill(t, Config{AuthLog: authLog, Hostname: "drillhost", Only: []string{SSHBruteForce, SSHCredStuffer}})
	if !strings.HasPrefix(rep.SSHD, "OpenSSH ") {
		t.Errorf("sshd version %q", rep.SSHD)
	}
	failedRE := regexp.MustCompile(`^Failed password for (invalid user )?(\S+) from (\S+) port (\d+) ssh2$`)
	users := map[string][]string{} // address -> users in "Failed password" lines, in order
	other := map[string]int{}      // address -> other lines naming it
	pids := map[string]bool{}
	for _, line := range readLines(t, authLog) {
		m := syslogBSD.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("not an auth.log line: %q", line)
			continue
		}
		if m[2] != "drillhost" {
			t.Errorf("host %q", m[2])
		}
		pids[m[3]] = true
		msg := m[4]
		if f := failedRE.FindStringSubmatch(msg); f != nil {
			users[f[3]] = append(users[f[3]], f[2])
		} else if a, ok := sshdLineAddr(msg); ok {
			other[a.String()]++
		}
	}
	if len(pids) != 1 {
		t.Errorf("lines from pids %v, want the drill sshd's only", pids)
	}
	brute, stuff := attackNamed(t, SSHBruteForce), attackNamed(t, SSHCredStuffer)
	if got := users[brute.Addr.String()]; len(got) != brute.Planned || slices.ContainsFunc(got, func(u string) bool { return u != "root" }) {
		t.Errorf("brute force: failed passwords for %v, want %d for root", got, brute.Planned)
	}
	if got := users[stuff.Addr.String()]; !slices.Equal(got, sshStuffUsers) {
		t.Errorf("stuffing: failed passwords for %v, want %v", got, sshStuffUsers)
	}
	if other[brute.Addr.String()] < 2 || other[stuff.Addr.String()] < len(sshStuffUsers) {
		t.Errorf("connection-closed lines per address %v", other)
	}
	for _, name := range []string{SSHBruteForce, SSHCredStuffer} {
		res, _ := rep.Result(name)
		a := attackNamed(t, name)
		if res.Count != a.Planned || res.Lines < a.Planned+1 {
			t.Errorf("%s: count %d lines %d, want %d failures and their connection ends", name, res.Count, res.Lines, a.Planned)
		}
	}
	// Nothing of the drill's sshd is left.
	if after := sshdDirs(t); after > before {
		t.Errorf("%d drill sshd directories left in %s", after-before, os.TempDir())
	}
}

// sshdDirs counts the drill sshd's temporary directories.
func sshdDirs(t *testing.T) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(os.TempDir(), "attackmap-drill-sshd-*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestSSHRFC3339Stamps(t *testing.T) {
	needSSHD(t)
	authLog := filepath.Join(t.TempDir(), "auth.log")
	rep := runDrill(t, Config{AuthLog: authLog, Format: FormatRFC3339, Only: []string{SSHBruteForce}})
	n := 0
	for _, line := range readLines(t, authLog) {
		m := syslogRFC3339.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("not an RFC 3339 auth log line: %q", line)
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil || ts.Before(rep.Started) || ts.After(rep.Finished) {
			t.Errorf("stamp %q outside the drill (%v)", m[1], err)
		}
		// Unprivileged, sshd cannot read /etc/shadow and calls root invalid.
		if strings.HasPrefix(m[4], "Failed password for root from 127.10.0.1 port ") ||
			os.Geteuid() != 0 && strings.HasPrefix(m[4], "Failed password for invalid user root from 127.10.0.1 port ") {
			n++
		}
	}
	if n != sshBrutePasswords {
		t.Errorf("%d failed passwords, want %d", n, sshBrutePasswords)
	}
}

func TestSSHDLineAddr(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{"Failed password for root from 127.10.0.1 port 40000 ssh2", "127.10.0.1"},
		{"Failed password for invalid user admin from 127.10.0.2 port 1 ssh2", "127.10.0.2"},
		{"Connection closed by authenticating user root 127.10.0.1 port 33325 [preauth]", "127.10.0.1"},
		{"Connection closed by 2001:db8::7 port 22 [preauth]", "2001:db8::7"},
		{"Invalid user x from 10.0.0.1 port 5 from 127.10.0.2 port 59849", "127.10.0.2"},
		{"Failed password for invalid user a from 1.2.3.4 port 9 from ::ffff:127.10.0.9 port 7 ssh2", "127.10.0.9"},
		{"Server listening on 127.0.0.1 port 46047.", "127.0.0.1"},
		{"Could not get shadow information for NOUSER", ""},
		{"Received signal 15; terminating.", ""},
		{" port ", ""},
		{"", ""},
	} {
		a, ok := sshdLineAddr(tc.msg)
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != tc.want {
			t.Errorf("sshdLineAddr(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

func TestParseSSHVersion(t *testing.T) {
	for _, tc := range []struct {
		in           string
		major, minor int
		err          bool
	}{
		{"OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024", 9, 2, false},
		{"unknown option -- V\nOpenSSH_7.4p1, OpenSSL 1.0.2k-fips", 7, 4, false},
		{"OpenSSH_10.0p2 Debian-5, OpenSSL 3.5.1", 10, 0, false},
		{"sshd: command not found", 0, 0, true},
	} {
		major, minor, err := parseSSHVersion(tc.in)
		if major != tc.major || minor != tc.minor || (err != nil) != tc.err {
			t.Errorf("parseSSHVersion(%q) = %d.%d, %v", tc.in, major, minor, err)
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Only: []string{"ssh-brutefroce"}},
		{Format: "iso"},
		{ScanTarget: netip.MustParseAddr("192.0.2.1")},
		{ScanTarget: netip.MustParseAddr("::1")},
	} {
		rep, err := Run(t.Context(), cfg)
		if err == nil || len(rep.Results) != 0 || strings.Contains(err.Error(), "\n") {
			t.Errorf("Run(%+v) = %d results, %v; want a one-line error and nothing done", cfg, len(rep.Results), err)
		}
	}
}

func TestRunSkipsAttacksWithoutLogs(t *testing.T) {
	rep, err := Run(t.Context(), Config{Only: []string{WebScan, SSHBruteForce}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("results %+v", rep.Results)
	}
	for _, res := range rep.Results {
		if res.Skipped == "" || res.Count != 0 {
			t.Errorf("%s: %+v, want skipped", res.Name, res)
		}
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rep, err := Run(ctx, Config{AccessLog: filepath.Join(t.TempDir(), "access.log"), Only: []string{WebScan, PortScan}})
	if !errors.Is(err, context.Canceled) && (err == nil || !strings.Contains(err.Error(), "canceled")) {
		t.Errorf("err %v, want cancelled", err)
	}
	for _, res := range rep.Results {
		if res.Error == "" {
			t.Errorf("%s ran after cancellation: %+v", res.Name, res)
		}
	}
}

func TestReportWriteText(t *testing.T) {
	rep := runDrill(t, Config{AccessLog: filepath.Join(t.TempDir(), "access.log"), Only: []string{ExploitProbe}})
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	var rows []string
	for sc.Scan() {
		rows = append(rows, sc.Text())
	}
	if len(rows) != 3 || !strings.Contains(rows[1], "exploit-probe") || !strings.Contains(rows[1], "127.10.0.6") ||
		!strings.Contains(rows[1], "Chicago, US") || !strings.HasPrefix(rows[2], "drill ran ") {
		t.Errorf("report:\n%s", b.String())
	}
}
