package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/jsonl"
)

// attackers is how many distinct brute forces a restart case runs.
const attackers = 50

// consumeTimeout bounds the wait for the sensor to read lines written to
// its auth log: inotify wakes it at once; 30 s covers a loaded machine.
const consumeTimeout = 30 * time.Second

// authLines returns, for every attacker (127.0.x.y, distinct), failure k of
// its brute force: an sshd "Failed password" line dated base + k seconds,
// so that the 6 failures of one attacker fall within one fast bucket (6 in
// 10 s) whatever the wall clock does meanwhile.
func authLines(base time.Time, k int) []byte {
	var b bytes.Buffer
	for i := range attackers {
		ts := base.Add(time.Duration(k)*time.Second + time.Duration(i)*time.Millisecond).UTC()
		fmt.Fprintf(&b, "%s web-1 sshd[%d]: Failed password for root from %s port %d ssh2\n",
			ts.Format("2006-01-02T15:04:05.000000Z07:00"), 20000+i*8+k, attackerIP(i), 40000+k)
	}
	return b.Bytes()
}

func attackerIP(i int) string { return fmt.Sprintf("127.0.%d.%d", 10+i/200, 1+i%200) }

// eventsIn counts the sshd events (failures and logins) of the sensor's
// events journal.
func eventsIn(t testing.TB, dataDir string) int {
	t.Helper()
	names, err := jsonl.List(dataDir, "events")
	if err != nil {
		return 0
	}
	n := 0
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		n += bytes.Count(b, []byte(`"kind":"ssh_`))
	}
	return n
}

// waitEvents waits until the events journal holds at least n sshd events.
func waitEvents(t testing.TB, dataDir string, n int) {
	t.Helper()
	deadline := time.Now().Add(consumeTimeout)
	for eventsIn(t, dataDir) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the sensor read %d of %d failures within %v", eventsIn(t, dataDir), n, consumeTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bruteForceIDs reads the relay's history and returns, per attacker
// address, the distinct ssh_bruteforce incident ids it holds.
func bruteForceIDs(t testing.TB, r *relayProc) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	for _, b := range r.Incidents(t) {
		var in struct{ ID, Source, IP string }
		if json.Unmarshal(b, &in) != nil || in.Source != "ssh_bruteforce" {
			continue
		}
		if out[in.IP] == nil {
			out[in.IP] = map[string]bool{}
		}
		out[in.IP][in.ID] = true
	}
	return out
}

// TestSensorRestartMidAttackLosesNoAttack runs 50 brute forces whose 6
// failures straddle one sensor restart: 3 failures each are read, a
// checkpoint follows, a 4th is read and the sensor is stopped (SIGTERM) or
// killed (SIGKILL) at once, the last 2 are written while it is down. The
// restarted sensor must raise exactly one incident per attacker: none lost
// (state lost), none split in two (lines counted twice, or state reset).
func TestSensorRestartMidAttackLosesNoAttack(t *testing.T) {
	for _, sig := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(sig, func(t *testing.T) {
			dir := t.TempDir()
			r := startRelay(t, dir)
			authLog := filepath.Join(dir, "auth.log")
			if err := os.WriteFile(authLog, nil, 0o640); err != nil {
				t.Fatal(err)
			}
			dataDir := filepath.Join(dir, "sensor")
			s := startLogSensor(t, dataDir, r, "--auth-log", authLog, "--include-private")
			seen := waitFollowing(t, dataDir, authLog)
			base := time.Now().Add(-time.Minute)
			for k := range 3 {
				appendRaw(t, authLog, authLines(base, k))
			}
			waitEvents(t, dataDir, seen+3*attackers)
			waitCheckpoint(t, dataDir)
			appendRaw(t, authLog, authLines(base, 3))
			waitEvents(t, dataDir, seen+4*attackers)
			if sig == "SIGKILL" {
				s.kill() // before the next checkpoint, most likely: the 4th line is read again
			} else {
				s.stop()
			}
			for k := 4; k < 6; k++ {
				appendRaw(t, authLog, authLines(base, k))
			}
			s.restart(t)

			var want []string
			for i := range attackers {
				want = append(want, attackerIP(i))
			}
			got := waitBruteForces(t, r, want)
			delivered, lost, dup := 0, 0, 0
			for _, ip := range want {
				switch n := len(got[ip]); n {
				case 0:
					lost++
				default:
					delivered++
					dup += n - 1 // one attack split into several incidents
				}
			}
			for ip := range got {
				if !strings.HasPrefix(ip, "127.0.") {
					dup += len(got[ip]) // an incident for no attacker of ours
				}
			}
			record(t, "sensor "+sig+" mid-attack (detector state)", attackers, delivered-dup, lost, dup)
			if delivered != attackers || lost != 0 || dup != 0 {
				ins, _ := filepath.Glob(filepath.Join(dataDir, "incidents-*.jsonl"))
				for _, f := range ins {
					b, _ := os.ReadFile(f)
					t.Logf("sensor journal %s: %d incidents", filepath.Base(f), bytes.Count(b, []byte("\n")))
				}
				t.Logf("sensor events journal: %d sshd events", eventsIn(t, dataDir))
				t.Errorf("%s: %d of %d attackers raised an incident, %d lost, %d extra incidents; want %d, 0, 0",
					sig, delivered, attackers, lost, dup, attackers)
			}
		})
	}
}

