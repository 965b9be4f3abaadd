package detectcmd

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// TestAnIncidentOverTheSizeLimitIsDroppedNotWritten: full evidence lists
// pass Validate (each list and string is within its cap) yet encode to
// more than incident.MaxBytes; detect drops such an incident with a line on
// stderr, as the daemon does, and writes the others.
func TestAnIncidentOverTheSizeLimitIsDroppedNotWritten(t *testing.T) {
	ok := incident.Incident{ID: "web_scan:203.0.113.9:1", Source: "web_scan", Severity: incident.Medium,
		IP: "203.0.113.9", TS: time.Date(2026, 3, 22, 14, 32, 1, 0, time.UTC), Count: 1}
	big := ok
	big.ID = "web_scan:203.0.113.9:2"
	big.Evidence = &incident.Evidence{}
	for range incident.MaxList {
		big.Evidence.Paths = append(big.Evidence.Paths, "/"+strings.Repeat("p", incident.MaxEvidenceString-1))
		big.Evidence.UserAgents = append(big.Evidence.UserAgents, strings.Repeat("u", incident.MaxEvidenceString))
	}
	if err := big.Validate(); err != nil {
		t.Fatalf("the big incident must pass Validate for this test: %v", err)
	}
	var out, stderr bytes.Buffer
	rp := &replay{w: bufio.NewWriter(&out), stderr: &stderr}
	if err := rp.emit([]incident.Incident{big, ok}); err != nil {
		t.Fatal(err)
	}
	rp.w.Flush()
	if rp.incidents != 1 || strings.Count(out.String(), "\n") != 1 || !strings.Contains(out.String(), ok.ID) {
		t.Errorf("wrote %d incidents:\n%s", rp.incidents, out.String())
	}
	if want := "dropping invalid incident " + big.ID + ": incident: "; !strings.Contains(stderr.String(), want) ||
		!strings.Contains(stderr.String(), "byte limit") {
		t.Errorf("stderr %q, want %q and the size limit", stderr.String(), want)
	}
}
