package logsrc

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/attackmap/attackmap/sensor/event"
	"github.com/attackmap/attackmap/sensor/logparse"
)

// An `sshd -E` file ends its lines with "\r\n" (OpenSSH's log.c writes
// that to stderr and the -E file): every failure in it must still become
// an event.
func TestRunParsesAnSSHDEFileWithCRLFLines(t *testing.T) {
	dir := t.TempDir()
	auth := filepath.Join(dir, "sshd.log")
	cfg := Config{AuthLogs: []string{auth}, FromStart: true}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan event.Event, 16)
	done := make(chan error, 1)
	go func() { done <- cfg.Run(ctx, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	write(t, auth, "Server listening on 0.0.0.0 port 22.\r\n"+
		"Invalid user admin from 192.0.2.5 port 35947\r\n"+
		"Failed password for invalid user admin from 192.0.2.5 port 35947 ssh2\r\n"+
		"Connection closed by invalid user admin 192.0.2.5 port 35947 [preauth]\r\n")
	want := []string{logparse.DetailInvalidUser, logparse.DetailFailedPassword, logparse.DetailPreauthClose}
	for i, d := range want {
		select {
		case ev := <-out:
			if ev.Kind != event.KindSSHFailed || ev.Detail != d || ev.SrcIP.String() != "192.0.2.5" || ev.User != "admin" {
				t.Fatalf("event %d: %+v, want %s from 192.0.2.5", i, ev, d)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("timed out waiting for event %d (%s)", i, d)
		}
	}
}
