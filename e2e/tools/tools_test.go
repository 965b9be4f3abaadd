package tools

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attackmap/attackmap/drill"
	"github.com/attackmap/attackmap/incident"
)

// Budgets. The whole test stays under about four minutes on a 2-core
// machine: the tools run three at a time (two cores, and most of a tool's
// time is spent waiting on the network), each under its own timeout, and
// all of them under toolsBudget.
const (
	// toolsBudget bounds the attack phase; the per-tool timeouts below add
	// up to about twice it over three lanes, and most tools finish early.
	toolsBudget = 3 * time.Minute
	// lanes is how many tools run at once.
	lanes = 3
	// detectWait bounds the wait for the expected incidents once the tools
	// are done: the sensor reads appended lines within milliseconds, and
	// detectors run on event time, so an incident that is not there after
	// a few seconds will not come. 20 s covers a loaded machine.
	detectWait = 20 * time.Second
	// settle is the least time the sensor gets after the last tool before
	// it is stopped, so that an incident a normal client should NOT raise
	// has had every chance to appear.
	settle = 3 * time.Second
)

// browserUA is what the normal visitor, sqlmap and wapiti send: payloads
// must be recognised by what they are, not by a tool's name in the agent.
const browserUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// Which server an attack targets, and so which log its lines are in.
const (
	targetSSH = "ssh"
	targetWeb = "web"
)

// world is what the tools attack.
type world struct {
	dir                      string
	sshPort, webPort         int
	sshLog, accessLog        string
	users, passwords, paths  string // wordlists: 20 users, 30 passwords, 30 paths
	users5, passwords8       string // the SSH tools' short lists: 40 attempts each
	loginUser, loginPassword string // the real account the normal SSH client logs in to
	adminUser, adminPassword string // basic auth on /admin/
}

func (w *world) webURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(w.webPort) + path
}

// attack is one tool run from its own address and what it must raise.
type attack struct {
	name   string
	tool   string     // the binary; a missing one skips the attack
	addr   netip.Addr // the only source this attack uses
	target string     // targetSSH or targetWeb
	// own: the tool cannot bind a source address, so it runs as its own
	// system user whose connections the nftables rule rewrites to addr.
	own     bool
	timeout time.Duration
	// argv builds the command line; run replaces it for the normal clients,
	// which make several calls.
	argv func(w *world, a *attack) []string
	run  func(ctx context.Context, w *world, a *attack, home string) toolRun
	// want lists the incident sources any one of which satisfies the
	// expectation; empty means the address must raise no incident at all.
	want []string
	// mention, when set, requires the wanted incident to name one of these
	// words (case-insensitive) in its title, summary or tags: what kind of
	// attack the payloads were.
	mention []string
	// ebpf: the attack is only visible to the eBPF collectors.
	ebpf bool
}

func addr(n int) netip.Addr { return netip.AddrFrom4([4]byte{127, 20, 0, byte(n)}) }

