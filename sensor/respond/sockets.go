package respond

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// procSessions finds SSH sessions in the kernel's socket tables
// (/proc/net/tcp and tcp6 under root, normally "/proc").
//
// A peer holds a session when it has an ESTABLISHED TCP connection to one
// of the SSH ports (the configured ones plus every port an sshd process
// listens on). One refinement keeps the rule from shielding the very
// attacker it should stop: a connection that OpenSSH itself shows as not
// yet authenticated (its only owners are sshd processes whose titles read
// "sshd: unknown [priv]", "[net]", "[preauth]", never "user@tty") is a
// login attempt, not a session. Anything else, including a connection held
// by another SSH server or by a process this sensor cannot read, counts as
// a session: not knowing is not permission.
type procSessions struct {
	root  string // "/proc"
	ports []int  // configured

	mu     sync.Mutex
	listen map[int]bool // sshd's own listening ports, from refresh
}

func newProcSessions(root string, ports []int) *procSessions {
	return &procSessions{root: root, ports: ports, listen: map[int]bool{}}
}

// tcpStates in /proc/net/tcp (include/net/tcp_states.h).
const (
	tcpEstablished = 0x01
	tcpListen      = 0x0A
)

// sockLine is one row of /proc/net/tcp{,6}.
type sockLine struct {
	local, remote netip.AddrPort
	state         int
	inode         uint64
}

// readSockets parses /proc/net/tcp and /proc/net/tcp6 and calls fn for
// every row. A missing tcp6 (IPv6 disabled) is not an error.
func (p *procSessions) readSockets(fn func(sockLine)) error {
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(p.root, "net", name))
		if err != nil {
			if name == "tcp6" && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		err = parseSockets(f, fn)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// parseSockets reads the rows of one /proc/net/tcp{,6} file. Malformed
// rows are skipped: the format is the kernel's, and a row it changed must
// not hide the rows that follow.
func parseSockets(r io.Reader, fn func(sockLine)) error {
	sc := bufio.NewScanner(r)
	// A row is ~150 bytes; 64 KiB leaves room for any future columns.
	sc.Buffer(make([]byte, 4096), 64<<10)
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		local, ok1 := parseHexAddrPort(f[1])
		remote, ok2 := parseHexAddrPort(f[2])
		st, err1 := strconv.ParseUint(f[3], 16, 8)
		inode, err2 := strconv.ParseUint(f[9], 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			continue
		}
		fn(sockLine{local: local, remote: remote, state: int(st), inode: inode})
	}
	return sc.Err()
}

// parseHexAddrPort reads "0100007F:0016": the address as the kernel's
// 32-bit words printed in host byte order (little endian on every machine
// this sensor runs on), the port big-endian.
func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(s[:i])
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(s[i+1:], 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	// Each 32-bit word was printed as a little-endian number: reverse the
	// bytes within each word to get network order.
	var b [16]byte
	for w := 0; w < len(raw); w += 4 {
		binary.BigEndian.PutUint32(b[w:], binary.LittleEndian.Uint32(raw[w:]))
	}
	var a netip.Addr
	if len(raw) == 4 {
		a = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		a = netip.AddrFrom16(b).Unmap()
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}

func (p *procSessions) isSSHPort(port uint16) bool {
	for _, q := range p.ports {
		if int(port) == q {
			return true
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.listen[int(port)]
}

// hasSession implements sessionFinder.
func (p *procSessions) hasSession(addr netip.Addr) (bool, error) {
	addr = addr.Unmap().WithZone("")
	inodes := map[uint64]bool{}
	err := p.readSockets(func(s sockLine) {
		if s.state == tcpEstablished && s.remote.Addr() == addr && p.isSSHPort(s.local.Port()) {
			inodes[s.inode] = true
		}
	})
	if err != nil || len(inodes) == 0 {
		return false, err
	}
	owners := p.sshdOwners(inodes)
	for ino := range inodes {
		titles, ok := owners[ino]
		if !ok {
			// Not held by OpenSSH (another SSH server, or a process we
			// cannot read): a session.
			return true, nil
		}
		for _, t := range titles {
			if authenticatedTitle(t) {
				return true, nil
			}
		}
	}
	return false, nil
}

// sshdOwners maps each inode held by an sshd process to the titles of its
// holders. Only processes whose comm is sshd, sshd-session or sshd-auth are
// read, so the scan costs one small read per process plus the fds of the
// few sshd processes.
func (p *procSessions) sshdOwners(inodes map[uint64]bool) map[uint64][]string {
	out := map[uint64][]string{}
	p.eachSSHD(func(pid string, title string, ino uint64) {
		if inodes == nil || inodes[ino] {
			out[ino] = append(out[ino], title)
		}
	})
	return out
}

// eachSSHD calls fn for every socket inode an sshd-family process holds.
func (p *procSessions) eachSSHD(fn func(pid, title string, ino uint64)) {
	ents, err := os.ReadDir(p.root)
	if err != nil {
		return
	}
	for _, e := range ents {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(p.root, pid, "comm"))
		if err != nil {
			continue
		}
		switch string(bytes.TrimSpace(comm)) {
		case "sshd", "sshd-session", "sshd-auth":
		default:
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(p.root, pid, "cmdline"))
		title := string(bytes.TrimRight(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}), " "))
		fds, err := os.ReadDir(filepath.Join(p.root, pid, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(p.root, pid, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") || !strings.HasSuffix(link, "]") {
				continue
			}
			if ino, err := strconv.ParseUint(link[len("socket:["):len(link)-1], 10, 64); err == nil {
				fn(pid, title, ino)
			}
		}
	}
}

// authenticatedTitle reports whether an sshd process title is that of an
// authenticated session. OpenSSH names a session's process "sshd: USER@TTY"
// or "sshd: USER@notty" (since 9.8 "sshd-session: USER@..."), and a
// connection before authentication "sshd: USER [priv]", "sshd: unknown
// [net]" or "[preauth]"; the listener is "sshd: /usr/sbin/sshd -D
// [listener] ...".
func authenticatedTitle(t string) bool {
	i := strings.Index(t, ": ")
	if i < 0 {
		return false
	}
	name := t[:i]
	if name != "sshd" && name != "sshd-session" {
		return false
	}
	user, _, _ := strings.Cut(t[i+2:], " ")
	return strings.Contains(user, "@")
}

// refresh learns the ports sshd listens on.
func (p *procSessions) refresh() {
	listening := map[uint64]int{}
	if err := p.readSockets(func(s sockLine) {
		if s.state == tcpListen {
			listening[s.inode] = int(s.local.Port())
		}
	}); err != nil {
		return
	}
	ports := map[int]bool{}
	p.eachSSHD(func(_, _ string, ino uint64) {
		if port, ok := listening[ino]; ok {
			ports[port] = true
		}
	})
	p.mu.Lock()
	p.listen = ports
	p.mu.Unlock()
}
