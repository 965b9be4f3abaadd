//go:build linux

package respond

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// fakeClock moves only when the test says so (the kernel's timeouts still
// run on real time; the tests use TTLs far longer than they run).
type fakeClock struct{ off atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }

func TestTTLLadderEscalatesForRepeatOffenders(t *testing.T) {
	needNFT(t)
	table := testTable(t)
	var clk fakeClock
	cfg := blockingConfig(table)
	cfg.RepeatWindow = Duration(30 * 24 * time.Hour)
	dir := t.TempDir()
	h := startResponder(t, cfg, dir, func(o *Options) { o.Now = clk.now })
	a := netip.MustParseAddr("192.0.2.20")
	ctx := context.Background()

	for i, want := range []string{"blocked 1h", "blocked 24h", "blocked 7d", "blocked 7d"} {
		in := testIncident("ssh_bruteforce", a.String(), incident.High)
		in.ID = fmt.Sprintf("ssh_bruteforce:%s:episode-%d", a, i)
		u := h.decide(t, in)
		if u.Action != want {
			t.Fatalf("block %d: action %q, want %q", i+1, u.Action, want)
		}
		// The same episode again while blocked: no new strike.
		in.Count++
		in.Action = "logged"
		if u := h.decide(t, in); u.Action != want {
			t.Fatalf("block %d, the incident's next update: %q, want %q", i+1, u.Action, want)
		}
		// The block ends (the kernel would expire it; here the operator
		// removes it) and the attacker comes back.
		if err := h.r.ManualRemove(ctx, a); err != nil {
			t.Fatal(err)
		}
		clk.advance(time.Hour)
	}

	// Past the repeat window the address starts at the bottom again.
	clk.advance(31 * 24 * time.Hour)
	in := testIncident("ssh_bruteforce", a.String(), incident.High)
	in.ID = "ssh_bruteforce:" + a.String() + ":much-later"
	if u := h.decide(t, in); u.Action != "blocked 1h" {
		t.Fatalf("after the repeat window: %q, want blocked 1h", u.Action)
	}
}

func TestCapsRefuseBlocksOverTheLimits(t *testing.T) {
	needNFT(t)
	t.Run("new blocks per minute", func(t *testing.T) {
		var clk fakeClock
		cfg := blockingConfig(testTable(t))
		cfg.MaxPerMinute = 2
		h := startResponder(t, cfg, t.TempDir(), func(o *Options) { o.Now = clk.now })
		for i, want := range []string{"blocked 1h", "blocked 1h", "not blocked: rate limit"} {
			if u := h.decide(t, testIncident("port_scan", fmt.Sprintf("192.0.2.%d", 30+i), incident.High)); u.Action != want {
				t.Fatalf("block %d: %q, want %q", i+1, u.Action, want)
			}
		}
		// The refused incident is taken again at its next update, once
		// the minute has passed.
		clk.advance(61 * time.Second)
		in := testIncident("port_scan", "192.0.2.32", incident.High)
		in.Count++
		if u := h.decide(t, in); u.Action != "blocked 1h" {
			t.Fatalf("a minute later: %q, want blocked 1h", u.Action)
		}
		if got := h.r.Stats(); got.Skips[ReasonRateLimit] != 1 || got.Blocks != 3 || got.Active != 3 {
			t.Errorf("stats %+v", got)
		}
	})
	t.Run("entries in place", func(t *testing.T) {
		cfg := blockingConfig(testTable(t))
		cfg.MaxEntries = 2
		h := startResponder(t, cfg, t.TempDir(), nil)
		for i, want := range []string{"blocked 1h", "blocked 1h", "not blocked: entry cap"} {
			if u := h.decide(t, testIncident("exploit_attempt", fmt.Sprintf("2001:db8::%d", 40+i), incident.Critical)); u.Action != want {
				t.Fatalf("block %d: %q, want %q", i+1, u.Action, want)
			}
		}
		if _, err := h.r.ManualAdd(context.Background(), netip.MustParseAddr("2001:db8::99"), time.Hour, false); err == nil {
			t.Fatal("a manual add passed the entry cap")
		}
	})
}

