package push

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/internal/testkit"
)

// TestARejectedTokenIsOneErrorAtStart: with nothing to deliver, the
// forwarder connects at start; a rejected token is one ERROR line naming
// the relay, the token's SHA-256 prefix and the sensor's host, not repeated
// within the minute, and no "connected" line.
func TestARejectedTokenIsOneErrorAtStart(t *testing.T) {
	tr := newTestRelay(t)
	tr.start()
	dir := t.TempDir()
	w := openWriter(t, dir) // empty: no incident to deliver
	logs := &testkit.SyncBuffer{}
	ws := NewWS([]string{tr.url()}, "not-the-token", WSOptions{})
	defer ws.Close()
	f, _ := forwarder(t, dir, w, ws, slog.New(slog.NewTextHandler(logs, nil)))
	f.Host, f.TokenID = "web-9", ws.TokenID()
	run(t, f)
	eventually(t, func() bool { return f.Stats().Failures >= 3 })
	out := logs.String()
	if n := strings.Count(out, "level=ERROR"); n != 1 {
		t.Errorf("%d ERROR lines, want 1:\n%s", n, out)
	}
	for _, want := range []string{"rejected this sensor's token", tr.url(), "token_sha256_prefix=" + ws.TokenID(), "sensor_host=web-9", "1008"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "level=WARN") || strings.Contains(out, "connected") {
		t.Errorf("a rejected token logged as a warning or a connection:\n%s", out)
	}
	s := f.Stats()
	if !s.AuthKnown || !s.TokenRejected || s.Connected {
		t.Errorf("stats %+v, want the token rejected", s)
	}
	if h := f.Health(); !strings.Contains(h, "rejects this sensor's token") || strings.Count(h, "reject") != 1 {
		t.Errorf("Health() = %q, want the rejection said once", h)
	}
}

// TestAGoodTokenIsCheckedAtStart: the probe is an empty batch the relay
// acknowledges; the forwarder says "connected" once and is healthy.
func TestAGoodTokenIsCheckedAtStart(t *testing.T) {
	tr := newTestRelay(t)
	tr.start()
	dir := t.TempDir()
	w := openWriter(t, dir)
	logs := &testkit.SyncBuffer{}
	ws := NewWS([]string{tr.url()}, tr.tok, WSOptions{})
	defer ws.Close()
	f, _ := forwarder(t, dir, w, ws, slog.New(slog.NewTextHandler(logs, nil)))
	run(t, f)
	eventually(t, func() bool { return f.Stats().AuthKnown })
	s := f.Stats()
	if !s.Connected || s.TokenRejected || s.Failures != 0 || f.Health() != "" {
		t.Errorf("stats %+v, health %q: want connected", s, f.Health())
	}
	if n := strings.Count(logs.String(), "push: connected"); n != 1 {
		t.Errorf("%d connected lines, want 1:\n%s", n, logs.String())
	}
	if len(tr.history()) != 0 {
		t.Error("the probe stored something")
	}
}

func TestTokenIDIsTheHashPrefixNotTheToken(t *testing.T) {
	ws := NewWS([]string{"ws://x/api/ingest"}, "secret-token", WSOptions{})
	id := ws.TokenID()
	// sha256("secret-token") starts with these 8 hex digits.
	if id != "930bbdc5" {
		t.Errorf("TokenID() = %q", id)
	}
}
