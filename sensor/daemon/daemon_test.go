package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/relay"
	"github.com/attackmap/attackmap/relay/token"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "c.json")
	os.WriteFile(cfgFile, []byte(`{"data_dir":"/var/lib/attackmap","target":{"city":"Frankfurt"},
		"relays":[{"url":"https://relay.example.org","token":"t1"}],"detect":{"ssh_bruteforce":{"capacity":5}}}`), 0o644)
	cfg, err := parseArgs([]string{"--config", cfgFile, "--relay", "wss://other.example.org/api/ingest",
		"--auth-log", "/a", "--auth-log", "/b", "--serve", ":9000"},
		env(map[string]string{"ATTACKMAP_TOKEN": "t2", "ABUSEIPDB_API_KEY": "k"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/attackmap" || cfg.Serve.Listen != ":9000" {
		t.Errorf("data %q serve %q", cfg.DataDir, cfg.Serve.Listen)
	}
	if len(cfg.Relays) != 2 || cfg.Relays[0].URL != "wss://relay.example.org/api/ingest" ||
		cfg.Relays[1].URL != "wss://other.example.org/api/ingest" || cfg.Relays[1].Token != "t2" {
		t.Errorf("relays %+v", cfg.Relays)
	}
	if strings.Join(cfg.Logs.Auth, ",") != "/a,/b" || len(cfg.Logs.Access) == 0 {
		t.Errorf("logs %+v", cfg.Logs)
	}
	if !cfg.AbuseIPDB.Enabled || cfg.AbuseIPDB.Key != "k" || cfg.AbuseIPDB.DailyBudget != 1000 {
		t.Errorf("abuseipdb %+v", cfg.AbuseIPDB)
	}
	if loc, _ := cfg.Target.Location(); loc == nil || loc.Country != "DE" {
		t.Errorf("target %+v", loc)
	}
	if !strings.Contains(string(cfg.Detect), "ssh_bruteforce") {
		t.Errorf("detect %s", cfg.Detect)
	}
}

func TestConfigErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, fmt.Sprintf("c%d.json", rand.Int()))
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--bogus"}, nil, "flag provided but not defined"},
		{[]string{"--relay", "wss://x"}, nil, "needs --token"},
		{[]string{"--token", "x"}, nil, "without --relay"},
		{[]string{"--relay", "ftp://x"}, map[string]string{"ATTACKMAP_TOKEN": "t"}, "scheme"},
		{[]string{"--config", write(`{"relayz":[]}`)}, nil, `unknown field "relayz"`},
		{[]string{"--config", write(`{"data_dir":`)}, nil, "config"},
		{[]string{"--config", write(`{"target":{"city":"Atlantis"}}`)}, nil, "Atlantis"},
		{[]string{"--config", write(`{"abuseipdb":{"enabled":true}}`)}, nil, "ABUSEIPDB_API_KEY"},
		{[]string{"--config", filepath.Join(dir, "missing.json")}, nil, "no such file"},
		{[]string{"extra"}, nil, "unexpected argument"},
	} {
		err := Run(context.Background(), c.args, env(c.env), io.Discard, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err = %v, want one line containing %q", c.args, err, c.want)
		}
	}
}

func TestPrintConfigIsTheValidDefault(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"--print-config"}, env(nil), &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig(out.Bytes()); err != nil {
		t.Fatal(err)
	}
}

func TestIngestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://relay.example.org":           "wss://relay.example.org/api/ingest",
		"http://127.0.0.1:8080/":              "ws://127.0.0.1:8080/api/ingest",
		"wss://r.example.org/custom/ingest":   "wss://r.example.org/custom/ingest",
		"ws://[::1]:9000":                     "ws://[::1]:9000/api/ingest",
		"relay.example.org":                   "",
		"wss://":                              "",
		"https://relay.example.org/?x=1#frag": "wss://relay.example.org/api/ingest?x=1#frag",
	} {
		got, err := IngestURL(in)
		if err != nil {
			got = ""
		}
		if got != want {
			t.Errorf("IngestURL(%q) = %q (%v), want %q", in, got, err, want)
		}
	}
}

// lineWriter hands each complete stdout line to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default:
		}
		w.buf = w.buf[i+1:]
	}
}

// sseIDs follows the relay's SSE stream and sends every incident id seen.
func sseIDs(t testing.TB, ctx context.Context, base string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/live-feed/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stream: HTTP %d", resp.StatusCode)
	}
	ids := make(chan string, 1<<16)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var in struct {
				ID string `json:"id"`
			}
			if json.Unmarshal([]byte(data), &in) == nil {
				ids <- in.ID
			}
		}
		close(ids)
	}()
	return ids
}

func mkIncident(i int) []byte {
	b, _ := incident.Marshal(&incident.Incident{
		ID: fmt.Sprintf("ssh_bruteforce:81.2.69.142:%d", i), Source: "ssh_bruteforce", Severity: incident.High,
		IP: "81.2.69.142", TS: time.Now().UTC().Truncate(time.Second), Count: 5, // the relay refuses incidents older than its retention
	})
	return b
}

const mmTestdata = "../../testdata/maxmind/"

