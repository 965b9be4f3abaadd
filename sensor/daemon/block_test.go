package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/sensor/respond"
)

func TestBlockCommandRefusesBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"add"}, {"add", "192.0.2.1", "192.0.2.2"}, {"list", "extra"},
		{"add", "192.0.2.1", "--ttl", "1ms"}, {"remove", "192.0.2.1", "--ttl", "1h"}, {"add", "192.0.2.1", "--bogus"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if err := Block(context.Background(), append(args, "--data", t.TempDir()), &bytes.Buffer{}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestBlockCommandManagesTheKernelWithTheSensorStopped(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (nftables netlink); CI runs it as root")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft command to observe the ruleset (Debian package nftables)")
	}
	dir := t.TempDir()
	table := fmt.Sprintf("attackmap_cli%d", os.Getpid())
	t.Cleanup(func() { _ = exec.Command("nft", "delete", "table", "inet", table).Run() })
	cfgPath := filepath.Join(dir, "sensor.json")
	cfg := fmt.Sprintf(`{"data_dir": %q, "response": {"enabled": true, "nftables": {"table": %q}}}`, filepath.Join(dir, "data"), table)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := Block(context.Background(), append(args, "--config", cfgPath), &out); err != nil {
			t.Fatalf("block %v: %v", args, err)
		}
		return out.String()
	}
	nftSet := func() string {
		out, _ := exec.Command("nft", "list", "set", "inet", table, "block4").CombinedOutput()
		return string(out)
	}

	if out := run("add", "192.0.2.80", "--ttl", "2h"); !strings.HasPrefix(out, "blocked 192.0.2.80 until ") {
		t.Fatalf("add said %q", out)
	}
	if !strings.Contains(nftSet(), "192.0.2.80") {
		t.Fatalf("not in the kernel:\n%s", nftSet())
	}
	var es []respond.ListEntry
	if err := json.Unmarshal([]byte(run("list", "--json")), &es); err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Addr.String() != "192.0.2.80" || es[0].TTL != "2h" || !es[0].InKernel || es[0].Source != "manual" {
		t.Fatalf("list: %+v", es)
	}
	if out := run("list"); !strings.Contains(out, "192.0.2.80") || !strings.Contains(out, "ADDRESS") {
		t.Fatalf("list table:\n%s", out)
	}
	var out bytes.Buffer
	if err := Block(context.Background(), []string{"add", "127.0.0.1", "--config", cfgPath}, &out); err == nil ||
		!strings.Contains(err.Error(), "own address") {
		t.Fatalf("adding the host's own address: %v", err)
	}
	run("remove", "192.0.2.80")
	if strings.Contains(nftSet(), "192.0.2.80") {
		t.Fatal("remove left the entry")
	}
	run("add", "2001:db8::80")
	run("flush")
	if out, _ := exec.Command("nft", "list", "tables").CombinedOutput(); strings.Contains(string(out), table) {
		t.Fatalf("flush left the table:\n%s", out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "data", respond.StateFile))
	var st struct{ Entries []json.RawMessage }
	if err != nil || json.Unmarshal(data, &st) != nil || len(st.Entries) != 0 {
		t.Fatalf("state after flush: %s %v", data, err)
	}
}
