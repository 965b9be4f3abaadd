package tools

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// toolPATH is the PATH every tool and server runs with: Debian's own
// directories only, so a developer's pyenv or a ~/bin shim (which the
// tools' users could not read anyway) never replaces a packaged tool.
const toolPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// startTimeout bounds the wait for sshd, nginx and the sensor to come up:
// each starts in well under a second; 30 s covers a loaded 2-core CI
// machine that is also building other packages.
const startTimeout = 30 * time.Second

// stopTimeout is how long a server or the sensor gets after SIGTERM before
// SIGKILL: all of them exit at once on SIGTERM, so 15 s only matters when
// something is wrong (and the test then says so).
const stopTimeout = 15 * time.Second

// killDelay is how long a tool's pipes may stay open after its process
// group was killed at its timeout (exec.Cmd.WaitDelay): long enough for the
// kernel to reap it, short enough not to eat the test's budget.
const killDelay = 5 * time.Second

// userPrefix names the system users the test creates for the tools that
// cannot bind a source address. A fixed prefix, so a user left behind by a
// killed run is reused (and then removed) by the next one.
const userPrefix = "am-e2e-"

// workDir makes a directory every tool user can read: t.TempDir is 0700 and
// owned by root, but nginx's workers and the tools run as other users and
// must read the site, the wordlists and the htpasswd file.
func workDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "attackmap-tools-e2e-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("ATTACKMAP_KEEP") != "" {
			t.Logf("kept %s (ATTACKMAP_KEEP)", dir)
			return
		}
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyTree copies testdata files into dst, readable by everyone.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
}

// headLines writes the first n lines of the wordlist src to dst: the SSH
// tools get short lists so that each makes a few dozen attempts, not
// hundreds.
func headLines(src, dst string, n int) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return os.WriteFile(dst, []byte(strings.Join(lines, "")), 0o644)
}

// sparePort returns a loopback TCP port that was free a moment ago.
func sparePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// osUser is a system user the test created.
type osUser struct {
	Name     string
	UID, GID uint32
	Home     string // the user's working directory, under the test's dir
}

// addUser creates (or reuses) the system user userPrefix+name with the given
// shell and a working directory under dir, and removes it when the test
// ends, even when it fails.
func addUser(t *testing.T, dir, name, shell string) osUser {
	t.Helper()
	full := userPrefix + name
	home := filepath.Join(dir, "home", name)
	if _, err := user.Lookup(full); err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home",
			"--home-dir", home, "--shell", shell, full).CombinedOutput()
		if err != nil {
			t.Fatalf("useradd %s: %v: %s", full, err, bytes.TrimSpace(out))
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", full).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", full, err, bytes.TrimSpace(out))
		}
	})
	u, err := user.Lookup(full)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	return osUser{Name: full, UID: uint32(uid), GID: uint32(gid), Home: home}
}

// setPassword sets a user's password (sshd checks it against /etc/shadow:
// the test's sshd runs without PAM).
func setPassword(t *testing.T, name, password string) {
	t.Helper()
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(name + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
}

// snatRule rewrites the loopback connections of one user to the test's
// servers so that they come from Addr.
type snatRule struct {
	UID  uint32
	Addr netip.Addr
}

// addSNAT installs an nftables table that gives each rule's user its own
// source address on connections to 127.0.0.1 on the given ports (and only
// those: nothing else on the machine is touched), and deletes the table
// when the test ends, even when it fails. Locally generated packets pass the
// nat postrouting hook on lo, so sshd and nginx see the rewritten source
// in accept(), exactly as with a remote client; conntrack undoes it on the
// replies.
func addSNAT(t *testing.T, rules []snatRule, ports []int) {
	t.Helper()
	table := fmt.Sprintf("attackmap_e2e_%d", os.Getpid())
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n", table)
	ps := make([]string, len(ports))
	for i, p := range ports {
		ps[i] = strconv.Itoa(p)
	}
	for _, r := range rules {
		fmt.Fprintf(&b, "\t\tmeta skuid %d oifname \"lo\" ip daddr 127.0.0.1 tcp dport { %s } snat ip to %s\n",
			r.UID, strings.Join(ps, ", "), r.Addr)
	}
	b.WriteString("\t}\n}\n")
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s\n%s", err, bytes.TrimSpace(out), b.String())
	}
	t.Cleanup(func() {
		if out, err := exec.Command("nft", "delete", "table", "ip", table).CombinedOutput(); err != nil {
			t.Errorf("removing nftables table %s: %v: %s", table, err, bytes.TrimSpace(out))
		}
	})
}

// daemon is a server the test started in its own process group.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit status, once done is closed
}

// startDaemon starts cmd in its own process group (so stopping it reaches
// sshd's per-connection children and nginx's workers) with its output in
// logPath, and stops it when the test ends.
func startDaemon(t *testing.T, name string, cmd *exec.Cmd, logPath string) *daemon {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(cmd.Env, "PATH="+toolPATH, "LANG=C.UTF-8")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		f.Close()
		close(d.done)
	}()
	t.Cleanup(func() { d.stop(t) }) // sshd and nginx may exit non-zero on SIGTERM: only the sensor is judged
	return d
}

