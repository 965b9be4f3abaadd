package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config holds every threshold, window and cooldown. Thresholds are data:
// DefaultConfig documents the defaults, and a JSON "detect" section of the
// sensor config (or the --config file of `attackmap-sensor detect`)
// overrides any subset of them; fields left out keep their default.
//
// Buckets are leaky buckets on event time: each counted event adds one,
// one unit leaks out every Leak, and the detector fires when an event
// would lift the level above Capacity (so capacity 5 fires on the 6th quick
// event). Distinct buckets count only values (users, ports, paths) not seen
// while the bucket was filled.
type Config struct {
	// IncludePrivate lets loopback, private, link-local, unique-local,
	// CGNAT, documentation and unspecified sources raise incidents.
	// Default false: those are skipped.
	IncludePrivate bool `json:"include_private"`
	// Allow lists addresses and networks ("203.0.113.7", "10.0.0.0/8")
	// that are never reported. Default empty.
	Allow []string `json:"allow,omitempty"`
	// MaxKeys caps the addresses each detector tracks at once (default
	// 100,000). When full, expired keys go first, then arbitrary ones, so
	// a flood of spoofed sources cannot grow memory without bound.
	MaxKeys int `json:"max_keys"`
	// Cooldown is how long after its last event an incident stays open:
	// within it, more events update the same incident (same id) instead
	// of raising a new one. Default 10 minutes.
	Cooldown Duration `json:"cooldown"`
	// UpdateInterval spaces the updated copies of an open incident: at
	// most one per interval of event time, plus one whenever the severity
	// rises and the last one at Flush. Default 10 s; 0 emits every update.
	UpdateInterval Duration `json:"update_interval"`
	// WebRules lists rule files (JSON, the format of package webrule) that
	// web_scan and exploit_attempt use on top of the embedded rule pack,
	// which is always loaded; a rule with the id of an embedded one
	// replaces it. The engine does not read them: the daemon and
	// `attackmap-sensor detect` compile them with webrule.Load and hand
	// the set over with WithWebRules. Default empty.
	WebRules []string `json:"web_rules,omitempty"`

	SSHBruteforce      SSHBruteforce      `json:"ssh_bruteforce"`
	CredentialStuffing CredentialStuffing `json:"credential_stuffing"`
	SSHProbe           SSHProbe           `json:"ssh_probe"`
	SSHTimeoutStorm    SSHTimeoutStorm    `json:"ssh_timeout_storm"`
	PortScan           PortScan           `json:"port_scan"`
	WebScan            WebScan            `json:"web_scan"`
	ExploitAttempt     ExploitAttempt     `json:"exploit_attempt"`
	C2Connect          C2Connect          `json:"c2_connect"`
	SuspiciousExec     SuspiciousExec     `json:"suspicious_exec"`
}

// Bucket is a leaky bucket: Capacity units, one leaking out every Leak.
type Bucket struct {
	Capacity int      `json:"capacity"`
	Leak     Duration `json:"leak"`
}

// threshold is the count that fires the bucket.
func (b Bucket) threshold() int { return b.Capacity + 1 }

// DefaultConfig returns the defaults of every detector (each detector's
// file holds its own).
func DefaultConfig() Config {
	return Config{
		MaxKeys:            100_000,
		Cooldown:           Duration(10 * time.Minute),
		UpdateInterval:     Duration(10 * time.Second),
		SSHBruteforce:      defaultSSHBruteforce(),
		CredentialStuffing: defaultCredentialStuffing(),
		SSHProbe:           defaultSSHProbe(),
		SSHTimeoutStorm:    defaultSSHTimeoutStorm(),
		PortScan:           defaultPortScan(),
		WebScan:            defaultWebScan(),
		ExploitAttempt:     defaultExploitAttempt(),
		C2Connect:          defaultC2Connect(),
		SuspiciousExec:     defaultSuspiciousExec(),
	}
}

// Validate checks a configuration and returns the first problem as one line.
func (c *Config) Validate() error {
	if c.MaxKeys <= 0 {
		return fmt.Errorf("detect: max_keys: %d, must be positive", c.MaxKeys)
	}
	if c.Cooldown <= 0 {
		return fmt.Errorf("detect: cooldown: must be positive")
	}
	if c.UpdateInterval < 0 {
		return fmt.Errorf("detect: update_interval: must not be negative")
	}
	if _, err := parseAllow(c.Allow); err != nil {
		return err
	}
	return c.validateTable()
}

// parseAllow parses the allow list into prefixes.
func parseAllow(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("detect: allow: %q is not an address or network", s)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("detect: allow: %q is not an address or network", s)
		}
		a = a.WithZone("").Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("10s", "1m30s"); a bare number is taken as seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes "10s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "10s" or 10 (seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration like \"10s\" or \"5m\"", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return errors.New("a duration is a string like \"10s\" or a number of seconds")
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// DecodeConfig reads a JSON configuration onto DefaultConfig: either a
// whole sensor config with a "detect" section, or the detect section alone.
// Fields left out keep their default; unknown detect fields are an error.
// A sensor config without a "detect" section gives the defaults.
func DecodeConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return cfg, fmt.Errorf("detect config: %w", oneLine(err))
	}
	section := data
	if d, ok := top["detect"]; ok {
		section = d
	} else if !anyDetectKey(top) {
		return cfg, cfg.Validate()
	}
	dec := json.NewDecoder(bytes.NewReader(section))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("detect config: %w", oneLine(err))
	}
	return cfg, cfg.Validate()
}

func anyDetectKey(top map[string]json.RawMessage) bool {
	b, _ := json.Marshal(DefaultConfig())
	var known map[string]json.RawMessage
	_ = json.Unmarshal(b, &known)
	known["allow"] = nil
	known["web_rules"] = nil
	for k := range top {
		if _, ok := known[k]; ok {
			return true
		}
	}
	return false
}

func oneLine(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("malformed JSON at byte %d: %v", se.Offset, err)
	}
	return errors.New(strings.ReplaceAll(err.Error(), "\n", " "))
}
