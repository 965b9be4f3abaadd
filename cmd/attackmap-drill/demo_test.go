package main

import (
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoFailsWithTheSensorsErrorWhenThePortIsBusy: another server holds
// the port and even answers /healthz 200; the real sensor dies with
// "address already in use", and demo says so and exits 1 instead of
// printing the map URL.
func TestDemoFailsWithTheSensorsErrorWhenThePortIsBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds attackmap-sensor")
	}
	bin := filepath.Join(t.TempDir(), "attackmap-sensor")
	if out, err := exec.Command("go", "build", "-o", bin, "../attackmap-sensor").CombinedOutput(); err != nil {
		t.Fatalf("building the sensor: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	stdout, stderr, code := runCmd(t, nil, "demo", "--dir", t.TempDir(), "--sensor", bin,
		"--listen", ln.Addr().String(), "--once", "--block=false")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr, "the sensor did not come up") || !strings.Contains(stderr, "address already in use") {
		t.Errorf("stderr lacks the sensor's error:\n%s", stderr)
	}
	if strings.Contains(stdout, "drill sensor running") || strings.Contains(stdout, "map at") {
		t.Errorf("demo claimed success:\n%s", stdout)
	}
}

func TestVersionAndHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--version"}, "attackmap-drill dev"},
		{[]string{"--help"}, "Exit status"},
		{[]string{"demo", "--help"}, "Examples:"},
		{[]string{"run", "--help"}, "Examples:"},
	} {
		out, errOut, code := runCmd(t, nil, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tc.args, code, out, errOut)
		}
	}
	_, errOut, code := runCmd(t, nil, "run", "--bogus")
	if code != 2 || errOut != "attackmap-drill run: flag provided but not defined: -bogus (see 'attackmap-drill run --help')\n" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
