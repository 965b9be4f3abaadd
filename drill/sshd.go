package drill

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Auth log stamp formats, as rsyslog writes them.
const (
	// FormatBSD is RSYSLOG_TraditionalFileFormat, Debian 12's default:
	// "Mar  2 14:32:01 host sshd[812]: msg" (local time, no year).
	FormatBSD = "bsd"
	// FormatRFC3339 is RSYSLOG_FileFormat: "2026-03-02T14:32:01.123456+01:00
	// host sshd[812]: msg".
	FormatRFC3339 = "rfc3339"
)

// sshdStartTimeout bounds the wait for "Server listening on": sshd starts in
// about 10 ms; 10 s covers a loaded CI machine.
const sshdStartTimeout = 10 * time.Second

// sshdStopTimeout is how long sshd gets after SIGTERM before SIGKILL: it
// exits at once on SIGTERM, so 5 s only matters when something is wrong.
const sshdStopTimeout = 5 * time.Second

// maxLogLine caps one sshd stderr line. sshd formats messages into a 1 KiB
// buffer (log.c MSGBUFSIZ), so 64 KiB is never reached by a real line.
const maxLogLine = 64 << 10

// FindSSHD returns the path of the OpenSSH server binary (/usr/sbin/sshd on
// Debian, else the first sshd on PATH) or an error naming the package.
func FindSSHD() (string, error) {
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		return filepath.Abs(p)
	}
	return "", errors.New("drill: sshd not found (Debian package openssh-server)")
}

// installSSHD installs openssh-server with apt-get. Debian starts and
// enables ssh.service on install, which would expose this host on port 22
// when it did not run sshd before; so the service is stopped and disabled
// again right after, leaving the host as it was plus the binary.
func installSSHD(ctx context.Context, log *slog.Logger) error {
	if os.Geteuid() != 0 {
		return errors.New("drill: sshd not found and not root: install openssh-server (apt-get install openssh-server)")
	}
	// Installing takes seconds to a couple of minutes on a slow mirror.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	log.Info("installing openssh-server for the SSH drill")
	apt := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w: %s", strings.Join(args, " "), err, lastLine(out))
		}
		return nil
	}
	install := []string{"install", "-y", "-qq", "--no-install-recommends", "openssh-server"}
	if err := apt(install...); err != nil {
		if uerr := apt("update", "-qq"); uerr != nil {
			return fmt.Errorf("drill: %w", uerr)
		}
		if err := apt(install...); err != nil {
			return fmt.Errorf("drill: %w", err)
		}
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		out, err := exec.CommandContext(ctx, "systemctl", "disable", "--now", "ssh.service", "ssh.socket").CombinedOutput()
		if err != nil {
			log.Warn("could not stop the ssh service the package started", "err", err, "out", lastLine(out))
		} else {
			log.Info("stopped and disabled ssh.service that installing openssh-server started")
		}
	}
	return nil
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// sshdVersion returns OpenSSH's major and minor version from `sshd -V`
// ("OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 ...").
func sshdVersion(ctx context.Context, path string) (major, minor int, err error) {
	// sshd -V prints its version on stderr and exits with status 0 (9.x) or
	// complains about the unknown flag (older releases); both print it.
	out, _ := exec.CommandContext(ctx, path, "-V").CombinedOutput()
	return parseSSHVersion(string(out))
}

