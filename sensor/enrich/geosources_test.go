package enrich

import (
	"testing"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/enrich/ipapi"
	"github.com/attackmap/attackmap/sensor/geoip"
)

// TestEveryGeoSourceIsKnown guards incident's list of geo_source values:
// the relay counts any other value as "other", and the map shows the
// DB-IP attribution only for "dbip". Add a new value to knownGeoSources
// in incident/sources.go.
func TestEveryGeoSourceIsKnown(t *testing.T) {
	for _, s := range []string{geoip.SourceMaxMind, geoip.SourceDBIP, geoip.SourceDrill, ipapi.Source} {
		if !incident.KnownGeoSource(s) {
			t.Errorf("geo source %q is not an incident.KnownGeoSource; add it to incident/sources.go", s)
		}
	}
}