// attacks is the plan: each tool as attackers run it, bounded in count
// (short wordlists) and time. Each timeout is about twice what the tool
// takes here on a loaded 2-core machine (hydra's SSH run, the slowest, is
// paced by sshd's delay after each failed password); a tool killed at its
// timeout is not a failure by itself: the lines it wrote until then are
// judged.
var attacks = []attack{
	// Web: the long runs first, so that the three lanes end together.
	{
		name: "wapiti", tool: "wapiti", addr: addr(8), target: targetWeb, own: true, timeout: 100 * time.Second,
		// The payload modules (XSS, command execution, file disclosure and
		// traversal, SQL injection), a browser agent, a bounded scan.
		argv: func(w *world, a *attack) []string {
			return []string{"wapiti", "-u", w.webURL("/"), "--scope", "folder", "-m", "xss,exec,file,sql",
				"-A", browserUA, "--flush-session", "-d", "2", "--max-scan-time", "80", "--max-attack-time", "20",
				"-v", "1", "-f", "txt", "-o", "report"}
		},
		want:    []string{"web_scan", "exploit_attempt"},
		mention: []string{"xss", "cross-site", "command injection", "code injection", "traversal", "file inclusion", "sql injection"},
	},
	{
		name: "sqlmap", tool: "sqlmap", addr: addr(7), target: targetWeb, own: true, timeout: 75 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"sqlmap", "-u", w.webURL("/item.php?id=1"), "--batch", "--user-agent", browserUA,
				"--level", "1", "--risk", "1", "--time-sec", "1", "--flush-session", "--disable-coloring",
				"--output-dir", "out"}
		},
		want:    []string{"web_scan", "exploit_attempt"},
		mention: []string{"sql injection", "sqli", "sql-injection"},
	},
	{
		name: "hydra-http-form", tool: "hydra", addr: addr(14), target: targetWeb, own: true, timeout: 40 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"hydra", "-I", "-L", w.users5, "-P", w.passwords8, "-t", "4", "-s", strconv.Itoa(w.webPort),
				"127.0.0.1", "http-post-form", "/login:username=^USER^&password=^PASS^:F=Invalid username or password"}
		},
		want: []string{"credential_stuffing"},
	},
	{
		// Basic auth on /admin/: every wrong guess is a 401.
		name: "hydra-http-basic", tool: "hydra", addr: addr(15), target: targetWeb, own: true, timeout: 40 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"hydra", "-I", "-L", w.users5, "-P", w.passwords8, "-t", "4", "-s", strconv.Itoa(w.webPort),
				"127.0.0.1", "http-get", "/admin/"}
		},
		want: []string{"credential_stuffing"},
	},
	{
		name: "gobuster", tool: "gobuster", addr: addr(9), target: targetWeb, own: true, timeout: 30 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"gobuster", "dir", "-u", w.webURL("/"), "-w", w.paths, "-t", "4", "-q", "-z", "--no-error"}
		},
		want: []string{"web_scan"},
	},
	{
		name: "ffuf", tool: "ffuf", addr: addr(10), target: targetWeb, own: true, timeout: 30 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"ffuf", "-u", w.webURL("/FUZZ"), "-w", w.paths, "-t", "4", "-s"}
		},
		want: []string{"web_scan"},
	},
	{
		// dirb sends an old MSIE agent: only the 404s give it away.
		name: "dirb", tool: "dirb", addr: addr(11), target: targetWeb, own: true, timeout: 30 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"dirb", w.webURL("/"), w.paths, "-S", "-r"}
		},
		want: []string{"web_scan"},
	},
	{
		name: "wfuzz", tool: "wfuzz", addr: addr(12), target: targetWeb, own: true, timeout: 30 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"wfuzz", "-z", "file," + w.paths, "--hc", "404", "-t", "4", w.webURL("/FUZZ")}
		},
		want: []string{"web_scan"},
	},
	{
		// whatweb fingerprints a site in a couple of requests; its agent
		// names it, and reconnaissance is what web_scan reports.
		name: "whatweb", tool: "whatweb", addr: addr(13), target: targetWeb, own: true, timeout: 30 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"whatweb", "-a", "1", "--color=never", w.webURL("/")}
		},
		want: []string{"web_scan"},
	},
	// SSH.
	{
		name: "hydra-ssh", tool: "hydra", addr: addr(1), target: targetSSH, own: true, timeout: 45 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"hydra", "-I", "-l", "admin", "-P", w.passwords, "-t", "4", "-s", strconv.Itoa(w.sshPort),
				"127.0.0.1", "ssh"}
		},
		want: []string{"ssh_bruteforce"},
	},
	{
		// One password for 20 users: a spray across accounts.
		name: "medusa-ssh", tool: "medusa", addr: addr(2), target: targetSSH, own: true, timeout: 45 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"medusa", "-h", "127.0.0.1", "-n", strconv.Itoa(w.sshPort), "-U", w.users, "-p", "123456",
				"-M", "ssh", "-t", "2", "-b"}
		},
		want: []string{"ssh_bruteforce", "credential_stuffing"},
	},
	{
		name: "ncrack-ssh", tool: "ncrack", addr: addr(3), target: targetSSH, own: true, timeout: 45 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"ncrack", "-T4", "-U", w.users5, "-P", w.passwords8,
				"ssh://127.0.0.1:" + strconv.Itoa(w.sshPort)}
		},
		want: []string{"ssh_bruteforce", "credential_stuffing"},
	},
	{
		name: "patator-ssh", tool: "patator", addr: addr(4), target: targetSSH, own: true, timeout: 45 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"patator", "ssh_login", "host=127.0.0.1", "port=" + strconv.Itoa(w.sshPort),
				"user=FILE0", "password=FILE1", "0=" + w.users5, "1=" + w.passwords8,
				"--threads=2", "-x", "ignore:mesg=Authentication failed."}
		},
		want: []string{"ssh_bruteforce", "credential_stuffing"},
	},
	{
		// Service and key-exchange fingerprinting, as ssh-audit does: the
		// version banner, the algorithm lists, the host keys. No login.
		name: "nmap-ssh-probe", tool: "nmap", addr: addr(5), target: targetSSH, timeout: 60 * time.Second,
		argv: func(w *world, a *attack) []string {
			return []string{"nmap", "-n", "-Pn", "-sS", "-sV", "--script", "ssh2-enum-algos,ssh-hostkey",
				"-p", strconv.Itoa(w.sshPort), "-S", a.addr.String(), "-e", "lo", "127.0.0.1"}
		},
		want: []string{"ssh_probe"},
	},
	{
		// A SYN scan of the first thousand ports: no log line anywhere,
		// only the eBPF collectors see the connection attempts.
		name: "nmap-syn-scan", tool: "nmap", addr: addr(6), target: targetSSH, timeout: 40 * time.Second, ebpf: true,
		argv: func(w *world, a *attack) []string {
			return []string{"nmap", "-n", "-Pn", "-sS", "-T4", "--max-retries", "1", "-p", "1-1000",
				"-S", a.addr.String(), "-e", "lo", "127.0.0.1"}
		},
		want: []string{"port_scan"},
	},
	// Normal clients: nothing may be raised for them.
	{
		name: "normal-browsing", tool: "curl", addr: addr(50), target: targetWeb, timeout: 40 * time.Second,
		run: browse,
	},
	{
		name: "normal-ssh-login", tool: "sshpass", addr: addr(51), target: targetSSH, timeout: 40 * time.Second,
		run: sshLogin,
	},
}