// startLogSensor runs the real sensor following the logs given in extra,
// pushing to r as host "web-1" (set in its configuration file).
func startLogSensor(t testing.TB, dataDir string, r *relayProc, extra ...string) *sensorProc {
	t.Helper()
	cfg := dataDir + "-config.json"
	conf := `{"host":"web-1","geoip":{"paths":[]},"ebpf":{"enabled":false},
 "logs":{"auth":[],"access":[],"error":[],"firewall":[]}}`
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &sensorProc{DataDir: dataDir}
	s.args = append([]string{"run", "--config", cfg, "--data", dataDir, "--relay", r.IngestURL(), "--token", r.Token}, extra...)
	s.restart(t)
	return s
}

// waitFollowing waits until the sensor follows authLog and returns the
// events it read meanwhile: at its first start the sensor reads a file
// from its end, so probe lines (logins, which raise nothing) are written
// until one shows in the events journal.
func waitFollowing(t testing.TB, dataDir, authLog string) int {
	t.Helper()
	deadline := time.Now().Add(consumeTimeout)
	probe := []byte(time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00") +
		" web-1 sshd[1]: Accepted publickey for deploy from 127.0.200.1 port 1 ssh2: ED25519 SHA256:x\n")
	for eventsIn(t, dataDir) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the sensor did not start following %s within %v", authLog, consumeTimeout)
		}
		appendRaw(t, authLog, probe)
		time.Sleep(200 * time.Millisecond)
	}
	n := eventsIn(t, dataDir)
	for {
		time.Sleep(300 * time.Millisecond)
		m := eventsIn(t, dataDir)
		if m == n {
			return n
		}
		n = m
	}
}

// waitCheckpoint waits for a detection checkpoint newer than now.
func waitCheckpoint(t testing.TB, dataDir string) {
	t.Helper()
	since := time.Now()
	path := filepath.Join(dataDir, "detect-checkpoint.bin")
	deadline := time.Now().Add(consumeTimeout)
	for {
		if fi, err := os.Stat(path); err == nil && fi.ModTime().After(since) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no detection checkpoint written within %v", consumeTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitBruteForces waits until every address in want has an ssh_bruteforce
// incident at the relay (or deliverTimeout passes), then settles a few
// seconds for late extra incidents, and returns the ids per address.
func waitBruteForces(t testing.TB, r *relayProc, want []string) map[string]map[string]bool {
	t.Helper()
	deadline := time.Now().Add(deliverTimeout)
	for {
		got := bruteForceIDs(t, r)
		missing := 0
		for _, ip := range want {
			if len(got[ip]) == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a flush interval and a push more
	return bruteForceIDs(t, r)
}
