//go:build linux

package respond

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/detect"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// needRoot skips a test unless it runs as root (for why) with the command
// cmd, from the Debian package pkg, installed. CI runs these tests as root.
func needRoot(t *testing.T, why, cmd, pkg string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (" + why + "); CI runs it as root")
	}
	if _, err := exec.LookPath(cmd); err != nil {
		t.Skip("needs the " + cmd + " command (Debian package " + pkg + ")")
	}
}

// needNFT skips tests that change the kernel's firewall; they observe the
// ruleset with nft.
func needNFT(t *testing.T) {
	t.Helper()
	needRoot(t, "nftables netlink, /proc of every process", "nft", "nftables")
}

// needXDP skips tests that need a kernel with XDP, network namespaces and
// veth pairs, made with ip(8).
func needXDP(t *testing.T) {
	t.Helper()
	needRoot(t, "XDP programs, network namespaces, veth pairs", "ip", "iproute2")
}

var tableSeq atomic.Int64

// testTable is a table name of this test's own, so tests never touch the
// real "attackmap" table or each other's.
func testTable(t *testing.T) string {
	name := fmt.Sprintf("attackmap_t%d_%d", os.Getpid(), tableSeq.Add(1))
	t.Cleanup(func() {
		// Whatever the test did, leave no table behind.
		_ = exec.Command("nft", "delete", "table", "inet", name).Run()
	})
	return name
}

// ruleset is `nft list ruleset`.
func ruleset(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	return string(out)
}

// withoutTable removes "table inet NAME { ... }" from a ruleset listing.
func withoutTable(rs, name string) string {
	var b strings.Builder
	skip := false
	sc := bufio.NewScanner(strings.NewReader(rs))
	for sc.Scan() {
		line := sc.Text()
		if line == "table inet "+name+" {" {
			skip = true
			continue
		}
		if skip {
			if line == "}" {
				skip = false
			}
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func tablePresent(t *testing.T, name string) bool {
	t.Helper()
	out, err := exec.Command("nft", "list", "tables", "inet").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) == "table inet "+name {
			return true
		}
	}
	return false
}

// kernelHas reports whether the table's sets hold addr (read with nft, not
// with the code under test).
func kernelHas(t *testing.T, table string, addr netip.Addr) bool {
	t.Helper()
	set := "block4"
	if addr.Is6() {
		set = "block6"
	}
	out, err := exec.Command("nft", "-j", "list", "set", "inet", table, set).CombinedOutput()
	if err != nil {
		return false
	}
	return strings.Contains(string(out), `"`+addr.String()+`"`)
}

// listener accepts and closes TCP connections on 127.0.0.1.
func listener(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// dialFrom connects from src to dst. A blocked source's SYN is dropped, so
// the dial times out: 400 ms is many round trips on loopback.
func dialFrom(src netip.Addr, dst netip.AddrPort) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 400 * time.Millisecond}
	c, err := d.Dial("tcp", dst.String())
	if err != nil {
		return err
	}
	return c.Close()
}

// bruteForce runs sshd failure lines from addr through the real parser and
// detectors until ssh_bruteforce raises, and returns the incident.
func bruteForce(t *testing.T, addr netip.Addr) incident.Incident {
	t.Helper()
	dcfg, err := detect.DecodeConfig([]byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	dcfg.IncludePrivate = true
	eng := detect.New(dcfg)
	p := logparse.NewAuth(logparse.Options{Location: time.UTC})
	now := time.Now().UTC()
	for i := range 20 {
		line := fmt.Sprintf("%s sensorhost sshd[%d]: Failed password for root from %s port %d ssh2",
			now.Add(time.Duration(i)*time.Second).Format(time.Stamp), 4000+i, addr, 40000+i)
		ev, ok := p.Line(line)
		if !ok {
			t.Fatalf("parser refused %q", line)
		}
		for _, in := range eng.Handle(ev) {
			if in.Source == "ssh_bruteforce" {
				return in
			}
		}
	}
	t.Fatalf("no ssh_bruteforce incident for %s", addr)
	return incident.Incident{}
}

// testIncident is a hand-made incident for the decisions that do not need
// the detection path.
func testIncident(source, ip string, sev incident.Severity) incident.Incident {
	now := time.Now().UTC().Truncate(time.Second)
	return incident.Incident{ID: source + ":" + ip + ":" + now.Format("2006-01-02T15:04Z"), Source: source,
		Severity: sev, IP: ip, TS: now, FirstSeen: now.Add(-time.Minute), LastSeen: now, Count: 6, Action: "logged"}
}

// harness runs a Responder and collects its updates.
type harness struct {
	r       *Responder
	dir     string
	cancel  context.CancelFunc
	done    chan error
	mu      sync.Mutex
	updates []incident.Incident
	got     chan incident.Incident
}

func startResponder(t *testing.T, cfg Config, dir string, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{dir: dir, got: make(chan incident.Incident, 64), done: make(chan error, 1)}
	opts := Options{Config: cfg, DataDir: dir, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Update: func(in incident.Incident) {
			h.mu.Lock()
			h.updates = append(h.updates, in)
			h.mu.Unlock()
			h.got <- in
		}}
	if mod != nil {
		mod(&opts)
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- r.Run(ctx) }()
	t.Cleanup(h.stop)
	// Run is ready once it answers on the control socket.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := Call(context.Background(), dir, Request{Op: "stats"}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("responder did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.done
	h.cancel = nil
}

// decide offers in and waits for the incident's update.
func (h *harness) decide(t *testing.T, in incident.Incident) incident.Incident {
	t.Helper()
	h.r.Offer(in)
	select {
	case u := <-h.got:
		if u.ID != in.ID {
			t.Fatalf("update for %s, want %s", u.ID, in.ID)
		}
		return u
	case <-time.After(5 * time.Second):
		t.Fatalf("no decision for %s", in.ID)
	}
	return incident.Incident{}
}

// records reads today's audit trail.
func records(t *testing.T, dir string) []Record {
	t.Helper()
	path := filepath.Join(dir, AuditPrefix+"-"+time.Now().UTC().Format("2006-01-02")+".jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func blockingConfig(table string) Config {
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.AllowPrivate = true // the tests' attackers are 127.x
	cfg.SSHPorts = []int{1} // nothing listens there: no SSH sessions unless a test makes one
	cfg.NFTables.Table = table
	return cfg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
