package live

import "sort"

// CountryName returns the English name of an ISO 3166-1 alpha-2 country
// code, upper or lower case ("DE" -> "Germany"), or "" when the code is
// not a country Natural Earth names. The table (countries_table.go) is
// generated from the world-atlas data the map's outline comes from: run
// `make world`.
func CountryName(code string) string {
	if len(code) != 2 {
		return ""
	}
	c := [2]byte{upper(code[0]), upper(code[1])}
	n := len(countryCodes) / 2
	i := sort.Search(n, func(i int) bool {
		return countryCodes[2*i] > c[0] || countryCodes[2*i] == c[0] && countryCodes[2*i+1] >= c[1]
	})
	if i < n && countryCodes[2*i] == c[0] && countryCodes[2*i+1] == c[1] {
		return countryNames[i]
	}
	return ""
}

func upper(b byte) byte {
	if b >= 'a' && b <= 'z' {
		return b - 'a' + 'A'
	}
	return b
}
