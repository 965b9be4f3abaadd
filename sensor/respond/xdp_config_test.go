package respond

import (
	"strings"
	"testing"
)

func TestXDPConfigCheck(t *testing.T) {
	tests := []struct {
		name    string
		cfg     XDPConfig
		want    XDPConfig
		wantErr string
	}{
		{"fills in the mode and the map size", XDPConfig{Interfaces: []string{"eth0"}},
			XDPConfig{Interfaces: []string{"eth0"}, Mode: "auto", MaxEntries: DefaultXDPMaxEntries}, ""},
		{"keeps an explicit mode and size", XDPConfig{Interfaces: []string{"eth0", "eth1"}, Mode: "generic", MaxEntries: 10},
			XDPConfig{Interfaces: []string{"eth0", "eth1"}, Mode: "generic", MaxEntries: 10}, ""},
		{"refuses no interfaces", XDPConfig{}, XDPConfig{}, "no interfaces"},
		{"refuses an empty interface name", XDPConfig{Interfaces: []string{""}}, XDPConfig{}, "not a valid interface name"},
		{"refuses a name longer than IFNAMSIZ", XDPConfig{Interfaces: []string{"a-very-long-name0"}}, XDPConfig{}, "not a valid interface name"},
		{"refuses an interface listed twice", XDPConfig{Interfaces: []string{"eth0", "eth0"}}, XDPConfig{}, "listed twice"},
		{"refuses an unknown mode", XDPConfig{Interfaces: []string{"eth0"}, Mode: "offload"}, XDPConfig{}, "want auto, native or generic"},
		{"refuses a negative size", XDPConfig{Interfaces: []string{"eth0"}, MaxEntries: -1}, XDPConfig{}, "out of range"},
		{"refuses a huge size", XDPConfig{Interfaces: []string{"eth0"}, MaxEntries: 1 << 30}, XDPConfig{}, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.check()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("check() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("check() error = %v", err)
			}
			if strings.Join(got.Interfaces, ",") != strings.Join(tt.want.Interfaces, ",") ||
				got.Mode != tt.want.Mode || got.MaxEntries != tt.want.MaxEntries {
				t.Errorf("check() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