// browse is a person visiting the shop with a browser: each page with its
// assets (the first one fetches them all, later ones revalidate the style
// sheet), a search, one mistyped login on the form, and the admin area,
// where the browser first asks without credentials (401) and then with
// them, as every browser does with basic auth.
func browse(ctx context.Context, w *world, a *attack, home string) toolRun {
	assets := []string{"/static/style.css", "/static/app.js", "/static/logo.svg", "/favicon.ico"}
	type visit struct {
		page  string
		extra []string // curl options for the page
		with  []string // assets fetched with it
		code  string   // the status a working site answers
	}
	visits := []visit{
		{page: "/", with: assets, code: "200"},
		{page: "/products.html", with: assets[:1], code: "200"},
		{page: "/item.php?id=1", code: "200"},
		{page: "/item.php?id=2", code: "200"},
		{page: "/blog/", with: assets[:1], code: "200"},
		{page: "/blog/post-1.html", code: "200"},
		{page: "/blog/post-2.html", code: "200"},
		{page: "/about.html", code: "200"},
		{page: "/search?q=blue+mug", code: "200"},
		{page: "/contact.html", code: "200"},
		{page: "/contact", extra: []string{"--data", "name=Ann&message=Do+you+ship+to+Norway%3F"}, code: "200"},
		{page: "/login", code: "200"},
		{page: "/login", extra: []string{"--data", "username=ann&password=blue-mug-typo"}, code: "200"},
		{page: "/admin/", code: "401"},
		{page: "/admin/", extra: []string{"--user", w.adminUser + ":" + w.adminPassword}, code: "200"},
	}
	r := toolRun{Start: time.Now()}
	var out strings.Builder
	referer := w.webURL("/")
	for i, v := range visits {
		argv := []string{"curl", "--interface", a.addr.String(), "-sS", "-A", browserUA,
			"-H", "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
			"-H", "Accept-Language: en-US,en;q=0.5", "--compressed",
			"-w", "%{http_code} %{url_effective}\\n"}
		if i > 0 {
			argv = append(argv, "-e", referer)
		}
		argv = append(argv, v.extra...)
		argv = append(argv, "-o", "/dev/null", w.webURL(v.page))
		for _, s := range v.with {
			argv = append(argv, "-o", "/dev/null", w.webURL(s))
		}
		// 10 s per page: nginx answers in a millisecond; the bound only
		// keeps a broken server from stalling the test.
		one := runTool(ctx, nil, home, 10*time.Second, filepath.Join(home, fmt.Sprintf("curl-%02d.log", i)), argv)
		out.WriteString(one.Output + "\n")
		if one.Err != nil && r.Err == nil {
			r.Err = fmt.Errorf("curl %s: %w", v.page, one.Err)
		}
		if got, _, _ := strings.Cut(one.Output, " "); got != v.code && r.Err == nil {
			r.Err = fmt.Errorf("the site answered %s to %s, want %s: the test site is broken", got, v.page, v.code)
		}
		referer = w.webURL(v.page)
		// A person reads a page for a moment; 150 ms keeps the test short
		// and still spreads the visit over a couple of seconds.
		time.Sleep(150 * time.Millisecond)
	}
	r.End, r.Output = time.Now(), strings.TrimSpace(out.String())
	return r
}

