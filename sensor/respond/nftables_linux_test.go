//go:build linux

package respond

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

func TestNFTablesBlocksTheBruteForcerAndTheKernelExpiresIt(t *testing.T) {
	needNFT(t)
	table := testTable(t)
	before := ruleset(t)
	dst := listener(t)
	a, b := netip.MustParseAddr("127.10.0.1"), netip.MustParseAddr("127.10.0.2")
	for _, src := range []netip.Addr{a, b} {
		if err := dialFrom(src, dst); err != nil {
			t.Fatalf("before the block, %s cannot connect: %v", src, err)
		}
	}

	cfg := blockingConfig(table)
	cfg.TTL = []Duration{Duration(2 * time.Second)}
	dir := t.TempDir()
	h := startResponder(t, cfg, dir, nil)

	in := bruteForce(t, a)
	u := h.decide(t, in)
	if u.Action != "blocked 2s" {
		t.Fatalf("action %q, want %q", u.Action, "blocked 2s")
	}
	if !u.LastSeen.After(in.LastSeen) || u.Count != in.Count {
		t.Errorf("update last_seen %v count %d: want a later last_seen than %v and the same count %d",
			u.LastSeen, u.Count, in.LastSeen, in.Count)
	}
	if !u.Supersedes(&in) {
		t.Error("the relay would drop the update as a redelivery")
	}
	if !kernelHas(t, table, a) {
		t.Fatalf("%s not in the kernel set:\n%s", a, ruleset(t))
	}
	if err := dialFrom(a, dst); err == nil {
		t.Fatalf("%s still connects after the block", a)
	}
	if err := dialFrom(b, dst); err != nil {
		t.Fatalf("%s (not blocked) cannot connect: %v", b, err)
	}
	if got := withoutTable(ruleset(t), table); got != before {
		t.Errorf("ruleset outside our table changed:\nbefore:\n%s\nafter:\n%s", before, got)
	}

	// The kernel expires the entry by itself (the timeout flag).
	deadline := time.Now().Add(5 * time.Second)
	for kernelHas(t, table, a) {
		if time.Now().After(deadline) {
			t.Fatal("the kernel did not expire the entry")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := dialFrom(a, dst); err != nil {
		t.Fatalf("%s cannot connect after the block expired: %v", a, err)
	}

	if rep := h.r.Do(context.Background(), Request{Op: "flush"}); rep.Error != "" {
		t.Fatal(rep.Error)
	}
	if tablePresent(t, table) {
		t.Fatal("flush left the table behind")
	}
	if after := ruleset(t); after != before {
		t.Errorf("ruleset not byte-identical after flush:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestNFTablesEnsureIsIdempotentAndRepairs(t *testing.T) {
	needNFT(t)
	table := testTable(t)
	ctx := context.Background()
	nb, err := newNFTables(NFTablesOptions{Table: table, Priority: -10})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	for range 2 {
		if err := nb.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a := netip.MustParseAddr("192.0.2.77")
	six := netip.MustParseAddr("2001:db8::77")
	for _, x := range []netip.Addr{a, six} {
		if err := nb.Add(ctx, x, time.Hour); err != nil {
			t.Fatal(err)
		}
		// Adding again replaces the timeout instead of failing.
		if err := nb.Add(ctx, x, 2*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	want := ruleset(t)
	if n := strings.Count(want, "drop comment"); n != 2 {
		t.Fatalf("%d drop rules after two Ensures, want 2:\n%s", n, want)
	}
	es, err := nb.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("List: %v, want 2 entries", es)
	}
	for _, e := range es {
		if left := time.Until(e.Expires); left < time.Hour || left > 2*time.Hour+time.Minute {
			t.Errorf("%s expires in %v, want ~2h (the second Add)", e.Addr, left)
		}
	}

	// An operator flushes our chain by hand: Ensure puts the rules back
	// and keeps the entries.
	if out, err := exec.Command("nft", "flush", "chain", "inet", table, "input").CombinedOutput(); err != nil {
		t.Fatalf("nft flush chain: %v: %s", err, out)
	}
	if err := nb.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ruleset(t); strings.Count(got, "drop comment") != 2 || !kernelHas(t, table, a) || !kernelHas(t, table, six) {
		t.Fatalf("after repair:\n%s", got)
	}

	// A new priority means a new chain, with the entries kept.
	nb2, _ := newNFTables(NFTablesOptions{Table: table, Priority: 5})
	defer nb2.Close()
	if err := nb2.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ruleset(t); !strings.Contains(got, "priority filter + 5") || strings.Count(got, "drop comment") != 2 || !kernelHas(t, table, a) {
		t.Fatalf("after a priority change:\n%s", got)
	}

	// Remove of a present and of an absent address.
	for range 2 {
		if err := nb.Remove(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if kernelHas(t, table, a) {
		t.Fatal("Remove left the entry")
	}
	for range 2 {
		if err := nb.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if tablePresent(t, table) {
		t.Fatal("Flush left the table")
	}
	if err := nb.Remove(ctx, a); err != nil {
		t.Fatalf("Remove without a table: %v", err)
	}
	if tablePresent(t, table) {
		t.Fatal("Remove created the table")
	}
}

func TestRestartReconcilesTheKernelWithTheState(t *testing.T) {
	needNFT(t)
	table := testTable(t)
	ctx := context.Background()
	dir := t.TempDir()
	kept := netip.MustParseAddr("192.0.2.10")    // in state and kernel
	missing := netip.MustParseAddr("192.0.2.11") // in state, lost from the kernel
	stale := netip.MustParseAddr("192.0.2.12")   // in the kernel only
	expired := netip.MustParseAddr("192.0.2.13") // in state, past its expiry

	nb, _ := newNFTables(NFTablesOptions{Table: table, Priority: -10})
	if err := nb.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{kept, stale} {
		if err := nb.Add(ctx, a, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	nb.Close()
	now := time.Now().UTC()
	st := newState("nftables")
	for _, a := range []netip.Addr{kept, missing} {
		st.entries[a] = &stateEntry{Addr: a, Added: now, Expires: now.Add(time.Hour), TTL: Duration(time.Hour), Incident: "ssh_bruteforce:" + a.String()}
	}
	st.entries[expired] = &stateEntry{Addr: expired, Added: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour), TTL: Duration(time.Hour)}
	if err := st.save(filepath.Join(dir, StateFile)); err != nil {
		t.Fatal(err)
	}

	h := startResponder(t, blockingConfig(table), dir, nil)
	for a, want := range map[netip.Addr]bool{kept: true, missing: true, stale: false, expired: false} {
		if got := kernelHas(t, table, a); got != want {
			t.Errorf("after the restart, %s in the kernel: %v, want %v", a, got, want)
		}
	}
	rep, err := Call(ctx, dir, Request{Op: "list"})
	if err != nil || rep.Error != "" {
		t.Fatal(err, rep.Error)
	}
	var listed []string
	for _, e := range rep.Entries {
		listed = append(listed, e.Addr.String())
		if !e.InKernel || e.Unknown {
			t.Errorf("%+v: want in the kernel and in the state", e)
		}
	}
	if strings.Join(listed, " ") != "192.0.2.10 192.0.2.11" {
		t.Errorf("list: %v", listed)
	}
	h.stop()
	kinds := map[string]string{}
	for _, r := range records(t, dir) {
		kinds[r.Addr] = r.Decision
	}
	for a, want := range map[netip.Addr]string{missing: DecisionRestore, stale: DecisionStale, expired: DecisionExpire} {
		if kinds[a.String()] != want {
			t.Errorf("audit for %s: %q, want %q", a, kinds[a.String()], want)
		}
	}
	// The state on disk no longer holds the expired entry.
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), expired.String()+`"`) && strings.Contains(string(data), `"expires"`) {
		var s state
		_ = json.Unmarshal(data, &s)
		for _, e := range s.Entries {
			if e.Addr == expired {
				t.Errorf("state still holds the expired entry: %s", data)
			}
		}
	}
}

func TestSafetyRulesNeverBlock(t *testing.T) {
	needNFT(t)
	table := testTable(t)
	before := ruleset(t)

	// A real established connection to the "SSH port" from 127.20.0.1.
	ssh, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ssh.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ssh.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	session := netip.MustParseAddr("127.20.0.1")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: session.AsSlice()}}
	client, err := d.Dial("tcp", ssh.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	defer server.Close()

	cfg := blockingConfig(table)
	cfg.SSHPorts = []int{int(netip.MustParseAddrPort(ssh.Addr().String()).Port())}
	cfg.Allow = []string{"127.30.0.0/16", "2001:db8:aa::1"}
	dir := t.TempDir()
	h := startResponder(t, cfg, dir, func(o *Options) {
		o.Relays = []string{"wss://127.40.0.1:8443/api/ingest", "https://localhost"}
	})

	cases := []struct {
		name, ip, want string
	}{
		{"an address with an established SSH session", "127.20.0.1", "not blocked: ssh session"},
		{"an allow-listed CIDR", "127.30.4.5", "not blocked: allow list"},
		{"an allow-listed address (IPv6)", "2001:db8:aa::1", "not blocked: allow list"},
		{"the relay's address", "127.40.0.1", "not blocked: relay address"},
		{"a relay given by name", "::1", "not blocked: own address"},
		{"the host's own address", "127.0.0.1", "not blocked: own address"},
		{"a multicast address", "224.0.0.1", "not blocked: not unicast"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := h.decide(t, testIncident("ssh_bruteforce", c.ip, incident.High))
			if u.Action != c.want {
				t.Fatalf("action %q, want %q", u.Action, c.want)
			}
			if err := u.Validate(); err != nil {
				t.Fatalf("the update does not validate: %v", err)
			}
		})
	}
	if got := withoutTable(ruleset(t), table); got != before {
		t.Errorf("ruleset outside our table changed:\n%s", got)
	}
	out, _ := exec.Command("nft", "list", "table", "inet", table).CombinedOutput()
	if strings.Contains(string(out), "elements") {
		t.Fatalf("something was blocked:\n%s", out)
	}
	reasons := map[string]string{}
	for _, r := range records(t, dir) {
		if r.Decision != DecisionSkip || r.Incident == "" {
			t.Errorf("audit record %+v: want a skip with the incident id", r)
		}
		reasons[r.Addr] = r.Reason
	}
	if reasons["127.20.0.1"] != ReasonSSHSession || reasons["127.40.0.1"] != ReasonRelay || reasons["127.30.4.5"] != ReasonAllowList {
		t.Errorf("audit reasons: %v", reasons)
	}

	// Once the session ends, the address may be blocked: an SSH-session
	// skip is taken again at the incident's next update.
	client.Close()
	server.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		has, err := h.r.socks.hasSession(session)
		if err != nil {
			t.Fatal(err)
		}
		if !has {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed session is still established")
		}
		time.Sleep(50 * time.Millisecond)
	}
	again := testIncident("ssh_bruteforce", session.String(), incident.High)
	again.Count++
	if u := h.decide(t, again); u.Action != "blocked 1h" {
		t.Fatalf("with the session gone, the next update says %q, want blocked 1h", u.Action)
	}
	if !kernelHas(t, table, session) {
		t.Fatal("not in the kernel")
	}
}

func TestDryRunChangesNothingInTheKernel(t *testing.T) {
	needNFT(t)
	table := testTable(t)
	before := ruleset(t)
	cfg := blockingConfig(table)
	cfg.Enabled = false
	dir := t.TempDir()
	h := startResponder(t, cfg, dir, nil)
	u := h.decide(t, bruteForce(t, netip.MustParseAddr("127.50.0.1")))
	if u.Action != "would block (dry run)" {
		t.Fatalf("action %q", u.Action)
	}
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	if after := ruleset(t); after != before {
		t.Fatalf("a dry run changed the ruleset:\n%s", after)
	}
	if tablePresent(t, table) {
		t.Fatal("a dry run created the table")
	}
	h.stop()
	rs := records(t, dir)
	if len(rs) != 1 || rs[0].Decision != DecisionBlock || !rs[0].DryRun || rs[0].TTL != "1h" {
		t.Fatalf("audit: %+v", rs)
	}
}