func TestServeEnrichesAndDeliversToTheEmbeddedRelay(t *testing.T) {
	if _, err := os.Stat(mmTestdata); err != nil {
		t.Fatal("MaxMind test databases missing from testdata/maxmind")
	}
	dir := t.TempDir()
	abs, _ := filepath.Abs(mmTestdata)
	cfgFile := filepath.Join(dir, "c.json")
	os.WriteFile(cfgFile, []byte(`{"host":"web-1","target":{"city":"Frankfurt"},
		"geoip":{"paths":["`+abs+`/GeoLite2-City-Test.mmdb","`+abs+`/GeoLite2-ASN-Test.mmdb"]}}`), 0o644)
	stdout := &lineWriter{lines: make(chan string, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--config", cfgFile, "--data", filepath.Join(dir, "data"), "--serve", "127.0.0.1:0"},
			env(nil), stdout, io.Discard, testRelay)
	}()
	var base string
	select {
	case l := <-stdout.lines:
		u, ok := strings.CutPrefix(l, "attackmap-sensor: map at ")
		if !ok {
			t.Fatalf("stdout %q", l)
		}
		base = strings.TrimSuffix(u, "/live")
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no address on stdout")
	}
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	ids := sseIDs(t, sctx, base)
	// Another process's writer: only inotify wakes the reader.
	w, err := jsonl.Open(filepath.Join(dir, "data"), jsonl.Options{Prefix: "incidents", SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 3 {
		w.Append(mkIncident(i))
	}
	for range 3 {
		select {
		case <-ids:
		case <-time.After(30 * time.Second):
			t.Fatal("incident not delivered")
		}
	}
	resp, err := http.Get(base + "/api/live-feed")
	if err != nil {
		t.Fatal(err)
	}
	var feed []incident.Incident
	json.NewDecoder(resp.Body).Decode(&feed)
	resp.Body.Close()
	if len(feed) != 3 {
		t.Fatalf("feed has %d incidents", len(feed))
	}
	in := feed[0]
	if in.Country != "GB" || in.City != "London" || in.GeoSource != "maxmind" || in.Host != "web-1" ||
		in.Target == nil || in.Target.Country != "DE" {
		t.Errorf("not enriched: %+v", in)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// buildSensor builds cmd/attackmap-sensor into a temporary directory.
func buildSensor(t *testing.T) string {
	t.Helper()
	// The go command that runs this test is the one to build with.
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	bin := filepath.Join(t.TempDir(), "attackmap-sensor")
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/attackmap/attackmap/cmd/attackmap-sensor")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the sensor: %v\n%s", err, out)
	}
	return bin
}

// TestSIGKILLLosesNothingAndRepeatsNothing runs the real sensor binary
// against the real relay, kills it with SIGKILL at random moments while
// incidents are being written, restarts it, and checks that the relay got
// every id exactly once. Bounded: 8 kills, about 2 s of writing.
func TestSIGKILLLosesNothingAndRepeatsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the sensor binary; skipped in -short")
	}
	bin := buildSensor(t)
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tokens")
	tok, err := token.Add(tokFile, "web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(relay.Config{DataDir: filepath.Join(dir, "relay"), TokenFile: tokFile, IngestRate: -1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan error, 1)
	go func() { rdone <- r.Serve(rctx, ln) }()
	defer func() { rcancel(); <-rdone }()
	base := "http://" + ln.Addr().String()
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	ids := sseIDs(t, sctx, base)

	data := filepath.Join(dir, "data")
	cfgFile := filepath.Join(dir, "c.json")
	os.WriteFile(cfgFile, []byte(`{"geoip":{"paths":[]}}`), 0o644)
	var logs bytes.Buffer
	var logMu sync.Mutex
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--config", cfgFile, "--data", data, "--relay", "ws://"+ln.Addr().String(), "--token", tok)
		cmd.Stderr = writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) })
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	w, err := jsonl.Open(data, jsonl.Options{Prefix: "incidents", SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const total = 2000
	written := make(chan struct{})
	go func() {
		defer close(written)
		for i := range total {
			w.Append(mkIncident(i))
			if i%10 == 0 {
				time.Sleep(time.Millisecond) // about 2 s of writing in all
			}
		}
	}()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	for k := 0; k < 8; k++ {
		cmd := start()
		time.Sleep(time.Duration(30+rnd.IntN(300)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	<-written
	cmd := start()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	seen := map[string]int{}
	deadline := time.After(60 * time.Second)
	for len(seen) < total {
		select {
		case id, ok := <-ids:
			if !ok {
				t.Fatal("stream ended")
			}
			seen[id]++
		case <-deadline:
			logMu.Lock()
			t.Fatalf("%d of %d ids after 60 s; sensor log:\n%s", len(seen), total, logs.String())
		}
	}
	// Anything redelivered after the last kill has arrived by now or is
	// in flight; give the stream a moment to show a repeat.
	extra := time.After(300 * time.Millisecond)
drain:
	for {
		select {
		case id := <-ids:
			seen[id]++
		case <-extra:
			break drain
		}
	}
	for i := range total {
		id := fmt.Sprintf("ssh_bruteforce:81.2.69.142:%d", i)
		if seen[id] != 1 {
			t.Errorf("%s seen %d times", id, seen[id])
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// FuzzParseConfig checks that any config file gives a clean one-line error
// or a configuration that passes or fails check() without panicking.
func FuzzParseConfig(f *testing.F) {
	f.Add(defaultConfig)
	f.Add([]byte(`{"relays":[{"url":"https://r.example.org","token":"t"}],"target":{"lat":1,"lon":2}}`))
	f.Add([]byte(`{"threat_lists":[{"name":"x","url":"http://h/l.txt","refresh":"5m"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if err := cfg.check(); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
	})
}