// stop sends SIGTERM to the daemon's group, then SIGKILL after stopTimeout,
// and returns how it exited (nil for status 0).
func (d *daemon) stop(t *testing.T) error {
	select {
	case <-d.done:
		return d.err
	default:
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.done:
		return d.err
	case <-time.After(stopTimeout):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
		t.Errorf("%s did not stop within %s of SIGTERM", d.name, stopTimeout)
		return d.err
	}
}

// waitUntil polls cond every 50 ms until it holds, the daemon exits or
// the timeout passes.
func waitUntil(d *daemon, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case <-d.done:
			return fmt.Errorf("%s exited: %v", d.name, d.err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready after %s", d.name, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func fileContains(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte(s))
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// sshdConfig runs a real OpenSSH server as on a typical Debian host:
// password and public key authentication, root login forbidden, VERBOSE
// logging (what fail2ban and CrowdSec recommend: it adds the connection
// and key fingerprint lines). No PAM, so passwords are checked against
// /etc/shadow with no PAM stack to set up; every session runs /bin/true
// and ends. MaxStartups is raised because several tools attack at once
// and sshd's default (10:30:100) would drop their connections at random;
// PerSourcePenalties (OpenSSH 9.8+) would shut the brute forcers out and
// is switched off when the server knows it.
const sshdConfig = `# attackmap tools end-to-end test: loopback only, removed when the test ends
Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile none
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile none
PermitRootLogin no
PermitEmptyPasswords no
MaxAuthTries 6
MaxStartups 100:30:200
LoginGraceTime 30
LogLevel VERBOSE
UseDNS no
PrintMotd no
PermitTTY no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
ForceCommand /bin/true
%s`

// startSSHD starts sshd on port with its log in logPath (sshd -E: bare
// messages, one per line, appended by the listener and every
// per-connection process).
func startSSHD(t *testing.T, dir, sshdPath string, port int, logPath string) *daemon {
	t.Helper()
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation directory
		t.Fatal(err)
	}
	key := filepath.Join(dir, "ssh_host_ed25519_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	extra := ""
	if out, _ := exec.Command(sshdPath, "-V").CombinedOutput(); newerThan(string(out), 9, 8) {
		extra = "PerSourcePenalties no\n"
	}
	cfg := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, sshdConfig, port, key, extra), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sshdPath, "-t", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v: %s", err, out)
	}
	d := startDaemon(t, "sshd", exec.Command(sshdPath, "-D", "-f", cfg, "-E", logPath), filepath.Join(dir, "sshd.out"))
	if err := waitUntil(d, startTimeout, func() bool { return fileContains(logPath, "Server listening on") }); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("%v\n%s", err, b)
	}
	return d
}

// newerThan says whether an `sshd -V` banner ("OpenSSH_9.2p1 ...") is at
// least major.minor.
func newerThan(banner string, major, minor int) bool {
	_, v, ok := strings.Cut(banner, "OpenSSH_")
	if !ok {
		return false
	}
	maj, rest, _ := strings.Cut(v, ".")
	mi := strings.TrimLeftFunc(rest, func(r rune) bool { return r >= '0' && r <= '9' })
	mn, _ := strconv.Atoi(rest[:len(rest)-len(mi)])
	mj, _ := strconv.Atoi(maj)
	return mj > major || mj == major && mn >= minor
}

// nginxConfig is a small shop site as Debian's nginx serves it: static
// pages and assets, two "dynamic" endpoints answered by nginx itself
// (there is no PHP here; what matters is the request line in the log), a
// login form whose POST always fails the way most web applications (and
// WordPress) fail a login: 200 and the form again with an error, and an
// admin area behind basic auth, which answers 401 to a wrong password. Combined access log; error log at level error, as the
// sensor reads it.
const nginxConfig = `# attackmap tools end-to-end test: loopback only, removed when the test ends
daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log error;
%[3]s
events { worker_connections 512; }
http {
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	access_log %[1]s/access.log combined;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	server_tokens off;
	server {
		listen 127.0.0.1:%[2]d;
		server_name localhost;
		root %[1]s/site;
		index index.html;
		location = /login {
			if ($request_method = POST) { return 200 "<!DOCTYPE html><html><head><title>Log in</title></head><body><p class=\"error\">Invalid username or password.</p><form action=\"/login\" method=\"post\"><input type=\"text\" name=\"username\"><input type=\"password\" name=\"password\"><button>Log in</button></form></body></html>\n"; }
			try_files /login.html =404;
		}
		location = /item.php {
			default_type text/html;
			return 200 "<!DOCTYPE html><html><head><title>Item</title></head><body><h1>Blue mug</h1><p>12 EUR</p><a href=\"/products.html\">Back</a></body></html>\n";
		}
		location = /search {
			default_type text/html;
			return 200 "<!DOCTYPE html><html><head><title>Search</title></head><body><h1>Search results</h1><p>No results.</p></body></html>\n";
		}
		location = /contact {
			default_type text/html;
			return 200 "<!DOCTYPE html><html><head><title>Thanks</title></head><body><p>Thank you, we will answer soon.</p></body></html>\n";
		}
		location /admin/ {
			auth_basic "Shop admin";
			auth_basic_user_file %[1]s/htpasswd;
		}
	}
}
`

