package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/attackmap/attackmap/incident"
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

	SSHBruteforce      SSHBruteforce      `json:"ssh_bruteforce"`
	CredentialStuffing CredentialStuffing `json:"credential_stuffing"`
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

// SSHBruteforce counts failed SSH authentication attempts per source.
type SSHBruteforce struct {
	Disabled bool              `json:"disabled"`
	Severity incident.Severity `json:"severity"` // default high
	// Fast: capacity 5 leaking one per 10 s (fires on the 6th quick failure).
	Fast Bucket `json:"fast"`
	// Slow: capacity 10 leaking one per 60 s, for patient guessers.
	Slow Bucket `json:"slow"`
}

// CredentialStuffing counts many usernames or many failed web logins from
// one source.
type CredentialStuffing struct {
	Disabled bool              `json:"disabled"`
	Severity incident.Severity `json:"severity"` // default high
	// SSHUsers: distinct usernames over SSH; capacity 4 leaking one per
	// 30 s fires on the 5th distinct username.
	SSHUsers Bucket `json:"ssh_users"`
	// HTTPFailures: POSTs to login endpoints answered 401 or 403;
	// capacity 5 leaking one per 10 s.
	HTTPFailures Bucket `json:"http_failures"`
	// LoginPaths are case-insensitive substrings of a path that make it a
	// login endpoint.
	LoginPaths []string `json:"login_paths"`
	// WordPress: POSTs to WPPaths whatever the answer (WordPress answers
	// failed logins with 200); capacity 9 leaking one per 10 s.
	WordPress Bucket   `json:"wordpress"`
	WPPaths   []string `json:"wp_paths"`
}

// PortScan counts distinct destination ports per source from eBPF probe and
// accept events and firewall drops.
type PortScan struct {
	Disabled bool              `json:"disabled"`
	Severity incident.Severity `json:"severity"` // default low
	// Ports: capacity 14 leaking one per 5 s: the 15th distinct port fires.
	// Many hits on one port are one value, never a scan.
	Ports Bucket `json:"ports"`
}

// WebScan looks for scanners in access logs.
type WebScan struct {
	Disabled bool              `json:"disabled"`
	Severity incident.Severity `json:"severity"` // default medium
	// Errors: non-static requests answered with one of ErrorStatuses, by
	// distinct path; capacity 9 leaking one per 10 s (the 10th fires).
	Errors        Bucket `json:"errors"`
	ErrorStatuses []int  `json:"error_statuses"`
	// Sensitive, Admin and Traversal are case-insensitive path substrings;
	// ScannerAgents are case-insensitive user-agent substrings. One such
	// request raises the incident at once. Admin paths count only when
	// answered 4xx (a site's real admin page answers 200 or a redirect).
	Sensitive     []string `json:"sensitive"`
	Admin         []string `json:"admin"`
	Traversal     []string `json:"traversal"`
	ScannerAgents []string `json:"scanner_agents"`
}

// ExploitAttempt raises a high-severity incident for a single unmistakable
// exploit probe.
type ExploitAttempt struct {
	Disabled bool              `json:"disabled"`
	Severity incident.Severity `json:"severity"` // default high
	// Signatures are case-insensitive substrings of the path plus query
	// (or of the user agent, for UserAgent signatures).
	Signatures []Signature `json:"signatures"`
}

// Signature names one exploit probe.
type Signature struct {
	Name string `json:"name"`
	// Match is a case-insensitive substring of "path?query".
	Match string `json:"match,omitempty"`
	// UserAgent is a case-insensitive substring of the user agent.
	UserAgent string `json:"user_agent,omitempty"`
}

// C2Connect raises a critical incident when a process connects to an
// address on a loaded threat list (through the ThreatLists option).
type C2Connect struct {
	Disabled bool              `json:"disabled"`
	Severity incident.Severity `json:"severity"` // default critical
}

// SuspiciousExec raises a high-severity incident when a web server or
// database process starts a shell.
type SuspiciousExec struct {
	Disabled bool              `json:"disabled"`
	Severity incident.Severity `json:"severity"` // default high
	// Shells are process names (comm) of shells.
	Shells []string `json:"shells"`
	// Parents are name prefixes of web server and database processes.
	Parents []string `json:"parents"`
}

