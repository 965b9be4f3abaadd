package live

import "testing"

func TestCountryNamesFromNaturalEarth(t *testing.T) {
	tests := []struct{ code, want string }{
		{"US", "United States of America"},
		{"DE", "Germany"},
		{"CN", "China"},
		{"BR", "Brazil"},
		{"RU", "Russia"},
		{"GB", "United Kingdom"},
		{"FR", "France"},
		{"JP", "Japan"},
		{"de", "Germany"},
		{"XK", "Kosovo"},
		{"CD", "Democratic Republic of the Congo"}, // spelled out
		{"MP", "Northern Mariana Islands"},         // "N. Mariana Is." expanded
		{"MK", "North Macedonia"},
		{"AD", "Andorra"},   // first in the table
		{"ZW", "Zimbabwe"},  // last
		{"SG", "Singapore"}, // too small for the 110m outline, named all the same
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			if got := CountryName(tc.code); got != tc.want {
				t.Fatalf("CountryName(%q) = %q, want %q", tc.code, got, tc.want)
			}
		})
	}
}

func TestUnknownCountryCodesHaveNoName(t *testing.T) {
	for _, code := range []string{"", "ZZ", "XX", "A", "USA", "U1", "other", "\x00\x00", "??"} {
		if got := CountryName(code); got != "" {
			t.Errorf("CountryName(%q) = %q, want \"\"", code, got)
		}
	}
}

func TestCountryTableIsSortedAndWhole(t *testing.T) {
	if len(countryCodes) != 2*len(countryNames) {
		t.Fatalf("%d code bytes for %d names", len(countryCodes), len(countryNames))
	}
	if len(countryNames) < 230 {
		t.Fatalf("only %d countries", len(countryNames))
	}
	for i := 1; i < len(countryNames); i++ {
		if countryCodes[2*i-2:2*i] >= countryCodes[2*i:2*i+2] {
			t.Fatalf("codes out of order at %d: %s then %s", i, countryCodes[2*i-2:2*i], countryCodes[2*i:2*i+2])
		}
		if countryNames[i] == "" {
			t.Fatalf("empty name for %s", countryCodes[2*i:2*i+2])
		}
	}
}
