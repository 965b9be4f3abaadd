package drill

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// OverlayDatabaseType is the metadata type of the overlay: the GeoIP2-City
// schema, so geoip2-golang's City (and any MaxMind-format reader) reads it.
const OverlayDatabaseType = "GeoIP2-City"

// OverlayDescription is the overlay's English metadata description; it says
// what the file is to anyone who opens it with mmdbinspect.
const OverlayDescription = "attackmap drill overlay: places the drill's 127.10.0.x attackers in real cities. For drills only."

// Overlay returns the drill GeoIP overlay: a small mmdb in the GeoIP2-City
// schema that places each drill attacker address (Plan) in its city, with
// country.iso_code, city.names.en, location.latitude/longitude/
// accuracy_radius/time_zone, continent, registered_country and, beyond what
// City reads, traits.autonomous_system_number/organization (documentation
// ASNs). Every other address is absent, so the overlay can sit first in a
// list of databases. Ordinary runs never load it.
func Overlay() ([]byte, error) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: OverlayDatabaseType,
		Description:  map[string]string{"en": OverlayDescription},
		Languages:    []string{"en"},
		// 127.0.0.0/8 is a reserved network, refused unless included.
		IncludeReservedNetworks: true,
		// IPv6 tree so that looking up an IPv6 address is a miss, not an
		// error ("IPv6 address in an IPv4-only database").
		IPVersion:  6,
		RecordSize: 24, // six records: the smallest size is plenty
	})
	if err != nil {
		return nil, fmt.Errorf("drill: creating overlay: %w", err)
	}
	for _, a := range attacks {
		ip := a.Addr.AsSlice()
		network := &net.IPNet{IP: ip, Mask: net.CIDRMask(8*len(ip), 8*len(ip))}
		if err := tree.Insert(network, cityRecord(a.Place)); err != nil {
			return nil, fmt.Errorf("drill: overlay record for %s: %w", a.Addr, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("drill: writing overlay: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteOverlay writes the overlay to path atomically (temporary file, fsync,
// rename), so a sensor that reloads its databases on change never reads half
// a file. The directory is created when missing.
func WriteOverlay(path string) error {
	data, err := Overlay()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("drill: overlay directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".overlay-*.mmdb")
	if err != nil {
		return fmt.Errorf("drill: overlay: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("drill: writing overlay %s: %w", path, err)
	}
	return nil
}

func names(s string) mmdbtype.Map { return mmdbtype.Map{"en": mmdbtype.String(s)} }

// cityRecord builds one GeoIP2-City record with the field names and types
// MaxMind's databases use (geoname_id uint32, accuracy_radius uint16,
// latitude/longitude double).
func cityRecord(p Place) mmdbtype.Map {
	country := mmdbtype.Map{
		"geoname_id": mmdbtype.Uint32(p.countryID),
		"iso_code":   mmdbtype.String(p.Country),
		"names":      names(p.countryName),
	}
	return mmdbtype.Map{
		"city": mmdbtype.Map{
			"geoname_id": mmdbtype.Uint32(p.cityID),
			"names":      names(p.City),
		},
		"continent": mmdbtype.Map{
			"code":       mmdbtype.String(p.Continent),
			"geoname_id": mmdbtype.Uint32(p.continentID),
			"names":      names(p.continentName),
		},
		"country":            country,
		"registered_country": country,
		"location": mmdbtype.Map{
			"accuracy_radius": mmdbtype.Uint16(p.AccuracyKM),
			"latitude":        mmdbtype.Float64(p.Lat),
			"longitude":       mmdbtype.Float64(p.Lon),
			"time_zone":       mmdbtype.String(p.TimeZone),
		},
		"traits": mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(p.ASN),
			"autonomous_system_organization": mmdbtype.String(p.Org),
		},
	}
}
