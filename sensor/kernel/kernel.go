// Package kernel runs attackmap's eBPF collectors: it loads the programs of
// package bpf, attaches them to their tracepoints, reads the shared ring
// buffer and decodes each record into an event.Event (kinds exec, open,
// connect, accept, probe; source "ebpf"). A probe is a closed port answering
// a knock: a TCP reset, or (Linux 6.10+, IPv4) an ICMP port unreachable for
// a UDP datagram, with proto "udp".
//
// The daemon calls, in order:
//
//	if err := kernel.Available(); err != nil { log it in one line, run the log collectors only }
//	c, err := kernel.Start(kernel.Config{Logger: log})
//	c.Register(prometheus.DefaultRegisterer)
//	go c.Run(ctx)                  // until ctx ends; releases everything
//	for ev := range c.Net() { ... } // accept, probe, connect
//	for ev := range c.Proc() { ... } // exec, open
//
// Both channels are closed when Run returns.
//
// Events travel in two lanes: network events in one channel, process
// events (exec, open) in another, so an exec or open flood cannot starve the
// network events a port-scan detector needs. When a lane is full the reader
// waits, up to Config.NetLaneWait or Config.ProcLaneWait (DefaultLaneWait),
// for the consumer to make room; meanwhile the kernel keeps writing into
// the ring buffer, which is the burst buffer (about 100,000 network
// records), so a burst spills into the ring instead of onto the floor. Only
// a consumer that takes nothing for the whole wait loses the event (counted
// as a user-space drop). The kernel side never blocks: a record that cannot
// be reserved is counted per CPU (kernel drops), and process records may
// use only half of the ring, so they cannot starve network records there.
// Both counters are logged periodically when
// they grow and exported as Prometheus metrics.
//
// Known limits, by design of what this kernel family offers (tracepoints
// only: no kprobes, fentry or BPF LSM here):
//   - open is matched on the path string the process passed to open(2),
//     openat(2), openat2(2) or creat(2). Relative paths ("cd /etc; cat
//     shadow"), "//etc/shadow", symlinks and io_uring opens are not seen.
//     It catches the usual tools and scripts, it is not a tamper-proof audit.
//   - The comm ignore list is a noise filter: a process chooses its own comm.
//   - The sensor is recognised by its tgid as seen from the initial PID
//     namespace; run it in the host PID namespace.
package kernel

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// LaneCapacity is the capacity of each lane's channel. 1024 events cover a
// consumer stall of about 4 ms at 240,000 events/s; a longer stall makes
// the reader wait (DefaultLaneWait) while the kernel ring buffer, the
// large burst buffer, absorbs the rest. The lanes stay small so that
// memory does not grow with a burst: the ring's size is fixed.
const LaneCapacity = 1024

// DefaultLaneWait bounds how long the reader waits for room in a full
// lane before it drops the event. The ring buffer keeps filling meanwhile
// (8 MiB hold about 100,000 network records: 0.4 s of a 240,000 events/s
// storm, 1 s of 100,000/s), so a consumer paused by GC, a journal fsync or
// the scheduler loses nothing. A consumer that takes no event for a whole
// second is stuck, not slow: past the wait the event is dropped and
// counted, and each later event again waits up to a second, so in practice
// the ring fills and the loss is counted in the kernel.
const DefaultLaneWait = time.Second

// DefaultRingBufferBytes is the default size of the kernel ring buffer:
// 8 MiB. Network records take 80 bytes with their header, and they may use
// the whole ring, so it holds about 100,000 of them: a second of a
// 100,000 events/s storm while the reader is not scheduled.
const DefaultRingBufferBytes = 8 << 20

// DefaultDropLogInterval is how often grown drop counters are logged.
const DefaultDropLogInterval = time.Minute

// Capacity limits of the kernel side, mirrored from collector.bpf.c.
const (
	MaxSensitivePaths = 8  // MAX_OPEN_RULES
	maxRulePrefix     = 63 // RULE_PREFIX_MAX - 1
	maxRuleTail       = 31 // RULE_TAIL_MAX - 1
	MaxIgnoreComms    = 64 // max_entries of ignore_comms
	commLen           = 16 // TASK_COMM_LEN
)

// DefaultIgnoreComms are the package managers: an upgrade runs hundreds of
// programs (maintainer scripts), opens thousands of files and connects to
// mirrors, all of it expected. Their direct children (exec events whose
// parent has one of these comms) are ignored too.
func DefaultIgnoreComms() []string {
	return []string{"apt", "apt-get", "aptitude", "dpkg", "unattended-upgr", "packagekitd", "dnf", "yum", "rpm"}
}

