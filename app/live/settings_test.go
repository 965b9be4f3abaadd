package live

import "testing"

func TestChooseRelayNeverAdoptsALinkWithoutAsking(t *testing.T) {
	const own, other, attacker = "", "https://relay.example.org", "https://evil.example"
	tests := []struct {
		name         string
		query, saved string
		want         RelayChoice
	}{
		{"no link, nothing saved: this site", "", own, RelayChoice{Use: own}},
		{"no link: the saved relay", "", other, RelayChoice{Use: other}},
		{"a link to another relay is asked about, not used", attacker, own, RelayChoice{Use: own, Ask: attacker}},
		{"a link differing from the saved relay is asked about", attacker, other, RelayChoice{Use: other, Ask: attacker}},
		{"a link to the saved relay is used at once", other + "/", other, RelayChoice{Use: other}},
		{"a bad link is refused with a reason", "javascript:alert(1)", other, RelayChoice{Use: other, Err: "relay URL: must start with http:// or https://"}},
		{"a broken saved value counts as this site", attacker, "ftp://x", RelayChoice{Use: own, Ask: attacker}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChooseRelay(tt.query, tt.saved); got != tt.want {
				t.Fatalf("ChooseRelay(%q, %q) = %+v, want %+v", tt.query, tt.saved, got, tt.want)
			}
		})
	}
}

func TestRelayLabelShownOnlyForAnotherOrigin(t *testing.T) {
	tests := []struct{ relay, origin, want string }{
		{"", "https://map.example.org", ""},
		{"https://map.example.org", "https://map.example.org", ""},
		{"https://relay.example.org", "https://map.example.org", "https://relay.example.org"},
		{"http://map.example.org", "https://map.example.org", "http://map.example.org"},
	}
	for _, tt := range tests {
		if got := RelayLabel(tt.relay, tt.origin); got != tt.want {
			t.Errorf("RelayLabel(%q, %q) = %q, want %q", tt.relay, tt.origin, got, tt.want)
		}
	}
}
