package drill

import (
	"net/netip"
	"slices"

	"github.com/attackmap/attackmap/incident"
)

// The drill's attack names, in the order Run performs them. They are what
// Config.Only and the command's --only flag take.
const (
	PortScan       = "port-scan"
	WebScan        = "web-scan"
	ExploitProbe   = "exploit-probe"
	WebLoginStuff  = "web-login-stuffing"
	SSHBruteForce  = "ssh-bruteforce"
	SSHCredStuffer = "ssh-stuffing"
)

// Place is where the drill overlay puts an attacker: a real city, so the map
// lights up like the public demo. The ASN is from the range RFC 5398 reserves
// for documentation (64496-64511), so no real network is blamed for a drill.
type Place struct {
	City       string  `json:"city"`
	Country    string  `json:"country"` // ISO 3166-1 alpha-2
	Continent  string  `json:"continent"`
	Lat        float64 `json:"lat"`
	Lon        float64 `json:"lon"`
	AccuracyKM int     `json:"accuracy_km"`
	TimeZone   string  `json:"time_zone"`
	ASN        uint32  `json:"asn"`
	Org        string  `json:"org"`

	// GeoNames ids, as GeoIP2 databases carry them.
	cityID, countryID, continentID uint32
	countryName, continentName     string
}

// Attack is one attack of the drill and what the sensor is expected to make
// of it with its default thresholds.
type Attack struct {
	// Name is the drill's name for the attack (PortScan, WebScan, ...).
	Name string `json:"name"`
	// Addr is the loopback source address the attack comes from. Every attack
	// has its own, so each raises its own incident and its own marker.
	Addr netip.Addr `json:"addr"`
	// Source is the detector expected to raise the incident (incident.Source).
	// Other detectors may raise further incidents for the same address (the
	// SSH stuffing run is also 7 quick failures, enough for ssh_bruteforce;
	// the web scan's /etc/passwd traversal is also an exploit_attempt).
	Source string `json:"source"`
	// Severity is what the default thresholds and rules give at the
	// drill's counts (the exploit probes match rules of critical severity);
	// a test should accept this severity or higher.
	Severity incident.Severity `json:"severity"`
	// Planned is how many attempts the drill makes: failed SSH passwords,
	// closed ports knocked on, HTTP requests.
	Planned int `json:"planned"`
	// What says in a few words what the attack does.
	What  string `json:"what"`
	Place Place  `json:"place"`
}

// Counts. Each is above its detector's default threshold (see
// sensor/detect DefaultConfig) and below twice it, so the expected severity
// is the detector's base one; only the exploit probes are at twice theirs.
const (
	// sshBrutePasswords failed passwords for root, in connections of
	// sshBrutePerConn tries (hydra's default is 4 per connection): the
	// brute-force bucket (capacity 5) fires on the 6th.
	sshBrutePasswords = 7
	sshBrutePerConn   = 4
	// portScanPorts closed ports: the scan detector fires at 15 distinct.
	portScanPorts = 20
)

// sshStuffUsers are the usernames of the SSH credential-stuffing run, one
// connection and one password each: 7 distinct names against a threshold
// of 5. None is root, so PermitRootLogin does not matter for them, and none
// is a common service account: for a locked account sshd writes an extra
// "User x not allowed" line, which a parser may count as a second attempt.
var sshStuffUsers = []string{"admin", "ubuntu", "oracle", "test", "user", "git", "pi"}

