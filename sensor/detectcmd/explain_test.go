package detectcmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --explain says, line by line, what the parser read, what each detector
// did with it, and which lines it did not recognise; attacker text is
// quoted so no control character reaches the terminal.
func TestExplainSaysWhatEachLineFed(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	var b strings.Builder
	b.WriteString("Mar 22 14:31:02 web-1 sshd[100]: Invalid user adm\x1b[31min from 203.0.113.7 port 40000\n")
	b.WriteString("Mar 22 14:31:02 web-1 sshd[100]: Failed password for invalid user adm\x1b[31min from 203.0.113.7 port 40000 ssh2\n")
	b.WriteString("Mar 22 14:31:03 web-1 CRON[5]: (root) CMD (\x1b]0;pwned\x07)\n")
	for i := range 6 {
		b.WriteString("Mar 22 14:31:1" + string(rune('1'+i)) + " web-1 sshd[20" + string(rune('0'+i)) +
			"]: Failed password for root from 203.0.113.7 port 4100" + string(rune('0'+i)) + " ssh2\n")
	}
	if err := os.WriteFile(log, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	now := func() time.Time { return time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC) }
	err := run(context.Background(), []string{"--auth-log", log, "--include-private", "--explain", "--tz", "UTC"}, &out, &errb, now)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		log + `:1: ssh_failed invalid_user from 203.0.113.7 port 40000 pid=100 user="adm\\x1b[31min"`,
		"  ssh_bruteforce: no state -> fast 1/6; slow 1/11\n",
		"  ssh_probe: unchanged: ignored: invalid_user is not a probe\n",
		// the second line of the same attempt counts nothing
		log + ":2: ssh_failed failed_password",
		"  ssh_bruteforce: unchanged: fast 1/6; slow 1/11\n",
		log + `:3: not recognised by the auth parser: "Mar 22 14:31:03 web-1 CRON[5]: (root) CMD (\x1b]0;pwned\a)"`,
		"open incident ssh_bruteforce:203.0.113.7:2026-03-22T14:31Z (high",
		`  => {"id":"ssh_bruteforce:203.0.113.7:2026-03-22T14:31Z"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("--explain output lacks %q\n%s", want, got)
		}
	}
	if strings.ContainsAny(got, "\x1b\x07") {
		t.Error("--explain wrote a raw control character")
	}
}
