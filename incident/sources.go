package incident

import "slices"

// Other is the statistics key that stands for every value outside a known
// list (an unknown detector name, geo source or a country past a cap), so
// that what a sensor sends cannot grow the relay's answers.
const Other = "other"

// knownSources lists every detector name a sensor raises incidents under
// (the "source" field). The relay counts any other name as Other in its
// statistics, so a hostile sensor cannot grow /api/stats with made-up
// names. A test in sensor/detect checks that every detector the sensor has
// is listed here: a new detector fails that test until its name is added.
var knownSources = []string{
	"c2_connect",
	"credential_stuffing",
	"exploit_attempt",
	"port_scan",
	"ssh_bruteforce",
	"ssh_probe",
	"ssh_timeout_storm",
	"suspicious_exec",
	"web_scan",
}

// knownGeoSources lists the geo_source values sensors set (the GeoIP
// databases and lookups they use). A test in sensor/enrich checks the
// sensor's constants against it.
var knownGeoSources = []string{"dbip", "drill", "ip-api", "maxmind"}

// KnownSource reports whether s is a known detector name.
func KnownSource(s string) bool {
	_, ok := slices.BinarySearch(knownSources, s)
	return ok
}

// KnownGeoSource reports whether s is a known geo_source value.
func KnownGeoSource(s string) bool {
	_, ok := slices.BinarySearch(knownGeoSources, s)
	return ok
}
