package enrich

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/enrich/abuseipdb"
	"github.com/attackmap/attackmap/sensor/enrich/ipapi"
	"github.com/attackmap/attackmap/sensor/enrich/threatlist"
	"github.com/attackmap/attackmap/sensor/geoip"
)

// services is one httptest server speaking both ip-api's batch API and
// AbuseIPDB's check API, recording which addresses were asked about.
type services struct {
	mu    sync.Mutex
	asked []string
	delay time.Duration
	stop  chan struct{}
}

func (s *services) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		}
	}
	switch r.URL.Path {
	case "/batch":
		var qs []string
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &qs)
		var out []map[string]any
		for _, q := range qs {
			s.mu.Lock()
			s.asked = append(s.asked, "ipapi:"+q)
			s.mu.Unlock()
			out = append(out, map[string]any{"status": "success", "countryCode": "BR", "city": "São Paulo",
				"lat": -23.55, "lon": -46.63, "as": "AS28573 Claro", "query": q})
		}
		json.NewEncoder(w).Encode(out)
	case "/api/v2/check":
		ip := r.URL.Query().Get("ipAddress")
		s.mu.Lock()
		s.asked = append(s.asked, "abuse:"+ip)
		s.mu.Unlock()
		fmt.Fprintf(w, `{"data":{"ipAddress":%q,"abuseConfidenceScore":87,"isTor":true}}`, ip)
	default:
		http.NotFound(w, r)
	}
}

func setup(t *testing.T, delay time.Duration) (*Enricher, *services) {
	t.Helper()
	svc := &services{delay: delay, stop: make(chan struct{})}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(svc.stop) }) // runs first: releases hanging handlers
	mm := "../../testdata/maxmind/"
	if _, err := os.Stat(mm); err != nil {
		t.Fatal("MaxMind test databases missing from testdata/maxmind")
	}
	geo, err := geoip.Open([]string{mm + "GeoLite2-City-Test.mmdb", mm + "GeoLite2-ASN-Test.mmdb"}, geoip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { geo.Close() })
	list := filepath.Join(t.TempDir(), "feodo.txt")
	os.WriteFile(list, []byte("81.2.69.142\n200.1.1.0/24\n"), 0o644)
	lists, err := threatlist.New(threatlist.Options{Sources: []threatlist.Source{{Name: "feodo", Path: list}}})
	if err != nil {
		t.Fatal(err)
	}
	abuse, err := abuseipdb.New(abuseipdb.Options{Key: "k", URL: srv.URL + "/api/v2/check"})
	if err != nil {
		t.Fatal(err)
	}
	e := New(Config{
		Geo: geo, Lists: lists, Abuse: abuse,
		IPAPI:    ipapi.New(ipapi.Options{URL: srv.URL + "/batch"}),
		Deadline: 300 * time.Millisecond,
	})
	return e, svc
}

func newIncident(ip string, sev incident.Severity) *incident.Incident {
	return &incident.Incident{ID: "ssh_bruteforce:" + ip, Source: "ssh_bruteforce", Severity: sev, IP: ip,
		TS: time.Date(2026, 3, 22, 14, 32, 1, 0, time.UTC)}
}