// sshLogin is a person logging in to their account twice with the right
// password from their own address (ssh -b binds it).
func sshLogin(ctx context.Context, w *world, a *attack, home string) toolRun {
	r := toolRun{Start: time.Now()}
	var out strings.Builder
	for i := range 2 {
		argv := []string{"sshpass", "-p", w.loginPassword, "ssh", "-b", a.addr.String(), "-p", strconv.Itoa(w.sshPort),
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
			"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password", "-o", "BatchMode=no",
			"-F", "/dev/null", w.loginUser + "@127.0.0.1", "true"}
		// 15 s per login: it takes well under one; the bound only keeps a
		// broken sshd from stalling the test.
		one := runTool(ctx, nil, home, 15*time.Second, filepath.Join(home, fmt.Sprintf("ssh-%d.log", i)), argv)
		out.WriteString(one.Output)
		if one.Err != nil && r.Err == nil {
			r.Err = fmt.Errorf("ssh login %d: %w", i+1, one.Err)
		}
		time.Sleep(time.Second) // a person does not log in twice in the same second
	}
	r.End, r.Output = time.Now(), strings.TrimSpace(out.String())
	return r
}

// outcome is what one attack did and what the sensor made of it.
type outcome struct {
	skip      string // why the attack did not run
	run       toolRun
	lines     map[string]int // log lines from the address, and of some kinds
	events    map[string]int // the sensor's raw events from the address, by kind
	incidents []incident.Incident
}

