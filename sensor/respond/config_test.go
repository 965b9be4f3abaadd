package respond

import (
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

func TestConfigCheckFillsDefaultsAndRefusesNonsense(t *testing.T) {
	var c Config
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if c.Backend != "nftables" || c.MinSeverity != incident.High || len(c.TTL) != 3 ||
		c.MaxEntries != 100_000 || c.NFTables.Table != "attackmap" || !c.DryRun() {
		t.Fatalf("defaults: %+v", c)
	}
	for name, mod := range map[string]func(*Config){
		"an unknown backend":        func(c *Config) { c.Backend = "iptables" },
		"an unknown severity":       func(c *Config) { c.MinSeverity = "hgih" },
		"a bad allow entry":         func(c *Config) { c.Allow = []string{"10.0.0.0/33"} },
		"a sub-second ttl":          func(c *Config) { c.TTL = []Duration{Duration(time.Millisecond)} },
		"a negative cap":            func(c *Config) { c.MaxPerMinute = -1 },
		"a bad ssh port":            func(c *Config) { c.SSHPorts = []int{70000} },
		"a table name with a space": func(c *Config) { c.NFTables.Table = "my table" },
		"xdp without interfaces":    func(c *Config) { c.Enabled, c.Backend = true, "xdp" },
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			c := DefaultConfig()
			mod(&c)
			if err := c.Check(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestAllowListTakesAddressesAndCIDRs(t *testing.T) {
	ps, err := parseAllow([]string{"203.0.113.7", " 198.51.100.9/24 ", "::ffff:192.0.2.0/120", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	if strings.Join(got, " ") != "203.0.113.7/32 198.51.100.0/24 192.0.2.0/24 2001:db8::/32" {
		t.Fatalf("%v", got)
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"1h": time.Hour, "7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "7x", "1d-"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
	for d, want := range map[time.Duration]string{time.Hour: "1h", 24 * time.Hour: "24h", 7 * 24 * time.Hour: "7d", 90 * time.Minute: "90m", 2 * time.Second: "2s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// Every action the responder writes must pass the relay's validation, or
// the update would be rejected and the map keep saying "logged".
func TestEveryActionValidates(t *testing.T) {
	actions := []string{"would block (dry run)", "blocked 1h", "blocked 24h", "blocked 7d", "blocked 90m"}
	for _, r := range []string{ReasonAllowList, ReasonOwnAddress, ReasonLoopback, ReasonPrivate, ReasonLinkLocal,
		ReasonNotUnicast, ReasonRelay, ReasonSSHSession, ReasonRateLimit, ReasonFull, ReasonError, "bad address"} {
		actions = append(actions, "not blocked: "+r)
	}
	now := time.Now().UTC()
	for _, a := range actions {
		in := incident.Incident{ID: "x", Source: "ssh_bruteforce", Severity: incident.High, IP: "192.0.2.1", TS: now, Action: a}
		if err := in.Validate(); err != nil {
			t.Errorf("%q: %v", a, err)
		}
	}
}