// attacks is the drill plan. Addresses are in 127.10.0.0/24, which loopback
// answers on Linux without any configuration.
var attacks = []Attack{
	{
		Name: PortScan, Addr: netip.MustParseAddr("127.10.0.3"),
		Source: "port_scan", Severity: incident.Low, Planned: portScanPorts,
		What: "TCP connects to closed loopback ports (the kernel answers with resets)",
		Place: Place{City: "Seoul", Country: "KR", Continent: "AS", Lat: 37.5665, Lon: 126.9780,
			AccuracyKM: 20, TimeZone: "Asia/Seoul", ASN: 64498, Org: "attackmap drill (port scan)",
			cityID: 1835848, countryID: 1835841, continentID: 6255147,
			countryName: "South Korea", continentName: "Asia"},
	},
	{
		Name: WebScan, Addr: netip.MustParseAddr("127.10.0.4"),
		Source: "web_scan", Severity: incident.Medium, Planned: len(webScanRequests),
		What: "sensitive files, admin panels, traversal and sqlmap/Nikto requests answered 404",
		Place: Place{City: "Lagos", Country: "NG", Continent: "AF", Lat: 6.5244, Lon: 3.3792,
			AccuracyKM: 20, TimeZone: "Africa/Lagos", ASN: 64499, Org: "attackmap drill (web scan)",
			cityID: 2332459, countryID: 2328926, continentID: 6255146,
			countryName: "Nigeria", continentName: "Africa"},
	},
	{
		Name: ExploitProbe, Addr: netip.MustParseAddr("127.10.0.6"),
		// Both probes match web rules of critical severity (PHPUnit
		// eval-stdin, Apache cgi-bin traversal): the map's red marker.
		Source: "exploit_attempt", Severity: incident.Critical, Planned: len(exploitRequests),
		What: "PHPUnit eval-stdin.php and Apache cgi-bin traversal exploit probes",
		Place: Place{City: "Chicago", Country: "US", Continent: "NA", Lat: 41.8781, Lon: -87.6298,
			AccuracyKM: 20, TimeZone: "America/Chicago", ASN: 64501, Org: "attackmap drill (exploit probe)",
			cityID: 4887398, countryID: 6252001, continentID: 6255149,
			countryName: "United States", continentName: "North America"},
	},
	{
		Name: WebLoginStuff, Addr: netip.MustParseAddr("127.10.0.5"),
		Source: "credential_stuffing", Severity: incident.High, Planned: len(webLoginRequests),
		What: "POST /login and /wp-login.php with leaked credentials, answered 401",
		Place: Place{City: "Singapore", Country: "SG", Continent: "AS", Lat: 1.3521, Lon: 103.8198,
			AccuracyKM: 20, TimeZone: "Asia/Singapore", ASN: 64500, Org: "attackmap drill (login stuffing)",
			cityID: 1880252, countryID: 1880251, continentID: 6255147,
			countryName: "Singapore", continentName: "Asia"},
	},
	{
		Name: SSHBruteForce, Addr: netip.MustParseAddr("127.10.0.1"),
		Source: "ssh_bruteforce", Severity: incident.High, Planned: sshBrutePasswords,
		What: "wrong passwords for root against a real OpenSSH server",
		Place: Place{City: "Frankfurt am Main", Country: "DE", Continent: "EU", Lat: 50.1109, Lon: 8.6821,
			AccuracyKM: 20, TimeZone: "Europe/Berlin", ASN: 64496, Org: "attackmap drill (ssh brute force)",
			cityID: 2925533, countryID: 2921044, continentID: 6255148,
			countryName: "Germany", continentName: "Europe"},
	},
	{
		Name: SSHCredStuffer, Addr: netip.MustParseAddr("127.10.0.2"),
		Source: "credential_stuffing", Severity: incident.High, Planned: len(sshStuffUsers),
		What: "one password each for many usernames against a real OpenSSH server",
		Place: Place{City: "São Paulo", Country: "BR", Continent: "SA", Lat: -23.5505, Lon: -46.6333,
			AccuracyKM: 20, TimeZone: "America/Sao_Paulo", ASN: 64497, Org: "attackmap drill (ssh credential stuffing)",
			cityID: 3448439, countryID: 3469034, continentID: 6255150,
			countryName: "Brazil", continentName: "South America"},
	},
}

// Plan returns the drill's attacks in the order Run performs them, with the
// incident each should raise and where the overlay places its attacker. The
// end-to-end test asserts the map against it.
func Plan() []Attack { return slices.Clone(attacks) }

// Names returns the attack names in plan order.
func Names() []string {
	names := make([]string, len(attacks))
	for i, a := range attacks {
		names[i] = a.Name
	}
	return names
}

// isSSH reports whether the attack needs the drill's sshd.
func isSSH(name string) bool { return name == SSHBruteForce || name == SSHCredStuffer }

// isWeb reports whether the attack needs the drill's web server.
func isWeb(name string) bool { return name == WebScan || name == ExploitProbe || name == WebLoginStuff }