func TestOnlyConfiguredDetectorsAndSeveritiesAreConsidered(t *testing.T) {
	needNFT(t)
	cfg := blockingConfig(testTable(t))
	dir := t.TempDir()
	h := startResponder(t, cfg, dir, nil)
	for _, in := range []incident.Incident{
		testIncident("web_scan", "192.0.2.50", incident.High),         // not a configured detector
		testIncident("ssh_bruteforce", "192.0.2.51", incident.Medium), // below min_severity
	} {
		h.r.Offer(in)
	}
	want := testIncident("credential_stuffing", "192.0.2.52", incident.High)
	if u := h.decide(t, want); u.Action != "blocked 1h" {
		t.Fatalf("%q", u.Action)
	}
	h.stop()
	rs := records(t, dir)
	if len(rs) != 1 || rs[0].Addr != "192.0.2.52" || rs[0].Incident != want.ID || rs[0].Source != "credential_stuffing" {
		t.Fatalf("audit: %+v", rs)
	}
}

func TestAnnotateKeepsTheActionOnLaterCopies(t *testing.T) {
	needNFT(t)
	h := startResponder(t, blockingConfig(testTable(t)), t.TempDir(), nil)
	in := testIncident("ssh_bruteforce", "192.0.2.60", incident.High)
	h.decide(t, in)
	later := in
	later.Count += 10
	later.Action = "logged"
	h.r.Annotate(&later)
	if later.Action != "blocked 1h" {
		t.Fatalf("annotated action %q", later.Action)
	}
	other := testIncident("ssh_bruteforce", "192.0.2.61", incident.High)
	h.r.Annotate(&other)
	if other.Action != "logged" {
		t.Fatalf("an undecided incident became %q", other.Action)
	}
}

func TestControlSocketAndDirectModeManageBlocks(t *testing.T) {
	needNFT(t)
	table := testTable(t)
	cfg := blockingConfig(table)
	dir := t.TempDir()
	ctx := context.Background()
	a := "192.0.2.70"

	// Sensor stopped: the command edits the state and the kernel itself.
	rep, err := Direct(ctx, Options{Config: cfg, DataDir: dir}, Request{Op: "add", Addr: a, TTL: "90m"})
	if err != nil || rep.Error != "" {
		t.Fatal(err, rep.Error)
	}
	if !kernelHas(t, table, netip.MustParseAddr(a)) {
		t.Fatal("direct add: not in the kernel")
	}
	if _, err := Call(ctx, dir, Request{Op: "list"}); err != ErrNotRunning {
		t.Fatalf("Call with no sensor: %v, want ErrNotRunning", err)
	}

	// Sensor running: the command goes through the socket; the sensor
	// finds the block made while it was down.
	h := startResponder(t, cfg, dir, nil)
	rep, err = Call(ctx, dir, Request{Op: "list"})
	if err != nil || rep.Error != "" || len(rep.Entries) != 1 || rep.Entries[0].TTL != "90m" || rep.Entries[0].Source != "manual" {
		t.Fatalf("list: %+v %v", rep, err)
	}
	if rep, _ := Call(ctx, dir, Request{Op: "add", Addr: "127.0.0.1"}); rep.Error == "" {
		t.Fatal("the host's own address was blocked by hand without --force")
	}
	if _, err := Direct(ctx, Options{Config: cfg, DataDir: dir}, Request{Op: "list"}); err == nil {
		t.Fatal("direct mode ran while the sensor holds the state")
	}
	if rep, _ := Call(ctx, dir, Request{Op: "remove", Addr: a}); rep.Error != "" {
		t.Fatal(rep.Error)
	}
	if kernelHas(t, table, netip.MustParseAddr(a)) {
		t.Fatal("remove left the kernel entry")
	}
	if rep, _ := Call(ctx, dir, Request{Op: "add", Addr: "2001:db8::70", TTL: "1h"}); rep.Error != "" {
		t.Fatal(rep.Error)
	}
	if rep, _ := Call(ctx, dir, Request{Op: "flush"}); rep.Error != "" {
		t.Fatal(rep.Error)
	}
	if tablePresent(t, table) {
		t.Fatal("flush left the table")
	}
	if rep, _ := Call(ctx, dir, Request{Op: "list"}); len(rep.Entries) != 0 {
		t.Fatalf("flush left entries: %+v", rep.Entries)
	}
	h.stop()
	var ops []string
	for _, r := range records(t, dir) {
		if r.Decision == DecisionManual {
			ops = append(ops, r.Op)
		}
	}
	if fmt.Sprint(ops) != "[add remove add flush]" {
		t.Fatalf("manual audit records: %v", ops)
	}
}
