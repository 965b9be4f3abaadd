package respond

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// Config is the "response" section of the sensor's configuration.
//
//	"response": {
//	  "enabled": false,          false: dry run ("would block (dry run)"), nothing changes in the kernel
//	  "backend": "nftables",     nftables | xdp | none (none is a dry run too)
//	  "detectors": ["ssh_bruteforce", "credential_stuffing", "exploit_attempt", "port_scan"],
//	  "min_severity": "high",    incidents below it are not considered (and not recorded)
//	  "allow": ["203.0.113.7", "198.51.100.0/24"],   never blocked
//	  "allow_private": false,    true lets loopback, private and link-local sources be blocked
//	  "ttl": ["1h", "24h", "7d"],   first block, repeat offender, and every block after
//	  "repeat_window": "30d",    how long a blocked address counts as a repeat offender
//	  "max_entries": 100000,     blocks in place at once
//	  "max_per_minute": 60,      new blocks per minute
//	  "ssh_ports": [22],         ports whose established connections protect their peer
//	  "nftables": {"table": "attackmap", "priority": -10},
//	  "xdp": {"interfaces": ["eth0"]}
//	}
type Config struct {
	Enabled      bool              `json:"enabled"`
	Backend      string            `json:"backend"`
	Detectors    []string          `json:"detectors"`
	MinSeverity  incident.Severity `json:"min_severity"`
	Allow        []string          `json:"allow"`
	AllowPrivate bool              `json:"allow_private"`
	TTL          []Duration        `json:"ttl"`
	RepeatWindow Duration          `json:"repeat_window"`
	MaxEntries   int               `json:"max_entries"`
	MaxPerMinute int               `json:"max_per_minute"`
	SSHPorts     []int             `json:"ssh_ports"`
	NFTables     NFTablesOptions   `json:"nftables"`
	XDP          XDPConfig         `json:"xdp"`
}

// NFTablesOptions configure the nftables backend.
type NFTablesOptions struct {
	// Table is the inet table attackmap owns (default "attackmap"). The
	// drill and the tests use their own, so they never touch a real one.
	Table string `json:"table"`
	// Priority of the input chain. -10 runs before the usual filter
	// chains (priority 0), so a blocked packet costs one set lookup and
	// no other rule; a drop in any base chain is final whatever the others
	// say, so the order only changes the cost.
	Priority int `json:"priority"`
}

// DefaultNFTable is the table the sensor owns.
const DefaultNFTable = "attackmap"

// DefaultConfig is what an empty "response" section means.
func DefaultConfig() Config {
	return Config{
		Backend:      "nftables",
		Detectors:    []string{"ssh_bruteforce", "credential_stuffing", "exploit_attempt", "port_scan"},
		MinSeverity:  incident.High,
		TTL:          []Duration{Duration(time.Hour), Duration(24 * time.Hour), Duration(7 * 24 * time.Hour)},
		RepeatWindow: Duration(30 * 24 * time.Hour),
		// 100,000 addresses is ~10 MB of kernel set memory and a few MB
		// of state file: far past any real attack list, still bounded
		// when forged incidents try to fill the table.
		MaxEntries: 100_000,
		// 60 new blocks a minute is more than a busy public host sees
		// from real attackers; a flood beyond it (forged sources, a
		// detector gone wrong) is logged, not enacted.
		MaxPerMinute: 60,
		SSHPorts:     []int{22},
		NFTables:     NFTablesOptions{Table: DefaultNFTable, Priority: -10},
	}
}

// Check validates c and fills in what a partial section left empty.
func (c *Config) Check() error {
	def := DefaultConfig()
	switch c.Backend {
	case "":
		c.Backend = def.Backend
	case "nftables", "xdp", "none":
	default:
		return fmt.Errorf("response: backend %q: want nftables, xdp or none", c.Backend)
	}
	if c.MinSeverity == "" {
		c.MinSeverity = def.MinSeverity
	}
	if !c.MinSeverity.Valid() {
		return fmt.Errorf("response: min_severity %q: want critical, high, medium, low or info", c.MinSeverity)
	}
	if _, err := parseAllow(c.Allow); err != nil {
		return err
	}
	if len(c.TTL) == 0 {
		c.TTL = def.TTL
	}
	for i, d := range c.TTL {
		if time.Duration(d) < time.Second {
			return fmt.Errorf("response: ttl[%d]: %s is under one second", i, time.Duration(d))
		}
	}
	if c.RepeatWindow == 0 {
		c.RepeatWindow = def.RepeatWindow
	}
	if c.RepeatWindow < 0 || c.MaxEntries < 0 || c.MaxPerMinute < 0 {
		return errors.New("response: repeat_window, max_entries and max_per_minute must not be negative")
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = def.MaxEntries
	}
	if c.MaxPerMinute == 0 {
		c.MaxPerMinute = def.MaxPerMinute
	}
	for _, p := range c.SSHPorts {
		if p < 1 || p > 65535 {
			return fmt.Errorf("response: ssh_ports: %d is not a port", p)
		}
	}
	if c.NFTables.Table == "" {
		c.NFTables.Table = DefaultNFTable
	}
	for _, r := range c.NFTables.Table {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("response: nftables.table %q: use a-z, 0-9 and _", c.NFTables.Table)
		}
	}
	if len(c.NFTables.Table) > 64 {
		return fmt.Errorf("response: nftables.table %q is too long", c.NFTables.Table)
	}
	if c.Backend == "xdp" && c.Enabled {
		x, err := c.XDP.check()
		if err != nil {
			return fmt.Errorf("response: %w", err)
		}
		c.XDP = x
	}
	return nil
}

// DryRun reports whether decisions stay decisions: blocking is off, or the
// backend is "none".
func (c *Config) DryRun() bool { return !c.Enabled || c.Backend == "none" }

// wants reports whether an incident is one the responder acts on.
func (c *Config) wants(in *incident.Incident) bool {
	return slices.Contains(c.Detectors, in.Source) && in.Severity.Rank() >= c.MinSeverity.Rank()
}

// ttlFor is the ladder's step for an address blocked strikes times before.
func (c *Config) ttlFor(strikes int) time.Duration {
	if strikes >= len(c.TTL) {
		strikes = len(c.TTL) - 1
	}
	return time.Duration(c.TTL[strikes])
}

// parseAllow turns addresses and CIDRs into prefixes.
func parseAllow(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("response: allow: %q: %w", s, err)
			}
			p = p.Masked()
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("response: allow: %q is neither an address nor a CIDR", s)
		}
		a = a.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Duration is a time.Duration that reads "90s", "1h" or "7d" from JSON.
type Duration time.Duration

// UnmarshalJSON reads a Go duration string, with "d" for days.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"1h\" or \"7d\"")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the short form (FormatDuration).
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(FormatDuration(time.Duration(d)))
}

// ParseDuration is time.ParseDuration plus whole days: "7d", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 10000 {
			return 0, fmt.Errorf("duration %q: bad day count", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	return days + v, nil
}

// FormatDuration writes d the way an operator reads it on the map: "1h",
// "24h", "7d", "90m", "2s"; the largest unit that divides it exactly.
func FormatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d%(24*time.Hour) == 0 && d >= 48*time.Hour:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.Round(time.Second).String()
}
