package relay

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/internal/testkit"
)

// TestRejectedTokensAreLoggedOnceAMinuteWithoutTheToken: a sensor with a
// wrong token is one WARN line naming the remote address and the token's
// SHA-256 prefix, never the token; its retries within the minute add no
// line.
func TestRejectedTokensAreLoggedOnceAMinuteWithoutTheToken(t *testing.T) {
	logs := &testkit.SyncBuffer{}
	tr := startRelay(t, Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	const bad = "wrong-token-for-this-relay"
	for range 3 {
		if _, err := dialIngestExpectClose(tr.url, bad); err == nil || !strings.Contains(err.Error(), "bad token") {
			t.Fatalf("got %v, want a 1008 bad token close", err)
		}
	}
	out := logs.String()
	sum := sha256.Sum256([]byte(bad))
	if n := strings.Count(out, "rejected a sensor token"); n != 1 {
		t.Errorf("%d lines, want 1:\n%s", n, out)
	}
	for _, want := range []string{"remote=127.0.0.1:", "reason=\"bad token\"", "token_sha256_prefix=" + hex.EncodeToString(sum[:4])} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, bad) {
		t.Errorf("the token is in the log:\n%s", out)
	}
}

func TestRejectLogCountsWhatItHeldBack(t *testing.T) {
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	var l rejectLog
	t0 := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	for i := range 5 {
		l.note(log, "192.0.2.1:4000", "bad token", "x", t0.Add(time.Duration(i)*time.Second))
	}
	l.note(log, "192.0.2.1:4000", "missing token", "", t0.Add(rejectEvery))
	out := logs.String()
	if n := strings.Count(out, "rejected a sensor token"); n != 2 {
		t.Fatalf("%d lines, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "more_since_last_line=4") {
		t.Errorf("the second line does not count the 4 held back:\n%s", out)
	}
}
