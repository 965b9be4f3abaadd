package cooldown

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestFailPausesForTheDefaultOrTheGivenTimeAndKeepsTheLater(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c := New("svc", 30*time.Second, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	if c.Active() {
		t.Fatal("active before any failure")
	}
	boom := errors.New("boom")
	if err := c.Fail(boom, 0); err != boom {
		t.Fatalf("Fail returned %v, want the error passed in", err)
	}
	now = now.Add(29 * time.Second)
	if !c.Active() {
		t.Fatal("quiet period shorter than the default 30 s")
	}
	c.Until(now.Add(time.Second)) // earlier than an hour: must not shorten
	c.Fail(boom, time.Hour)
	c.Until(now.Add(time.Minute))
	now = now.Add(59 * time.Minute)
	if !c.Active() {
		t.Fatal("a shorter Until cut the hour's pause")
	}
	now = now.Add(2 * time.Minute)
	if c.Active() {
		t.Fatal("still quiet after the pause ended")
	}
	if got := c.Failures(); got != 2 {
		t.Fatalf("failures = %d, want 2", got)
	}
}