func TestRealToolsRaiseTheirIncidents(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: system users and an nftables snat rule give each tool its own 127.20.0.x source, and the test's sshd checks real passwords (CI runs .ci/run as root)")
	}
	for _, bin := range []string{"nft", "useradd", "userdel", "chpasswd", "ssh-keygen", "openssl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (Debian packages nftables, passwd, openssh-client, openssl; .ci/run installs them): %v", bin, err)
		}
	}
	sshdPath, sshdErr := drill.FindSSHD()
	_, nginxErr := exec.LookPath("nginx")
	if sshdErr != nil && nginxErr != nil {
		t.Skip("needs Debian's openssh-server or nginx (.ci/run installs both)")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := workDir(t)
	here, _ := os.Getwd()

	// Wordlists and the site, readable by the tools' users and nginx's
	// workers.
	w := &world{dir: dir, sshLog: filepath.Join(dir, "sshd.log"), accessLog: filepath.Join(dir, "access.log")}
	for _, f := range []struct {
		dst *string
		src string
		n   int
	}{
		{&w.users, "users.txt", 1000}, {&w.passwords, "passwords.txt", 1000}, {&w.paths, "paths.txt", 1000},
		{&w.users5, "users.txt", 5}, {&w.passwords8, "passwords.txt", 8},
	} {
		*f.dst = filepath.Join(dir, "lists", fmt.Sprintf("%d-%s", f.n, f.src))
		os.MkdirAll(filepath.Dir(*f.dst), 0o755)
		if err := headLines(filepath.Join(here, "testdata", f.src), *f.dst, f.n); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyTree(filepath.Join(here, "testdata", "site"), filepath.Join(dir, "site")); err != nil {
		t.Fatal(err)
	}
	w.loginPassword, w.adminPassword = secret(), secret()
	w.adminUser = "shopadmin"

	// The sensor, built from this tree, reading both logs from their start
	// (so no line is missed however quickly the first tool writes).
	for _, p := range []string{w.sshLog, w.accessLog, filepath.Join(dir, "error.log"), filepath.Join(dir, "fw.log")} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// ATTACKMAP_SENSOR names a prebuilt binary instead (to run the same
	// tools against another build without rebuilding).
	sensorBin := os.Getenv("ATTACKMAP_SENSOR")
	if sensorBin == "" {
		sensorBin = filepath.Join(dir, "attackmap-sensor")
		build := exec.Command("go", "build", "-o", sensorBin, "./cmd/attackmap-sensor")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building the sensor: %v\n%s", err, out)
		}
	}

	// The servers.
	w.sshPort, w.webPort = sparePort(t), sparePort(t)
	if sshdErr == nil {
		login := addUser(t, dir, "login", "/bin/sh")
		w.loginUser = login.Name
		setPassword(t, login.Name, w.loginPassword)
		startSSHD(t, dir, sshdPath, w.sshPort, w.sshLog)
	}
	if nginxErr == nil {
		startNginx(t, dir, w.webPort, w.adminUser, w.adminPassword)
	}

	dataDir := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "sensor.json")
	if err := os.WriteFile(cfg, []byte(`{"host":"tools-e2e","logs":{"from_start":true}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--config", cfg, "--data", dataDir, "--include-private",
		"--auth-log", w.sshLog, "--access-log", w.accessLog, "--fw-log", filepath.Join(dir, "fw.log")}
	if sensorFlagSupported(sensorBin, "error-log") {
		args = append(args, "--error-log", filepath.Join(dir, "error.log"))
	} else {
		t.Log("the sensor has no --error-log yet: nginx's error log is not read")
	}
	sensorLog := filepath.Join(dir, "sensor.log")
	sensor := startDaemon(t, "attackmap-sensor", exec.Command(sensorBin, args...), sensorLog)
	if err := waitUntil(sensor, startTimeout, func() bool { return fileContains(sensorLog, "sensor running") }); err != nil {
		b, _ := os.ReadFile(sensorLog)
		t.Fatalf("%v\n%s", err, b)
	}
	ebpf := waitUntil(sensor, 10*time.Second, func() bool { return fileContains(sensorLog, "eBPF collectors running") }) == nil

	// Decide what runs, create the tools' users and their snat rule.
	results := make([]outcome, len(attacks))
	users := make([]*osUser, len(attacks))
	var rules []snatRule
	for i := range attacks {
		a := &attacks[i]
		switch {
		case a.target == targetSSH && sshdErr != nil:
			results[i].skip = "needs Debian's openssh-server: " + sshdErr.Error()
		case a.target == targetWeb && nginxErr != nil:
			results[i].skip = "needs Debian's nginx"
		case a.ebpf && !ebpf:
			results[i].skip = "the sensor's eBPF collectors did not start (needs root and tracefs): nothing else sees a SYN scan"
		}
		if _, err := exec.LookPath(a.tool); err != nil && results[i].skip == "" {
			results[i].skip = fmt.Sprintf("%s is not installed (Debian package %s; .ci/run installs it)", a.tool, a.tool)
		}
		if results[i].skip != "" || !a.own {
			continue
		}
		u := addUser(t, dir, a.name, "/usr/sbin/nologin")
		users[i] = &u
		rules = append(rules, snatRule{UID: u.UID, Addr: a.addr})
	}
	if len(rules) > 0 {
		addSNAT(t, rules, []int{w.sshPort, w.webPort})
	}

	// The attacks, three at a time, each under its own timeout and all
	// under toolsBudget.
	ctx, cancel := context.WithTimeout(context.Background(), toolsBudget)
	defer cancel()
	todo := make(chan int)
	var wg sync.WaitGroup
	for range lanes {
		wg.Go(func() {
			for i := range todo {
				a := &attacks[i]
				home := filepath.Join(dir, "home", a.name)
				if users[i] != nil {
					home = users[i].Home
				} else if err := os.MkdirAll(home, 0o755); err != nil {
					results[i].run.Err = err
					continue
				}
				if a.run != nil {
					results[i].run = a.run(ctx, w, a, home)
				} else {
					results[i].run = runTool(ctx, users[i], home, a.timeout, filepath.Join(home, "output.log"), a.argv(w, a))
				}
			}
		})
	}
	for i := range attacks {
		if results[i].skip == "" {
			todo <- i
		}
	}
	close(todo)
	wg.Wait()
	toolsDone := time.Now()

	// Wait for the expected incidents (bounded), give the sensor a moment
	// more, stop it and read its journals for good.
	deadline := toolsDone.Add(detectWait)
	for time.Now().Before(deadline) {
		incs, err := readIncidents(dataDir)
		if err == nil && allRaised(incs, results) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if d := time.Until(toolsDone.Add(settle)); d > 0 {
		time.Sleep(d)
	}
	if err := sensor.stop(t); err != nil {
		t.Errorf("the sensor did not exit cleanly on SIGTERM: %v", err)
	}
	incs, err := readIncidents(dataDir)
	if err != nil {
		t.Errorf("reading the incidents journal: %v", err)
	}
	events, err := readEvents(dataDir)
	if err != nil {
		t.Errorf("reading the events journal: %v", err)
	}
	sshLines, err := countLines(w.sshLog, sshMarks)
	if err != nil {
		t.Error(err)
	}
	webLines, err := countLines(w.accessLog, webMarks)
	if err != nil {
		t.Error(err)
	}
	for i := range attacks {
		a, o := &attacks[i], &results[i]
		o.lines = webLines[a.addr]
		if a.target == targetSSH {
			o.lines = sshLines[a.addr]
		}
		o.events = events[a.addr]
		for _, in := range incs {
			if in.IP == a.addr.String() {
				o.incidents = append(o.incidents, in)
			}
		}
	}

	var rep strings.Builder
	writeReport(&rep, results, ebpf)
	t.Logf("tools on loopback (tools ran %s):\n%s", toolsDone.Sub(earliest(results)).Round(time.Second), rep.String())

	for i := range attacks {
		a, o := &attacks[i], &results[i]
		t.Run(a.name, func(t *testing.T) {
			if o.skip != "" {
				t.Skip(o.skip)
			}
			judge(t, a, o)
		})
	}
	if t.Failed() {
		t.Logf("sensor log (last lines):\n%s", tailOf(sensorLog, 4<<10))
	}
}

// Log line kinds the report counts per address.
var (
	sshMarks = []string{"Failed password", "Invalid user", "Accepted password", "Connection closed",
		"kex_exchange_identification", "banner exchange", "Unable to negotiate"}
	webMarks = []string{`" 200 `, `" 401 `, `" 404 `}
)

// judge checks one attack's outcome and says, for a missing incident,
// where the chain broke: the tool sent nothing, the sensor did not parse
// its lines, or no detector acted on them.
func judge(t *testing.T, a *attack, o *outcome) {
	t.Helper()
	if len(a.want) == 0 {
		if o.run.Err != nil {
			t.Errorf("%s from %s did not work, so it proves nothing: %v\n%s", a.name, a.addr, o.run.Err, o.run.Output)
		}
		if a.target == targetSSH && o.lines["Accepted password"] == 0 {
			t.Errorf("%s: sshd logged no accepted login from %s", a.name, a.addr)
		}
		for _, in := range o.incidents {
			t.Errorf("%s from %s raised %s (%s) %q: %s: a false positive", a.name, a.addr, in.Source, in.Severity, in.Title, in.Summary)
		}
		return
	}
	if slices.ContainsFunc(o.incidents, func(in incident.Incident) bool { return wanted(a, in) }) {
		return
	}
	want := strings.Join(a.want, " or ")
	if len(a.mention) > 0 {
		want += " naming " + strings.Join(a.mention, "/")
	}
	var why string
	switch {
	case a.ebpf && len(o.events) == 0:
		why = "the eBPF collectors reported no event from its address"
	case !a.ebpf && o.lines["lines"] == 0:
		why = "the tool left no log line from its address (tool behaviour or harness)"
	case !a.ebpf && len(o.events) == 0:
		why = fmt.Sprintf("the sensor parsed none of its %d log lines (parser)", o.lines["lines"])
	case len(o.incidents) > 0:
		why = "other incidents were raised, not the expected one (detector or rule)"
	default:
		why = fmt.Sprintf("the sensor parsed %s but no detector raised an incident (detector or rule)", kinds(o.events))
	}
	t.Errorf("%s from %s: want %s; got %s; %s", a.name, a.addr, want, listIncidents(o.incidents), why)
}

// wanted says whether in satisfies a's expectation.
func wanted(a *attack, in incident.Incident) bool {
	if !slices.Contains(a.want, in.Source) {
		return false
	}
	if len(a.mention) == 0 {
		return true
	}
	text := strings.ToLower(in.Title + " " + in.Summary + " " + strings.Join(in.Tags, " "))
	return slices.ContainsFunc(a.mention, func(m string) bool { return strings.Contains(text, m) })
}

// allRaised says whether every attack that ran has its expected incident.
func allRaised(incs []incident.Incident, results []outcome) bool {
	for i := range attacks {
		a := &attacks[i]
		if results[i].skip != "" || len(a.want) == 0 {
			continue
		}
		if !slices.ContainsFunc(incs, func(in incident.Incident) bool { return in.IP == a.addr.String() && wanted(a, in) }) {
			return false
		}
	}
	return true
}

func earliest(results []outcome) time.Time {
	var t time.Time
	for _, o := range results {
		if !o.run.Start.IsZero() && (t.IsZero() || o.run.Start.Before(t)) {
			t = o.run.Start
		}
	}
	return t
}

func secret() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// repoRoot is the module root above the test's directory.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the module")
	}
	return filepath.Dir(mod), nil
}