// DefaultConfig returns the defaults of every detector.
func DefaultConfig() Config {
	return Config{
		MaxKeys:        100_000,
		Cooldown:       Duration(10 * time.Minute),
		UpdateInterval: Duration(10 * time.Second),
		SSHBruteforce: SSHBruteforce{
			Severity: incident.High,
			Fast:     Bucket{Capacity: 5, Leak: Duration(10 * time.Second)},
			Slow:     Bucket{Capacity: 10, Leak: Duration(60 * time.Second)},
		},
		CredentialStuffing: CredentialStuffing{
			Severity:     incident.High,
			SSHUsers:     Bucket{Capacity: 4, Leak: Duration(30 * time.Second)},
			HTTPFailures: Bucket{Capacity: 5, Leak: Duration(10 * time.Second)},
			LoginPaths: []string{"login", "logon", "signin", "sign-in", "sign_in", "/auth",
				"/session", "j_security_check", "wp-login.php", "xmlrpc.php"},
			WordPress: Bucket{Capacity: 9, Leak: Duration(10 * time.Second)},
			WPPaths:   []string{"/wp-login.php", "/xmlrpc.php"},
		},
		PortScan: PortScan{
			Severity: incident.Low,
			Ports:    Bucket{Capacity: 14, Leak: Duration(5 * time.Second)},
		},
		WebScan: WebScan{
			Severity:      incident.Medium,
			Errors:        Bucket{Capacity: 9, Leak: Duration(10 * time.Second)},
			ErrorStatuses: []int{400, 403, 404},
			Sensitive: []string{"/.env", "/.git/", "/.svn/", "/.hg/", "/.aws/credentials",
				"/.ssh/", "/.htpasswd", "/.htaccess", "/.ds_store", "/wp-config.php.", "/wp-config.bak",
				"/wp-config.old", "/wp-config.txt", "/config.php.bak", "/.vscode/sftp.json",
				"/id_rsa", "/.bash_history", "/.docker/config.json", "/server-status",
				".sql", ".sql.gz", ".sql.zip", "/backup.zip", "/backup.tar.gz", "/dump.rdb",
				"/phpinfo.php", "/info.php", "/.well-known/security.txt~", "/web.config", "/etc/passwd"},
			Admin: []string{"/wp-admin", "/phpmyadmin", "/pma/", "/myadmin", "/adminer", "/admin",
				"/manager/html", "/administrator/", "/cpanel", "/webmin", "/solr/admin", "/jenkins", "/console"},
			Traversal: []string{"../", "..%2f", "%2e%2e", "..\\", "..%5c", "%252e%252e"},
			ScannerAgents: []string{"sqlmap", "nikto", "nmap", "masscan", "zgrab", "nuclei", "gobuster",
				"dirbuster", "dirb/", "wpscan", "acunetix", "nessus", "openvas", "whatweb", "ffuf",
				"feroxbuster", "jaeles", "censysinspect", "l9explore", "l9tcpid", "fuzz faster"},
		},
		ExploitAttempt: ExploitAttempt{
			Severity: incident.High,
			Signatures: []Signature{
				{Name: "phpunit eval-stdin RCE (CVE-2017-9841)", Match: "/phpunit/src/util/php/eval-stdin.php"},
				{Name: "Apache path traversal RCE (CVE-2021-41773)", Match: "/cgi-bin/.%2e/"},
				{Name: "Apache path traversal RCE (CVE-2021-42013)", Match: "/cgi-bin/%%32%65%%32%65/"},
				{Name: "Apache path traversal (CVE-2021-42013)", Match: "/.%%32%65/"},
				{Name: "Log4Shell JNDI lookup (CVE-2021-44228)", Match: "${jndi:"},
				{Name: "Log4Shell JNDI lookup (CVE-2021-44228)", UserAgent: "${jndi:"},
				{Name: "Shellshock (CVE-2014-6271)", UserAgent: "() {"},
				{Name: "ThinkPHP RCE", Match: "invokefunction&function=call_user_func_array"},
				{Name: "GPON router RCE (CVE-2018-10561)", Match: "/gponform/diag_form"},
				{Name: "Boa router login probe", Match: "/boaform/admin/formlogin"},
				{Name: "Mozi/Mirai shell download", Match: "/shell?cd+/tmp"},
				{Name: "Netgear setup.cgi RCE", Match: "/setup.cgi?next_file=netgear.cfg"},
				{Name: "Huawei HG532 RCE (CVE-2017-17215)", Match: "/ctrlt/deviceupgrade_1"},
				{Name: "Realtek SDK RCE (CVE-2021-35394)", Match: "/picsdesc.xml"},
				{Name: "LuCI command injection", Match: "/cgi-bin/luci/;stok="},
				{Name: "WebLogic console RCE (CVE-2020-14882)", Match: "/console/css/%252e%252e%252fconsole.portal"},
				{Name: "Spring Cloud Gateway RCE (CVE-2022-22947)", Match: "/actuator/gateway/routes"},
				{Name: "PHP CGI argument injection (CVE-2024-4577)", Match: "?%add+allow_url_include"},
				{Name: "PHP CGI argument injection (CVE-2012-1823)", Match: "-d+allow_url_include"},
				{Name: "Hikvision RCE (CVE-2021-36260)", Match: "/sdk/weblanguage"},
				{Name: "Remote file download in query", Match: "wget+http"},
				{Name: "Remote file download in query", Match: "curl+http"},
				{Name: "/etc/passwd read", Match: "/etc/passwd"},
			},
		},
		C2Connect: C2Connect{Severity: incident.Critical},
		SuspiciousExec: SuspiciousExec{
			Severity: incident.High,
			Shells:   []string{"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "csh", "tcsh"},
			Parents: []string{"nginx", "apache2", "httpd", "lighttpd", "caddy", "php-fpm", "php-cgi",
				"uwsgi", "tomcat", "mysqld", "mariadbd", "postgres", "postmaster", "redis-server",
				"mongod", "memcached", "couchdb", "elasticsearch"},
		},
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
	buckets := []struct {
		name string
		b    Bucket
	}{
		{"ssh_bruteforce.fast", c.SSHBruteforce.Fast}, {"ssh_bruteforce.slow", c.SSHBruteforce.Slow},
		{"credential_stuffing.ssh_users", c.CredentialStuffing.SSHUsers},
		{"credential_stuffing.http_failures", c.CredentialStuffing.HTTPFailures},
		{"credential_stuffing.wordpress", c.CredentialStuffing.WordPress},
		{"port_scan.ports", c.PortScan.Ports}, {"web_scan.errors", c.WebScan.Errors},
	}
	for _, b := range buckets {
		if b.b.Capacity < 0 || b.b.Capacity > 1_000_000 {
			return fmt.Errorf("detect: %s.capacity: %d is not between 0 and 1000000", b.name, b.b.Capacity)
		}
		if b.b.Leak <= 0 {
			return fmt.Errorf("detect: %s.leak: must be positive", b.name)
		}
	}
	sevs := []struct {
		name string
		s    incident.Severity
	}{
		{"ssh_bruteforce", c.SSHBruteforce.Severity}, {"credential_stuffing", c.CredentialStuffing.Severity},
		{"port_scan", c.PortScan.Severity}, {"web_scan", c.WebScan.Severity},
		{"exploit_attempt", c.ExploitAttempt.Severity}, {"c2_connect", c.C2Connect.Severity},
		{"suspicious_exec", c.SuspiciousExec.Severity},
	}
	for _, s := range sevs {
		if !s.s.Valid() {
			return fmt.Errorf("detect: %s.severity: unknown value %q", s.name, s.s)
		}
	}
	for i, s := range c.ExploitAttempt.Signatures {
		if s.Name == "" || (s.Match == "" && s.UserAgent == "") {
			return fmt.Errorf("detect: exploit_attempt.signatures[%d]: needs a name and a match or user_agent", i)
		}
	}
	return nil
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