// DefaultSensitivePaths are the opens worth an event: password hashes,
// sudo rules and SSH keys (authorized_keys is how intruders persist).
// /etc/passwd and /etc/ssh are left out: every login reads them.
func DefaultSensitivePaths() []string {
	return []string{"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/root/.ssh/", "/home/*/.ssh/"}
}

// Config configures Start. The zero value is the default setup.
type Config struct {
	// RingBufferBytes sizes the kernel ring buffer shared by all programs;
	// it is rounded up to a power of two of at least one page. 0 means
	// DefaultRingBufferBytes.
	RingBufferBytes int
	// IgnoreComms lists process names (comm, at most 15 bytes each, at most
	// 64) whose exec, open and connect events are dropped in the kernel.
	// nil means DefaultIgnoreComms(); an empty non-nil slice ignores none.
	IgnoreComms []string
	// SensitivePaths lists the path prefixes whose opens are reported;
	// every other open is discarded in the kernel after an 8-byte compare.
	// A path matches when it starts with the entry ("/etc/shadow" also
	// matches "/etc/shadow-"). One whole component may be "*", matching
	// any one name: "/home/*/.ssh/". At most 8 entries, absolute, the part
	// before "*" under 64 bytes and the part after it under 32. nil means
	// DefaultSensitivePaths(); an empty non-nil slice reports no opens.
	SensitivePaths []string
	// Logger receives load, drop and error logs; nil discards them.
	Logger *slog.Logger
	// DropLogInterval is how often drop counters are logged when they
	// grew. 0 means DefaultDropLogInterval.
	DropLogInterval time.Duration
	// NetLaneWait bounds the reader's wait for room in a full network lane
	// before it drops the event; the records behind it stay in the kernel
	// ring buffer meanwhile. 0 means DefaultLaneWait; a negative value
	// never waits (a full lane drops at once, the old behaviour).
	NetLaneWait time.Duration
	// ProcLaneWait is the same bound for the process lane (exec, open).
	// While the reader waits there, network records queue in the ring,
	// where process records may take only half the room, so an exec flood
	// delays network events but cannot crowd them out. 0 means
	// DefaultLaneWait; negative never waits.
	ProcLaneWait time.Duration
}

// rule is a compiled sensitive-path entry, the Go side of struct open_rule.
type rule struct {
	prefix, tail string
	wild         bool
}

// compileRules validates SensitivePaths and splits them at the wildcard.
func compileRules(paths []string) ([]rule, error) {
	if len(paths) > MaxSensitivePaths {
		return nil, fmt.Errorf("kernel: %d sensitive paths, at most %d", len(paths), MaxSensitivePaths)
	}
	rules := make([]rule, 0, len(paths))
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("kernel: sensitive path %q is not absolute", p)
		}
		if strings.IndexByte(p, 0) >= 0 {
			return nil, fmt.Errorf("kernel: sensitive path %q contains a NUL byte", p)
		}
		r := rule{prefix: p}
		if i := strings.Index(p, "*"); i >= 0 {
			r.prefix, r.tail, r.wild = p[:i], p[i+1:], true
			if !strings.HasSuffix(r.prefix, "/") || !strings.HasPrefix(r.tail, "/") {
				return nil, fmt.Errorf("kernel: sensitive path %q: \"*\" must be a whole component", p)
			}
			if strings.Contains(r.tail, "*") {
				return nil, fmt.Errorf("kernel: sensitive path %q: at most one \"*\"", p)
			}
			if len(r.tail) > maxRuleTail {
				return nil, fmt.Errorf("kernel: sensitive path %q: part after \"*\" over %d bytes", p, maxRuleTail)
			}
		}
		if len(r.prefix) > maxRulePrefix {
			return nil, fmt.Errorf("kernel: sensitive path %q: part before \"*\" over %d bytes", p, maxRulePrefix)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// head returns the rule's first (up to) 8 bytes as a little-endian word and
// the mask of its significant bytes: the kernel's cheap first test.
func (r rule) head() (head, mask uint64) {
	for i := 0; i < 8 && i < len(r.prefix); i++ {
		head |= uint64(r.prefix[i]) << (8 * i)
		mask |= 0xff << (8 * i)
	}
	return head, mask
}

// checkComms validates IgnoreComms.
func checkComms(comms []string) error {
	if len(comms) > MaxIgnoreComms {
		return fmt.Errorf("kernel: %d comms to ignore, at most %d", len(comms), MaxIgnoreComms)
	}
	for _, c := range comms {
		if c == "" || len(c) > commLen-1 || strings.IndexByte(c, 0) >= 0 {
			return fmt.Errorf("kernel: comm to ignore %q must be 1 to %d bytes without NUL", c, commLen-1)
		}
	}
	return nil
}