var sshVersionRE = regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`)

func parseSSHVersion(s string) (major, minor int, err error) {
	m := sshVersionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, fmt.Errorf("drill: no OpenSSH version in %q", firstN(s, 80))
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor, nil
}

func firstN(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// sshd is a running OpenSSH server started by the drill: its own host key,
// its own sshd_config in a temporary directory, listening on 127.0.0.1 only,
// its log lines appended to the auth log with a syslog prefix.
type sshd struct {
	Addr    string // 127.0.0.1:port
	HostKey ssh.PublicKey
	Version string

	dir   string
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
	pump  sync.WaitGroup
	tally *tally
}

// sshdOptions configures startSSHD.
type sshdOptions struct {
	Path     string // sshd binary, absolute (sshd re-executes itself)
	AuthLog  string
	Format   string // FormatBSD or FormatRFC3339
	Hostname string
	Log      *slog.Logger
}

// sshdConfig is the drill server's configuration. Passwords are the only
// method; no PAM (the real shadow check, no PAM stack to configure); root
// may never log in; every session would run /bin/false. The drill's
// passwords are random, so no attempt can succeed anyway.
const sshdConfig = `# attackmap drill sshd: loopback only, removed when the drill ends
Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile none
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication no
AuthorizedKeysFile none
PermitRootLogin no
PermitEmptyPasswords no
MaxAuthTries 6
MaxStartups 100:30:200
LoginGraceTime 30
LogLevel INFO
SyslogFacility AUTH
UseDNS no
PrintMotd no
PermitTTY no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
ForceCommand /bin/false
%s`

// startSSHD starts sshd and returns once it listens. Stop it with stop.
func startSSHD(ctx context.Context, o sshdOptions, t *tally) (*sshd, error) {
	major, minor, err := sshdVersion(ctx, o.Path)
	if err != nil {
		return nil, err
	}
	extra := ""
	if major > 9 || major == 9 && minor >= 8 {
		// OpenSSH 9.8 refuses connections for a while from a source that
		// failed to authenticate: that would stop the brute force itself.
		extra = "PerSourcePenalties no\n"
	}
	if os.Geteuid() == 0 {
		// Debian's sshd needs its privilege separation directory, which
		// normally the ssh service creates at boot.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, fmt.Errorf("drill: privilege separation directory: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "attackmap-drill-sshd-*")
	if err != nil {
		return nil, fmt.Errorf("drill: sshd directory: %w", err)
	}
	s := &sshd{dir: dir, tally: t, Version: fmt.Sprintf("OpenSSH %d.%d", major, minor)}
	keyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	s.HostKey, err = writeHostKey(keyPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A port picked by listening on :0 can be taken by someone else before
	// sshd binds it; three tries make that race irrelevant.
	for try := 0; ; try++ {
		err = s.start(ctx, o, keyPath, extra)
		if err == nil || try == 2 || !strings.Contains(err.Error(), "Bind to port") {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *sshd) start(ctx context.Context, o sshdOptions, keyPath, extra string) error {
	port, err := sparePort()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, sshdConfig, port, keyPath, extra), 0o600); err != nil {
		return fmt.Errorf("drill: sshd_config: %w", err)
	}
	if out, err := exec.CommandContext(ctx, o.Path, "-t", "-f", cfgPath).CombinedOutput(); err != nil {
		return fmt.Errorf("drill: sshd -t: %w: %s", err, lastLine(out))
	}
	logf, err := os.OpenFile(o.AuthLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("drill: auth log: %w", err)
	}
	// -D: stay in the foreground; -e: log to stderr, which the pump below
	// turns into auth.log lines (there is no syslog daemon to rely on).
	cmd := exec.Command(o.Path, "-D", "-e", "-f", cfgPath)
	// Own process group, so stop reaches the per-connection children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return fmt.Errorf("drill: sshd stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("drill: starting sshd: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ready := make(chan struct{})
	var failure strings.Builder // sshd's last words if it exits early
	s.pump.Add(1)
	go func() {
		defer s.pump.Done()
		defer logf.Close()
		p := logPump{
			w: logf, format: o.Format, host: o.Hostname, pid: cmd.Process.Pid,
			tally: s.tally, log: o.Log,
		}
		listening := false
		p.run(stderr, func(msg string) {
			switch {
			case listening:
			case strings.HasPrefix(msg, "Server listening on "):
				listening = true
				close(ready)
			default:
				failure.WriteString(msg + "; ")
			}
		})
	}()
	go func() {
		s.pump.Wait() // Wait closes the pipe: let the pump read it all first
		cmd.Wait()
		close(s.done)
	}()
	timer := time.NewTimer(sshdStartTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		o.Log.Debug("drill sshd listening", "addr", s.Addr, "pid", cmd.Process.Pid)
		return nil
	case <-s.done:
		return fmt.Errorf("drill: sshd exited: %s", strings.TrimSuffix(failure.String(), "; "))
	case <-timer.C:
		s.kill()
		return fmt.Errorf("drill: sshd did not listen within %s", sshdStartTimeout)
	case <-ctx.Done():
		s.kill()
		return ctx.Err()
	}
}

// kill ends sshd's process group at once and waits for it.
func (s *sshd) kill() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// stop terminates sshd and its children (SIGTERM to the group, SIGKILL
// after sshdStopTimeout), waits for the log pump to finish and removes the
// temporary directory.
func (s *sshd) stop() {
	if s == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(sshdStopTimeout):
		s.kill()
	}
	os.RemoveAll(s.dir)
}

// writeHostKey generates an ed25519 host key in OpenSSH format at path
// (mode 0600, as sshd demands) and returns its public half.
func writeHostKey(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("drill: host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "attackmap drill")
	if err != nil {
		return nil, fmt.Errorf("drill: host key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("drill: host key: %w", err)
	}
	return ssh.NewPublicKey(pub)
}

// sparePort returns a loopback TCP port that was free a moment ago.
func sparePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("drill: finding a spare port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logPump turns sshd's stderr into auth log lines.
type logPump struct {
	w      io.Writer
	format string
	host   string
	pid    int
	tally  *tally
	log    *slog.Logger
}

// run reads lines until r ends, appends each to the log with a syslog
// prefix (one write per line, so the sensor never sees half of one) and
// records it in the tally under the address sshd wrote in it. Every message
// also goes to seen.
//
// sshd -e does not say which child wrote a line, so every line carries the
// listener's pid; the drill's connections are sequential, so a parser that
// attributes address-less lines through the pid's last connection line
// still gets them right.
func (p *logPump) run(r io.Reader, seen func(msg string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLogLine)
	var line []byte
	for sc.Scan() {
		msg := strings.TrimRight(sc.Text(), "\r")
		if msg == "" {
			continue
		}
		now := time.Now()
		line = appendSyslog(line[:0], p.format, now, p.host, "sshd", p.pid, msg)
		if _, err := p.w.Write(line); err != nil {
			p.log.Error("drill: writing auth log", "err", err)
		}
		if addr, ok := sshdLineAddr(msg); ok {
			p.tally.record(addr, classifySSHD(msg), time.Now())
		}
		seen(msg)
	}
	if err := sc.Err(); err != nil {
		p.log.Error("drill: reading sshd log", "err", err)
		// Keep draining so sshd never blocks on a full pipe.
		io.Copy(io.Discard, r)
	}
}

// appendSyslog appends one syslog file line, as rsyslog writes it, to b.
func appendSyslog(b []byte, format string, t time.Time, host, tag string, pid int, msg string) []byte {
	if format == FormatRFC3339 {
		b = t.AppendFormat(b, "2006-01-02T15:04:05.000000-07:00")
	} else {
		b = t.AppendFormat(b, "Jan _2 15:04:05")
	}
	b = append(b, ' ')
	b = append(b, host...)
	b = append(b, ' ')
	b = append(b, tag...)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, "]: "...)
	b = append(b, msg...)
	return append(b, '\n')
}

// sshdLineAddr returns the client address in an sshd message: the word
// before the last " port " ("Failed password for root from 127.10.0.1 port
// 40000 ssh2", "Connection closed by authenticating user root 127.10.0.1
// port 40000 [preauth]"). The last one, because a username can contain
// " port " but sshd writes the address after it.
func sshdLineAddr(msg string) (netip.Addr, bool) {
	i := strings.LastIndex(msg, " port ")
	if i < 0 {
		return netip.Addr{}, false
	}
	j := strings.LastIndexByte(msg[:i], ' ')
	a, err := netip.ParseAddr(msg[j+1 : i])
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// classifySSHD marks the sshd lines an attack waits for: a failed password
// ("failed") and the end of a connection before authentication ("closed").
func classifySSHD(msg string) string {
	switch {
	case strings.HasPrefix(msg, "Failed password for "):
		return "failed"
	case strings.HasSuffix(msg, "[preauth]") &&
		(strings.HasPrefix(msg, "Connection closed by ") ||
			strings.HasPrefix(msg, "Connection reset by ") ||
			strings.HasPrefix(msg, "Disconnected from ") ||
			strings.HasPrefix(msg, "Disconnecting ")):
		return "closed"
	}
	return ""
}
