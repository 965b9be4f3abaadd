package detectcmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An `sshd -E` file ends its lines with "\r\n": replayed, it must give
// the same events and incidents as the same file with "\n".
func TestCRLFLinesGiveTheSameEventsAsLF(t *testing.T) {
	lf, err := os.ReadFile(filepath.Join("testdata", "sshd_e_bare", "auth.log"))
	if err != nil {
		t.Fatal(err)
	}
	replay := func(name string, content []byte) (incidents, events []byte) {
		dir := t.TempDir()
		in, evOut := filepath.Join(dir, name), filepath.Join(dir, "events.jsonl")
		if err := os.WriteFile(in, content, 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		args := []string{"--auth-log", in, "--events-out", evOut, "--include-private"}
		if err := run(context.Background(), args, &stdout, &stderr, fixedNow); err != nil {
			t.Fatalf("run: %v", err)
		}
		ev, err := os.ReadFile(evOut)
		if err != nil {
			t.Fatal(err)
		}
		return stdout.Bytes(), ev
	}
	wantInc, wantEv := replay("lf.log", lf)
	gotInc, gotEv := replay("crlf.log", []byte(strings.ReplaceAll(string(lf), "\n", "\r\n")))
	if n := bytes.Count(wantEv, []byte("\n")); n < 10 || len(wantInc) == 0 {
		t.Fatalf("the LF replay gave %d events and %d bytes of incidents: fixture changed?", n, len(wantInc))
	}
	if !bytes.Equal(gotEv, wantEv) {
		t.Errorf("events differ:\n--- CRLF\n%s\n--- LF\n%s", gotEv, wantEv)
	}
	if !bytes.Equal(gotInc, wantInc) {
		t.Errorf("incidents differ:\n--- CRLF\n%s\n--- LF\n%s", gotInc, wantInc)
	}
}
