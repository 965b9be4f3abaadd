package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/cli"
	"github.com/attackmap/attackmap/internal/testkit"
	"github.com/attackmap/attackmap/relay"
)

func runCmd(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &o, &e)
	code = cli.Exit("attackmap-relay", err, &e)
	return o.String(), e.String(), code
}

func TestTokenAdd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	out, errOut, code := runCmd("token", "add", "--token-file", file, "web-1", "--lat", "50.11", "--lon", "8.68")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	b, _ := os.ReadFile(file)
	f := strings.Fields(string(b))
	if len(tok) != 43 || len(f) != 4 || f[0] != "web-1" || f[2] != "50.11" || f[3] != "8.68" || strings.Contains(string(b), tok) {
		t.Fatalf("token %q, file %q", tok, b)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"duplicate", []string{"token", "add", "--token-file", file, "web-1"}, "already"},
		{"no name", []string{"token", "add", "--token-file", file}, "exactly one NAME"},
		{"lat only", []string{"token", "add", "--token-file", file, "x", "--lat", "1"}, "both --lat and --lon"},
		{"lat range", []string{"token", "add", "--token-file", file, "x", "--lat", "91", "--lon", "0"}, "not between"},
		{"bad name", []string{"token", "add", "--token-file", file, "a b\x01"}, "name:"},
		{"unknown flag", []string{"serve", "--nope"}, "flag provided but not defined"},
		{"no token file", []string{"serve"}, "--token-file is required"},
		{"bad origin", []string{"serve", "--token-file", file, "--allow-origin", "nope"}, "allow-origin"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCmd(tc.args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, errOut, tc.want)
			}
			last := strings.TrimSpace(errOut)
			if i := strings.LastIndex(last, "\n"); i >= 0 {
				last = last[i+1:]
			}
			if !strings.HasPrefix(last, "attackmap-relay: ") {
				t.Fatalf("last line %q is not the one-line error", last)
			}
		})
	}
	if _, errOut, code := runCmd("serve", "--nope"); code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("bad flag: exit %d, stderr %q; want 2 and one line", code, errOut)
	}
	if _, errOut, code := runCmd("serve", "--token-file", filepath.Join(t.TempDir(), "missing"), "--listen", "127.0.0.1:0"); code != 2 {
		t.Fatalf("missing token file: exit %d, stderr %q; want 2", code, errOut)
	}
}