// startNginx starts Debian's nginx with the site in dir/site on port.
// Basic auth on /admin/ accepts adminUser:adminPassword.
func startNginx(t *testing.T, dir string, port int, adminUser, adminPassword string) *daemon {
	t.Helper()
	for _, sub := range []string{"tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hash, err := exec.Command("openssl", "passwd", "-apr1", adminPassword).Output()
	if err != nil {
		t.Fatalf("openssl passwd: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(adminUser+":"+strings.TrimSpace(string(hash))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	userLine := ""
	if os.Geteuid() == 0 {
		// Workers drop to nobody, as to www-data on a real host.
		userLine = "user nobody nogroup;"
	}
	cfg := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, nginxConfig, dir, port, userLine), 0o644); err != nil {
		t.Fatal(err)
	}
	// -e: the error log before the configuration is read, so nginx never
	// touches /var/log/nginx.
	args := []string{"-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log")}
	if out, err := exec.Command("nginx", append(args, "-t", "-q")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v: %s", err, out)
	}
	d := startDaemon(t, "nginx", exec.Command("nginx", args...), filepath.Join(dir, "nginx.out"))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitUntil(d, startTimeout, func() bool { return listening(addr) }); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("%v\n%s", err, b)
	}
	return d
}

// sensorFlagSupported says whether `attackmap-sensor run -h` lists flag.
func sensorFlagSupported(bin, flag string) bool {
	out, _ := exec.Command(bin, "run", "-h").CombinedOutput()
	return bytes.Contains(out, []byte("-"+flag+" "))
}

// toolRun is how one tool run went.
type toolRun struct {
	Start, End time.Time
	Err        error // nil when it exited 0
	TimedOut   bool  // killed at its own timeout (not a failure by itself)
	Output     string
}

// maxToolOutput caps what the report keeps of a tool's output: its last
// lines say why it stopped; the rest is in the tool's home directory.
const maxToolOutput = 2 << 10

// runTool runs argv with a timeout in its own process group, as u when u is
// not nil (its traffic then goes through the snat rule), with the output in
// out. The whole group is killed at the timeout: hydra and medusa fork or
// thread workers that would outlive their parent.
func runTool(ctx context.Context, u *osUser, dir string, timeout time.Duration, out string, argv []string) toolRun {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := toolRun{Start: time.Now()}
	f, err := os.Create(out)
	if err != nil {
		r.Err, r.End = err, time.Now()
		return r
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Stdin = nil // tools that would prompt see EOF and go on
	cmd.Env = []string{"PATH=" + toolPATH, "LANG=C.UTF-8", "TERM=dumb", "HOME=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if u != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}
		cmd.Env = append(cmd.Env, "USER="+u.Name, "LOGNAME="+u.Name)
		f.Chown(int(u.UID), int(u.GID))
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = killDelay
	r.Err = cmd.Run()
	r.End = time.Now()
	r.TimedOut = ctx.Err() != nil
	r.Output = tailOf(out, maxToolOutput)
	return r
}

// tailOf returns the last n bytes of a file, from a line start.
func tailOf(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, st.Size()-n)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimSpace(string(b))
}

// countLines counts the lines of a log by the client address in each
// (lineAddr), and how many of them contain each of marks.
func countLines(path string, marks []string) (map[netip.Addr]map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	got := map[netip.Addr]map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		a, ok := lineAddr(sc.Text())
		if !ok {
			continue
		}
		m := got[a]
		if m == nil {
			m = map[string]int{}
			got[a] = m
		}
		m["lines"]++
		for _, k := range marks {
			if strings.Contains(sc.Text(), k) {
				m[k]++
			}
		}
	}
	return got, sc.Err()
}

// lineAddr returns the client address of an access log line (its first
// field) or of an sshd message (the word before the last " port ": sshd
// writes the address after any attacker-chosen username).
func lineAddr(line string) (netip.Addr, bool) {
	line = strings.TrimRight(line, "\r")
	if first, _, ok := strings.Cut(line, " "); ok {
		if a, err := netip.ParseAddr(first); err == nil {
			return a.Unmap(), true
		}
	}
	var i int
	if rest, ok := strings.CutPrefix(line, "Connection from "); ok {
		// VERBOSE's "Connection from A port P on B port Q rdomain ..."
		// names the client first and the server last.
		line = "from " + rest
		i = strings.Index(line, " port ")
	} else {
		i = strings.LastIndex(line, " port ")
	}
	if i < 0 {
		return netip.Addr{}, false
	}
	head := line[:i]
	a, err := netip.ParseAddr(head[strings.LastIndexByte(head, ' ')+1:])
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
