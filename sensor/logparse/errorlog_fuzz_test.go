package logparse

import (
	"testing"

	"github.com/attackmap/attackmap/sensor/event"
)

// FuzzErrorLog feeds arbitrary lines to the error log parser; its seed
// corpus (testdata/fuzz/FuzzErrorLog) holds one line of every form the
// parser knows, nginx and Apache, bare and inside syslog.
func FuzzErrorLog(f *testing.F) {
	p := NewErrorLog(testOpts())
	f.Fuzz(func(t *testing.T, line string) {
		checkEvent(t, p, line)
		ev, ok := p.Line(line)
		if !ok {
			return
		}
		if ev.Kind != event.KindHTTPError || ev.Detail == "" {
			t.Fatalf("kind %q detail %q from %q", ev.Kind, ev.Detail, line)
		}
		// The address is one the server wrote in the line, never one
		// made up or taken from elsewhere.
		if ev.SrcIP.Is4() && !containsAddr(line, ev.SrcIP.String()) {
			t.Fatalf("address %s not in line %q", ev.SrcIP, line)
		}
	})
}