func TestEnrichesFromEverySource(t *testing.T) {
	e, svc := setup(t, 0)
	known := newIncident("81.2.69.142", incident.High)   // in the MaxMind test db and the list
	unknown := newIncident("200.1.1.7", incident.Medium) // only ip-api knows it
	low := newIncident("200.1.2.8", incident.Low)        // below medium: no AbuseIPDB
	private := newIncident("10.1.2.3", incident.Critical)
	ins := []*incident.Incident{known, unknown, low, private}
	changed := e.Enrich(context.Background(), ins)
	if !slices.Equal(changed, []bool{true, true, true, false}) {
		t.Errorf("changed = %v, want the three public addresses only", changed)
	}

	if known.Country != "GB" || known.City != "London" || known.GeoSource != "maxmind" || !known.HasLocation() {
		t.Errorf("known: %+v", known)
	}
	if unknown.Country != "BR" || unknown.GeoSource != "ip-api" || unknown.ASN != 28573 {
		t.Errorf("unknown: %+v", unknown)
	}
	if known.AbuseScore == nil || *known.AbuseScore != 87 || !slices.Equal(known.Tags, []string{"feodo", "tor-exit"}) {
		t.Errorf("known abuse/tags: %v %v", known.AbuseScore, known.Tags)
	}
	if !slices.Contains(unknown.Tags, "feodo") {
		t.Errorf("list CIDR not matched: %v", unknown.Tags)
	}
	if low.AbuseScore != nil {
		t.Error("a low incident was checked with AbuseIPDB")
	}
	for _, in := range ins {
		if in.Target != nil {
			t.Errorf("%s: target %+v set by enrichment; the detection stage stamps it", in.IP, in.Target)
		}
		if err := in.Validate(); err != nil {
			t.Errorf("%s: %v", in.IP, err)
		}
	}
	asked := strings.Join(svc.asked, " ")
	if strings.Contains(asked, "10.1.2.3") {
		t.Errorf("a private address was sent out: %s", asked)
	}
	if strings.Contains(asked, "ipapi:81.2.69.142") {
		t.Errorf("ip-api asked about an address the local database knows: %s", asked)
	}
}

func TestASlowServiceNeverHoldsDeliveryPastTheDeadline(t *testing.T) {
	e, _ := setup(t, 10*time.Second)
	in := newIncident("200.1.1.7", incident.High)
	start := time.Now()
	e.Enrich(context.Background(), []*incident.Incident{in})
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Enrich took %v with a 300 ms deadline", el)
	}
	if in.HasLocation() || in.AbuseScore != nil {
		t.Fatalf("enriched from a hanging service: %+v", in)
	}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestTargetConfig(t *testing.T) {
	lat, lon, bad := 1.0, 2.0, 200.0
	for _, c := range []struct {
		cfg  TargetConfig
		want string
	}{
		{TargetConfig{}, "<nil>"},
		{TargetConfig{City: "Frankfurt"}, "&{50.11 8.68 DE}"},
		{TargetConfig{Lat: &lat, Lon: &lon}, "&{1 2 }"},
		{TargetConfig{City: "Atlantis"}, "error"},
		{TargetConfig{Lat: &lat}, "error"},
		{TargetConfig{Lat: &bad, Lon: &lon}, "error"},
		{TargetConfig{Lat: &lat, Lon: &lon, Country: "Germany"}, "error"},
	} {
		loc, err := c.cfg.Location()
		got := fmt.Sprint(loc)
		if err != nil {
			got = "error"
		}
		if got != c.want {
			t.Errorf("%+v: got %s (%v), want %s", c.cfg, got, err, c.want)
		}
	}
}

func TestThreatListsAreMatchedOnceAnIncidentNamesThem(t *testing.T) {
	e, _ := setup(t, 0)
	// c2_connect matched the lists when it raised the incident: its
	// evidence names them, and enrichment takes that answer instead of
	// matching the address again (200.1.1.7 is on "feodo" by CIDR).
	c2 := newIncident("200.1.1.7", incident.Low)
	c2.Evidence = &incident.Evidence{Lists: []string{"from-detector"}}
	e.Enrich(context.Background(), []*incident.Incident{c2})
	if !slices.Equal(c2.Tags, []string{"from-detector"}) {
		t.Errorf("tags %v, want the detector's lists only", c2.Tags)
	}
}

func TestAnIncidentWithNothingToAddIsReportedUnchanged(t *testing.T) {
	e := New(Config{})
	in := newIncident("10.1.2.3", incident.High)
	if changed := e.Enrich(context.Background(), []*incident.Incident{in}); !slices.Equal(changed, []bool{false}) {
		t.Errorf("changed = %v, want [false]", changed)
	}
}
