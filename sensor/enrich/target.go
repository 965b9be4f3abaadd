package enrich

import (
	"fmt"
	"math"
	"strings"

	"github.com/attackmap/attackmap/incident"
)

// TargetConfig is the sensor's own location, from the configuration: either
// lat and lon (and optionally the country), or the name of a city from
// Cities (the usual data-centre cities and capitals), so that arcs can be
// drawn without looking anything up.
type TargetConfig struct {
	Lat     *float64 `json:"lat,omitempty"`
	Lon     *float64 `json:"lon,omitempty"`
	Country string   `json:"country,omitempty"`
	City    string   `json:"city,omitempty"`
}

// Location resolves the configuration; nil when nothing is configured.
func (t TargetConfig) Location() (*incident.Location, error) {
	switch {
	case t.Lat != nil || t.Lon != nil:
		if t.Lat == nil || t.Lon == nil {
			return nil, fmt.Errorf("target: give both lat and lon")
		}
		lat, lon := *t.Lat, *t.Lon
		if math.IsNaN(lat) || lat < -90 || lat > 90 || math.IsNaN(lon) || lon < -180 || lon > 180 {
			return nil, fmt.Errorf("target: %v,%v is not a place on Earth", lat, lon)
		}
		c := strings.ToUpper(t.Country)
		if c != "" && (len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z') {
			return nil, fmt.Errorf("target: country %q is not an ISO 3166 alpha-2 code", t.Country)
		}
		return &incident.Location{Lat: lat, Lon: lon, Country: c}, nil
	case t.City != "":
		loc, ok := Cities[strings.ToLower(strings.TrimSpace(t.City))]
		if !ok {
			return nil, fmt.Errorf("target: city %q is not in the built-in list; give lat and lon instead", t.City)
		}
		return &loc, nil
	}
	return nil, nil
}

// Cities maps lower-case city names to their location: the cities where
// servers usually are (cloud regions, exchange points) and a few capitals.
var Cities = map[string]incident.Location{
	"amsterdam":     {Lat: 52.37, Lon: 4.90, Country: "NL"},
	"ashburn":       {Lat: 39.04, Lon: -77.49, Country: "US"},
	"atlanta":       {Lat: 33.75, Lon: -84.39, Country: "US"},
	"bangalore":     {Lat: 12.97, Lon: 77.59, Country: "IN"},
	"berlin":        {Lat: 52.52, Lon: 13.40, Country: "DE"},
	"boston":        {Lat: 42.36, Lon: -71.06, Country: "US"},
	"chicago":       {Lat: 41.88, Lon: -87.63, Country: "US"},
	"dallas":        {Lat: 32.78, Lon: -96.80, Country: "US"},
	"dublin":        {Lat: 53.35, Lon: -6.26, Country: "IE"},
	"falkenstein":   {Lat: 50.48, Lon: 12.37, Country: "DE"},
	"frankfurt":     {Lat: 50.11, Lon: 8.68, Country: "DE"},
	"helsinki":      {Lat: 60.17, Lon: 24.94, Country: "FI"},
	"hong kong":     {Lat: 22.32, Lon: 114.17, Country: "HK"},
	"johannesburg":  {Lat: -26.20, Lon: 28.05, Country: "ZA"},
	"london":        {Lat: 51.51, Lon: -0.13, Country: "GB"},
	"los angeles":   {Lat: 34.05, Lon: -118.24, Country: "US"},
	"madrid":        {Lat: 40.42, Lon: -3.70, Country: "ES"},
	"marseille":     {Lat: 43.30, Lon: 5.37, Country: "FR"},
	"miami":         {Lat: 25.76, Lon: -80.19, Country: "US"},
	"milan":         {Lat: 45.46, Lon: 9.19, Country: "IT"},
	"montreal":      {Lat: 45.50, Lon: -73.57, Country: "CA"},
	"moscow":        {Lat: 55.76, Lon: 37.62, Country: "RU"},
	"mumbai":        {Lat: 19.08, Lon: 72.88, Country: "IN"},
	"new york":      {Lat: 40.71, Lon: -74.01, Country: "US"},
	"nuremberg":     {Lat: 49.45, Lon: 11.08, Country: "DE"},
	"osaka":         {Lat: 34.69, Lon: 135.50, Country: "JP"},
	"paris":         {Lat: 48.86, Lon: 2.35, Country: "FR"},
	"portland":      {Lat: 45.52, Lon: -122.68, Country: "US"},
	"roubaix":       {Lat: 50.69, Lon: 3.17, Country: "FR"},
	"san francisco": {Lat: 37.77, Lon: -122.42, Country: "US"},
	"san jose":      {Lat: 37.34, Lon: -121.89, Country: "US"},
	"santiago":      {Lat: -33.45, Lon: -70.67, Country: "CL"},
	"sao paulo":     {Lat: -23.55, Lon: -46.63, Country: "BR"},
	"seattle":       {Lat: 47.61, Lon: -122.33, Country: "US"},
	"seoul":         {Lat: 37.57, Lon: 126.98, Country: "KR"},
	"singapore":     {Lat: 1.35, Lon: 103.82, Country: "SG"},
	"stockholm":     {Lat: 59.33, Lon: 18.07, Country: "SE"},
	"sydney":        {Lat: -33.87, Lon: 151.21, Country: "AU"},
	"tokyo":         {Lat: 35.68, Lon: 139.69, Country: "JP"},
	"toronto":       {Lat: 43.65, Lon: -79.38, Country: "CA"},
	"vienna":        {Lat: 48.21, Lon: 16.37, Country: "AT"},
	"warsaw":        {Lat: 52.23, Lon: 21.01, Country: "PL"},
	"zurich":        {Lat: 47.38, Lon: 8.54, Country: "CH"},
}