func TestTokenListAndRemove(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	for _, args := range [][]string{
		{"token", "add", "--token-file", file, "web-1", "--lat", "50.11", "--lon", "8.68"},
		{"token", "add", "--token-file", file, "web-2"},
	} {
		if _, errOut, code := runCmd(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	before, _ := os.ReadFile(file)
	out, errOut, code := runCmd("token", "list", "--token-file", file)
	if code != 0 || out != "web-1\t50.11 8.68\nweb-2\n" {
		t.Fatalf("list: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, h := range strings.Fields(string(before)) {
		if len(h) == 64 && strings.Contains(out, h) {
			t.Fatal("list shows a hash")
		}
	}
	out, errOut, code = runCmd("token", "remove", "web-1", "--token-file", file)
	if code != 0 || out != "removed web-1\n" {
		t.Fatalf("remove: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, _, _ := runCmd("token", "list", "--token-file", file); out != "web-2\n" {
		t.Fatalf("list after remove: %q", out)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"remove a missing name", []string{"token", "remove", "--token-file", file, "web-1"}, "no such name"},
		{"remove without a name", []string{"token", "remove", "--token-file", file}, "exactly one NAME"},
		{"remove without a file", []string{"token", "remove", "web-2"}, "--token-file is required"},
		{"list a missing file", []string{"token", "list", "--token-file", file + ".missing"}, "no such file"},
		{"list with a name", []string{"token", "list", "--token-file", file, "x"}, "takes no NAME"},
		{"an unknown subcommand", []string{"token", "revoke"}, "token list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCmd(tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q, want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}

// The built binary stops cleanly on SIGTERM and SIGINT: streams end, the
// ingested incident is in the history and the exit status is 0.
func TestServeStopsGracefullyOnSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "attackmap-relay")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			tokFile := filepath.Join(dir, "tokens")
			out, errOut, code := runCmd("token", "add", "--token-file", tokFile, "web-1")
			if code != 0 {
				t.Fatal(errOut)
			}
			tok := strings.TrimSpace(out)
			cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--token-file", tokFile)
			// The relay dies with the test binary even if a timeout kills it.
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
				}
			})
			addrRe := regexp.MustCompile(`msg="relay listening" addr=(\S+)`)
			logs := &testkit.SyncBuffer{}
			addrc := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					_, _ = logs.Write([]byte(sc.Text() + "\n"))
					if m := addrRe.FindStringSubmatch(sc.Text()); m != nil {
						addrc <- m[1]
					}
				}
				exited <- cmd.Wait()
			}()
			var addr string
			select {
			case addr = <-addrc:
			case err := <-exited:
				t.Fatalf("relay exited: %v\n%s", err, logs.String())
			case <-time.After(15 * time.Second):
				t.Fatalf("no listening line in %q", logs.String())
			}
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// lastEventId=0: the stream starts with everything after
			// sequence 0, so the incident reaches it whether the relay
			// registers the stream before or after the ingest below.
			_, _ = io.WriteString(conn, "GET /api/live-feed/stream?lastEventId=0 HTTP/1.1\r\nHost: x\r\n\r\n")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/api/ingest", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			msg := `{"type":"incidents","batch":1,"incidents":[{"id":"sig","source":"port_scan","severity":"low","ip":"203.0.113.9","ts":"` + time.Now().UTC().Format(time.RFC3339) + `"}]}`
			if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_, ackb, err := ws.Read(ctx)
			var ack incident.Ack
			if err != nil || json.Unmarshal(ackb, &ack) != nil || ack.Accepted != 1 {
				t.Fatalf("ack %s %v", ackb, err)
			}
			// The sensor reads on, as a real one does, to see the close.
			closed := make(chan error, 1)
			go func() {
				_, _, err := ws.Read(ctx)
				closed <- err
			}()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("exit: %v\n%s", err, logs.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("did not stop\n%s", logs.String())
			}
			if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Errorf("sensor saw %v, want close 1001", err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			rest, err := io.ReadAll(conn)
			if err != nil || !bytes.Contains(rest, []byte(`"id":"sig"`)) {
				t.Errorf("stream: %v, got %q", err, rest)
			}
			// The stream kept it: a relay started on the same data
			// directory serves it, as number 1.
			r, err := relay.New(relay.Config{DataDir: filepath.Join(dir, "data")})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/live-feed", nil))
			if !strings.Contains(rec.Body.String(), `"id":"sig"`) || rec.Header().Get("Last-Event-ID") != "1" {
				t.Fatalf("after the stop the stream holds %q (Last-Event-ID %q)", rec.Body.String(), rec.Header().Get("Last-Event-ID"))
			}
			if !strings.Contains(logs.String(), "relay stopped") {
				t.Errorf("logs: %s", logs.String())
			}
		})
	}
}

func TestHelpAndVersionExitZero(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "Examples:"},
		{[]string{"token", "--help"}, "token add"},
		{[]string{"token", "-h"}, "token list"},
		{[]string{"serve", "--help"}, "Usage: attackmap-relay serve"},
		{[]string{"token", "add", "--help"}, "Usage: attackmap-relay token add"},
		{[]string{"token", "list", "-h"}, "Usage: attackmap-relay token list"},
		{[]string{"token", "remove", "--help"}, "Usage: attackmap-relay token remove"},
		{[]string{"version"}, "attackmap-relay dev"},
		{[]string{"--version"}, "attackmap-relay dev"},
	} {
		out, errOut, code := runCmd(tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tc.args, code, out, errOut)
		}
	}
}

func TestBadFlagsPointToTheCommandsHelpOnOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--bogus"}, "(see 'attackmap-relay serve --help')"},
		{[]string{"token", "add", "--bogus"}, "(see 'attackmap-relay token add --help')"},
		{[]string{"token", "list", "--bogus"}, "(see 'attackmap-relay token list --help')"},
		{[]string{"token", "frob"}, "(see 'attackmap-relay token --help')"},
	} {
		_, errOut, code := runCmd(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q", tc.args, code, errOut)
		}
	}
}
