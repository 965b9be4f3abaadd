package daemon

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
)

// TestDetectionJournalsEventsAndIncidents runs the detection stage on a real
// auth log (eBPF off, so it runs without root): failed logins appended to
// the log become raw events in the events journal and one ssh_bruteforce
// incident in the incidents journal, stamped with the host name.
func TestDetectionJournalsEventsAndIncidents(t *testing.T) {
	dir := t.TempDir()
	auth := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(auth, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`{"data_dir": %q, "host": "web-1",
		"logs": {"auth": [%q], "access": [], "firewall": [], "from_start": true}, "ebpf": {"enabled": false}}`, dir, auth)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.IncludePrivate = true
	incidents, err := jsonl.Open(dir, jsonl.Options{Prefix: "incidents"})
	if err != nil {
		t.Fatal(err)
	}
	defer incidents.Close()
	events, err := jsonl.Open(dir, jsonl.Options{Prefix: "events"})
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	wake, cancelWake := incidents.Subscribe()
	defer cancelWake()

	d := &detection{cfg: cfg, incidents: incidents, events: events, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()

	// from_start: the tailer reads the lines whether it opens the file
	// before or after they are written.
	f, err := os.OpenFile(auth, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 7 {
		fmt.Fprintf(f, "%s web-1 sshd[812]: Failed password for root from 127.9.8.7 port %d ssh2\n",
			now.Add(time.Duration(i)*time.Second).Format("2006-01-02T15:04:05.000000-07:00"), 40000+i)
	}
	f.Close()
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("no incident journaled within 10 s")
	}
	// The incident fires on the 6th failure; the 7th line may still be on
	// its way through the stage.
	for deadline := time.Now().Add(10 * time.Second); len(readLines(t, dir, "events")) < 7 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("detection stage: %v", err)
	}

	ins := readLines(t, dir, "incidents")
	if len(ins) == 0 {
		t.Fatal("no incident line")
	}
	in, err := incident.Decode([]byte(ins[0]))
	if err != nil {
		t.Fatal(err)
	}
	if in.Source != "ssh_bruteforce" || in.IP != "127.9.8.7" || in.Host != "web-1" || in.Validate() != nil {
		t.Errorf("incident %+v (valid: %v)", in, in.Validate())
	}
	evs := readLines(t, dir, "events")
	if len(evs) != 7 || !strings.Contains(evs[0], `"kind":"ssh_failed"`) {
		t.Errorf("%d event lines, first %q; want 7 ssh_failed", len(evs), evs[0])
	}
}

func readLines(t *testing.T, dir, prefix string) []string {
	t.Helper()
	names, err := jsonl.List(dir, prefix)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
	}
	return lines
}
