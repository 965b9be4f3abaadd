package logparse

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/sensor/event"
)

// sshguardTests is SSHGuard's parser test file, copied with its licence
// into the repository's top-level testdata (see its README.md).
var sshguardTests = filepath.Join("..", "..", "testdata", "sshguard", "tests.txt")

// sshguardServiceSSH is SSHGuard's service code for sshd attacks. Other
// codes (mail, FTP, cockpit, remote SSHGuard, web servers, ...) belong to
// other programs or to the web parser and are skipped here.
const sshguardServiceSSH = 100

// sshguardRecord is one test vector: a log line and what SSHGuard expects
// of it.
type sshguardRecord struct {
	lineNo  int    // of the log line in tests.txt
	section string // the last "#### NAME" header or "# NAME" comment
	log     string
	attack  bool   // false for "*": not an attack
	service int    // SSHGuard service code of an attack
	addr    string // attacker address of an attack
}

// readSSHGuard parses tests.txt: records are separated by a line "M"; a
// record is a log line followed by "SERVICE ADDRESS FAMILY DANGER" or "*";
// "#### NAME" starts a section, and a "# NAME" comment names the records
// that follow it.
func readSSHGuard(t *testing.T) []sshguardRecord {
	t.Helper()
	f, err := os.Open(sshguardTests)
	if err != nil {
		t.Fatalf("the SSHGuard corpus must be in the repository: %v", err)
	}
	defer f.Close()
	var (
		recs    []sshguardRecord
		section string
		pending *sshguardRecord
	)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "#### "):
			section = strings.TrimPrefix(l, "#### ")
			continue
		case strings.HasPrefix(l, "# "):
			section = strings.TrimPrefix(l, "# ") // e.g. "macOS log format (#106)"
			continue
		case l == "" || strings.HasPrefix(l, "#"):
			continue
		case l == "M":
			if pending != nil {
				t.Fatalf("%s:%d: record without expected result", sshguardTests, pending.lineNo)
			}
			continue
		}
		if pending == nil {
			pending = &sshguardRecord{lineNo: n, section: section, log: l}
			continue
		}
		if l != "*" {
			fs := strings.Fields(l)
			if len(fs) != 4 {
				t.Fatalf("%s:%d: malformed result %q", sshguardTests, n, l)
			}
			svc, err := strconv.Atoi(fs[0])
			if err != nil {
				t.Fatalf("%s:%d: malformed service %q", sshguardTests, n, fs[0])
			}
			pending.attack, pending.service, pending.addr = true, svc, fs[1]
		}
		recs = append(recs, *pending)
		pending = nil
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(recs) < 100 {
		t.Fatalf("only %d records in %s: truncated corpus?", len(recs), sshguardTests)
	}
	return recs
}

// TestSSHGuardCorpus runs SSHGuard's own test vectors: every sshd attack
// must become a hostile event from exactly SSHGuard's address, and no line
// SSHGuard calls harmless may become one.
func TestSSHGuardCorpus(t *testing.T) {
	var attacks, found, benign, quiet int
	for _, r := range readSSHGuard(t) {
		if r.attack && r.service != sshguardServiceSSH {
			continue
		}
		// A fresh parser per record, as SSHGuard reads each line alone:
		// the address must come from the line itself.
		ev, ok := NewAuth(testOpts()).Line(r.log)
		hostile := ok && ev.Kind == event.KindSSHFailed
		name := fmt.Sprintf("%s/line_%d", r.section, r.lineNo)
		if r.attack {
			attacks++
			want := netip.MustParseAddr(r.addr).WithZone("")
			good := hostile && ev.SrcIP == want
			if good {
				found++
			}
			t.Run(name, func(t *testing.T) {
				switch {
				case !hostile:
					t.Errorf("%q: no hostile event (ok=%v kind=%q), want ssh_failed from %s", r.log, ok, ev.Kind, want)
				case !good:
					t.Errorf("%q: event from %s, want %s", r.log, ev.SrcIP, want)
				}
			})
			continue
		}
		benign++
		if !hostile {
			quiet++
		}
		t.Run(name, func(t *testing.T) {
			if hostile {
				t.Errorf("%q: hostile event %+v, SSHGuard says harmless", r.log, ev)
			}
		})
	}
	t.Logf("sshd attacks recognised: %d/%d (%.0f%%); harmless lines kept quiet: %d/%d",
		found, attacks, 100*float64(found)/float64(attacks), quiet, benign)
	if attacks < 50 {
		t.Fatalf("only %d sshd attack records: corpus changed?", attacks)
	}
}
