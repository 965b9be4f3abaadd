package detect

import (
	"fmt"

	"github.com/attackmap/attackmap/incident"
)

// detectorTable is the one list of detectors, in the order each event
// visits them. A detector lives in one file with its config section type,
// its defaults and its row (a func returning its registration); adding a
// detector means that file, its tests, a field in Config for its JSON
// section and a line here.
func detectorTable() []registration {
	return []registration{
		sshBruteforceDetector(),
		credentialStuffingDetector(),
		sshProbeDetector(),
		sshTimeoutStormDetector(),
		portScanDetector(),
		exploitAttemptDetector(),
		webScanDetector(),
		c2ConnectDetector(),
		suspiciousExecDetector(),
	}
}

// registration is one row of the detector table.
type registration struct {
	// name is the incident source the detector raises and the key of its
	// config section.
	name string
	// kinds are the event kinds the detector is handed: the engine routes
	// each event only to the detectors that want its kind.
	kinds []string
	// section returns the detector's switch inside a Config (default on:
	// Disabled false).
	section func(*Config) *Switch
	// severity returns the configured base severity, for Validate.
	severity func(*Config) incident.Severity
	// buckets returns the named buckets of the section, for Validate.
	buckets func(*Config) map[string]Bucket
	// check validates the rest of the section (optional).
	check func(*Config) error
	// build makes the detector for an engine.
	build func(*Engine) detector
}

// Switch is what every detector section has: a way to turn it off.
type Switch struct {
	// Disabled switches the detector off. Default false (on).
	Disabled bool `json:"disabled"`
}

// Detectors lists the names of every detector the sensor has, in table
// order.
func Detectors() []string {
	t := detectorTable()
	out := make([]string, len(t))
	for i, r := range t {
		out[i] = r.name
	}
	return out
}

// validateTable checks every detector section of c.
func (c *Config) validateTable() error {
	for _, r := range detectorTable() {
		if r.severity != nil {
			if s := r.severity(c); !s.Valid() {
				return fmt.Errorf("detect: %s.severity: unknown value %q", r.name, s)
			}
		}
		if r.buckets != nil {
			for name, b := range r.buckets(c) {
				if b.Capacity < 0 || b.Capacity > 1_000_000 {
					return fmt.Errorf("detect: %s.%s.capacity: %d is not between 0 and 1000000", r.name, name, b.Capacity)
				}
				if b.Leak <= 0 {
					return fmt.Errorf("detect: %s.%s.leak: must be positive", r.name, name)
				}
			}
		}
		if r.check != nil {
			if err := r.check(c); err != nil {
				return err
			}
		}
	}
	return nil
}
