//go:build ignore

// attackmap's kernel collectors. Six small programs, all on stable
// tracepoints (the kernels we target may be built without kprobes and BPF
// trampolines, so nothing here depends on them), all writing fixed-size
// records into ONE ring buffer:
//
//   exec    sched:sched_process_exec      process executions (+ argv)
//   open    syscalls:sys_enter_{open,openat,openat2,creat}
//                                         opens of sensitive paths only
//   connect sock:inet_sock_set_state      CLOSE -> SYN_SENT (outbound TCP)
//   accept  sock:inet_sock_set_state      SYN_RECV -> ESTABLISHED (inbound TCP)
//   probe   tcp:tcp_send_reset            RST for a closed TCP port (a knock)
//   probe   icmp:icmp_send                port unreachable for a closed UDP
//                                         port (optional: Linux 6.10+)
//
// Kernel-side drops (a record that could not be reserved) are counted per CPU
// in `drops`. Process events (exec/open) may only use the first half of the
// ring: when more than half of it is unread they are shed (and counted), so
// an exec/open flood can never take the room that network events need.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000

#define TASK_COMM_LEN 16
#define PATH_MAX_REC 256   // bytes of a path kept in a record (power of two)
#define ARGS_MAX_REC 1024  // bytes of the NUL-separated argv kept (power of two)
#define MAX_OPEN_RULES 8   // sensitive-path rules, small so the scan is cheap
#define RULE_PREFIX_MAX 64 // bytes of a rule's literal prefix
#define RULE_TAIL_MAX 32   // bytes of a rule's literal tail after a '*' component

// Record kinds, the byte at offset 8 of every record.
enum ev_kind {
	EV_EXEC = 1,
	EV_OPEN = 2,
	EV_CONNECT = 3,
	EV_ACCEPT = 4,
	EV_PROBE = 5,
};

// Record flags.
#define FLAG_ARGS_TRUNCATED 1 // exec: argv was longer than ARGS_MAX_REC
#define FLAG_WRITE 2          // open: opened for writing, creating or truncating

// Indexes of the drops counter map.
enum drop_reason {
	DROP_NET_FULL = 0,  // network record: ring buffer full
	DROP_PROC_FULL = 1, // exec/open record: ring buffer full
	DROP_PROC_SHED = 2, // exec/open record: shed to keep room for network records
	DROP_MAX = 3,
};

// A network record (connect, accept, probe). 72 bytes.
struct net_event {
	__u64 ts_ns;    // CLOCK_BOOTTIME nanoseconds (bpf_ktime_get_boot_ns)
	__u8 kind;      // EV_CONNECT, EV_ACCEPT or EV_PROBE
	__u8 ipver;     // 4 or 6: which bytes of laddr/raddr are valid
	__u16 lport;    // local port, host byte order
	__u16 rport;    // remote port, host byte order
	__u8 proto;     // IPPROTO_TCP or IPPROTO_UDP (a UDP probe)
	__u8 _pad;      // explicit padding, always zero
	__u32 pid;      // tgid of the connecting process; 0 for accept/probe (softirq context)
	__u32 uid;      // real uid of the connecting process; 0 for accept/probe
	__u8 laddr[16]; // local address: 4 bytes for IPv4, 16 for IPv6
	__u8 raddr[16]; // remote address: 4 bytes for IPv4, 16 for IPv6
	char comm[16];  // comm of the connecting process; empty for accept/probe
};

// An exec record. 1336 bytes.
struct exec_event {
	__u64 ts_ns;              // CLOCK_BOOTTIME nanoseconds
	__u8 kind;                // EV_EXEC
	__u8 flags;               // FLAG_ARGS_TRUNCATED
	__u16 args_len;           // bytes of args used
	__u32 pid;                // tgid of the new program
	__u32 ppid;               // tgid of the real parent
	__u32 uid;                // real uid
	char comm[16];            // comm of the new program
	char pcomm[16];           // comm of the parent
	char path[PATH_MAX_REC];  // file name as passed to execve, NUL-terminated
	char args[ARGS_MAX_REC];  // argv strings, each NUL-terminated, back to back
};

// An open record. 296 bytes.
struct open_event {
	__u64 ts_ns;             // CLOCK_BOOTTIME nanoseconds
	__u8 kind;               // EV_OPEN
	__u8 flags;              // FLAG_WRITE
	__u16 _pad;              // explicit padding, always zero
	__u32 pid;               // tgid of the opening process
	__u32 tid;               // thread id of the opening thread
	__u32 uid;               // real uid
	char comm[16];           // comm of the opening process
	char path[PATH_MAX_REC]; // path as passed to open, NUL-terminated (bytes after the NUL are undefined)
};

// A sensitive-path rule: the literal `prefix`; when `wild` is set, the prefix
// is followed by exactly one path component of any name and then `tail`
// ("/home/" + "*" + "/.ssh/"). A path matches when it starts with the whole
// pattern. `head`/`head_mask` are the prefix's first (up to) 8 bytes as a
// little-endian word: the cheap first test every open() pays.
struct open_rule {
	__u64 head;                  // first 8 bytes of prefix, zero padded
	__u64 head_mask;             // 0xff for each significant byte of head
	__u8 len;                    // bytes of prefix (1..RULE_PREFIX_MAX-1)
	__u8 wild;                   // 1: one wildcard component, then tail
	__u8 tail_len;               // bytes of tail (0..RULE_TAIL_MAX-1)
	__u8 _pad[5];                // explicit padding, always zero
	char prefix[RULE_PREFIX_MAX]; // literal prefix
	char tail[RULE_TAIL_MAX];     // literal tail after the wildcard component
};

// Set by the loader before load (read-only afterwards, so the verifier
// treats them as constants and prunes unused rule slots).
const volatile __u32 self_tgid = 0;                          // the sensor's own process: never reported
const volatile __u32 n_open_rules = 0;                       // used slots of open_rules
const volatile struct open_rule open_rules[MAX_OPEN_RULES] = {}; // sensitive-path rules

// Keep the record types in BTF so that bpf2go -type can emit Go types for
// them (the bpf2go examples' idiom).
const struct net_event *unused_net_event __attribute__((unused));
const struct exec_event *unused_exec_event __attribute__((unused));
const struct open_event *unused_open_event __attribute__((unused));

// The one ring buffer. The loader sets max_entries from the config.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} events SEC(".maps");

// Records that could not be written, by drop_reason, per CPU so that
// counting never contends between CPUs.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// comms whose process events (exec, open, connect) are ignored: package
// managers. Key: the comm, NUL padded to 16 bytes. Filled by the loader;
// may be updated at run time.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, __u8);
} ignore_comms SEC(".maps");

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);
	if (n)
		*n += 1;
}

static __always_inline bool is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

static __always_inline bool comm_ignored(const char comm[TASK_COMM_LEN])
{
	return bpf_map_lookup_elem(&ignore_comms, comm) != NULL;
}

// proc_room reports whether an exec/open record may be written: only while
// less than half of the ring is unread, so the other half stays free for
// network records whatever the process activity.
static __always_inline bool proc_room(void)
{
	__u64 unread = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	if (unread < size / 2)
		return true;
	count_drop(DROP_PROC_SHED);
	return false;
}

// ---------------------------------------------------------------- exec

SEC("tracepoint/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	if (is_self())
		return 0;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	char comm[TASK_COMM_LEN] = {};
	char pcomm[TASK_COMM_LEN] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	BPF_CORE_READ_STR_INTO(&pcomm, parent, comm);
	// The parent too, so that the children of dpkg (maintainer scripts)
	// are quiet as well.
	if (comm_ignored(comm) || comm_ignored(pcomm))
		return 0;
	if (!proc_room())
		return 0;

	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_PROC_FULL);
		return 0;
	}
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->kind = EV_EXEC;
	e->flags = 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	__builtin_memcpy(e->comm, comm, sizeof(comm));
	__builtin_memcpy(e->pcomm, pcomm, sizeof(pcomm));

	unsigned int off = ctx->__data_loc_filename & 0xFFFF;
	if (bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx + off) < 0)
		e->path[0] = 0;

	// The new program's argv, straight from its stack: NUL-separated
	// strings between mm->arg_start and mm->arg_end.
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long start = BPF_CORE_READ(mm, arg_start);
	unsigned long end = BPF_CORE_READ(mm, arg_end);
	unsigned long n = end > start ? end - start : 0;
	if (n > ARGS_MAX_REC - 1) {
		n = ARGS_MAX_REC - 1;
		e->flags |= FLAG_ARGS_TRUNCATED;
	}
	n &= ARGS_MAX_REC - 1;
	if (bpf_probe_read_user(e->args, n, (void *)start) < 0)
		n = 0;
	e->args_len = n;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

// ---------------------------------------------------------------- open

// rule_matches checks a whole NUL-terminated path against rule r. All
// indexes are masked to the buffer so the verifier can see they are in
// bounds; no byte after the path's NUL is ever compared.
static __always_inline bool rule_matches(const volatile struct open_rule *r, const char *p)
{
	__u32 len = r->len;
	for (__u32 i = 0; i < RULE_PREFIX_MAX; i++) {
		if (i >= len)
			break;
		if (p[i & (PATH_MAX_REC - 1)] != r->prefix[i])
			return false;
	}
	if (!r->wild)
		return true;
	// One non-empty component, then the tail (which starts with '/').
	char c = p[len & (PATH_MAX_REC - 1)];
	if (c == 0 || c == '/')
		return false;
	__u32 j = 0;
	for (__u32 k = 1; k < RULE_PREFIX_MAX; k++) {
		c = p[(len + k) & (PATH_MAX_REC - 1)];
		if (c == 0)
			return false;
		if (c == '/') {
			j = len + k;
			break;
		}
	}
	if (j == 0)
		return false;
	__u32 tail_len = r->tail_len;
	for (__u32 t = 0; t < RULE_TAIL_MAX; t++) {
		if (t >= tail_len)
			break;
		if (p[(j + t) & (PATH_MAX_REC - 1)] != r->tail[t])
			return false;
	}
	return true;
}

// Scratch space for an open record while its path is checked, so that a
// path that only shares its first bytes with a rule never touches the ring
// buffer (whose reservation takes a lock shared by all CPUs).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct open_event);
} open_scratch SEC(".maps");

// do_open is the common body of the open programs. The first test reads
// only 8 bytes of the path and compares them, masked, with each rule's head:
// for an open() of any other path that is the whole cost.
static __always_inline int do_open(const char *fname, bool write, const void *how)
{
	__u64 head = 0;
	if (bpf_probe_read_user(&head, sizeof(head), fname) < 0) {
		// The string may end just before an unmapped page.
		head = 0;
		if (bpf_probe_read_user_str(&head, sizeof(head), fname) <= 0)
			return 0;
	}
	bool cand = false;
	for (__u32 i = 0; i < MAX_OPEN_RULES; i++) {
		if (i >= n_open_rules)
			break;
		if ((head & open_rules[i].head_mask) == open_rules[i].head) {
			cand = true;
			break;
		}
	}
	if (!cand || is_self())
		return 0;

	__u32 zero = 0;
	struct open_event *e = bpf_map_lookup_elem(&open_scratch, &zero);
	if (!e)
		return 0;
	if (bpf_probe_read_user_str(e->path, sizeof(e->path), fname) <= 0)
		return 0;
	bool match = false;
	for (__u32 i = 0; i < MAX_OPEN_RULES; i++) {
		if (i >= n_open_rules)
			break;
		if (rule_matches(&open_rules[i], e->path)) {
			match = true;
			break;
		}
	}
	if (!match)
		return 0; // same first bytes, another path: not a drop

	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (comm_ignored(e->comm))
		return 0;
	if (!proc_room())
		return 0;
	if (how) {
		// openat2: flags are the first field of the user's struct open_how.
		__u64 flags = 0;
		bpf_probe_read_user(&flags, sizeof(flags), how);
		write = flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC);
	}
	__u64 id = bpf_get_current_pid_tgid();
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->kind = EV_OPEN;
	e->flags = write ? FLAG_WRITE : 0;
	e->_pad = 0;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	if (bpf_ringbuf_output(&events, e, sizeof(*e), 0) < 0)
		count_drop(DROP_PROC_FULL);
	return 0;
}

static __always_inline bool write_flags(unsigned long flags)
{
	return flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int handle_openat(struct trace_event_raw_sys_enter *ctx)
{
	return do_open((const char *)ctx->args[1], write_flags(ctx->args[2]), NULL);
}

SEC("tracepoint/syscalls/sys_enter_open")
int handle_open(struct trace_event_raw_sys_enter *ctx)
{
	return do_open((const char *)ctx->args[0], write_flags(ctx->args[1]), NULL);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int handle_creat(struct trace_event_raw_sys_enter *ctx)
{
	return do_open((const char *)ctx->args[0], true, NULL);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int handle_openat2(struct trace_event_raw_sys_enter *ctx)
{
	return do_open((const char *)ctx->args[1], false, (const void *)ctx->args[2]);
}

// ---------------------------------------------------------------- network

SEC("tracepoint/sock/inet_sock_set_state")
int handle_sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	int from = ctx->oldstate, to = ctx->newstate;
	__u8 kind;
	if (from == TCP_SYN_RECV && to == TCP_ESTABLISHED)
		kind = EV_ACCEPT; // passive open completed (softirq: no process)
	else if (from == TCP_CLOSE && to == TCP_SYN_SENT)
		kind = EV_CONNECT; // active open, in the connecting process
	else
		return 0;

	char comm[TASK_COMM_LEN] = {};
	if (kind == EV_CONNECT) {
		if (is_self())
			return 0;
		bpf_get_current_comm(comm, sizeof(comm));
		if (comm_ignored(comm))
			return 0;
	}

	struct net_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_NET_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->kind = kind;
	e->proto = IPPROTO_TCP;
	// sport/dport are the socket's local/remote ports in host order.
	e->lport = ctx->sport;
	e->rport = ctx->dport;
	// The addresses are copied with a helper: the verifier allows only
	// constant-offset loads from the tracepoint context itself.
	if (ctx->family == AF_INET) {
		e->ipver = 4;
		bpf_probe_read_kernel(e->laddr, 4, ctx->saddr);
		bpf_probe_read_kernel(e->raddr, 4, ctx->daddr);
	} else {
		e->ipver = 6;
		bpf_probe_read_kernel(e->laddr, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(e->raddr, 16, ctx->daddr_v6);
	}
	if (kind == EV_CONNECT) {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		e->uid = (__u32)bpf_get_current_uid_gid();
		__builtin_memcpy(e->comm, comm, sizeof(comm));
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

// sockaddr_port reads the port (network order in the sockaddr) of a
// sockaddr_in/sockaddr_in6 copy.
static __always_inline __u16 sockaddr_port(const __u8 *sa)
{
	return ((__u16)sa[2] << 8) | sa[3];
}

SEC("tracepoint/tcp/tcp_send_reset")
int handle_send_reset(struct trace_event_raw_tcp_send_reset *ctx)
{
	// A reset for a segment that found no socket: a closed port. Kernels
	// before 6.10 have no reason field; there a missing socket means the same.
	if (bpf_core_field_exists(ctx->reason)) {
		if (ctx->reason != bpf_core_enum_value(enum sk_rst_reason, SK_RST_REASON_NO_SOCKET))
			return 0;
	} else if (ctx->skaddr) {
		return 0;
	}

	// With no socket the tracepoint stores the incoming segment's tuple
	// reversed, as the reset flows: saddr is ours (the knocked address and
	// port), daddr is the knocker's. Both are sockaddr_in or sockaddr_in6;
	// copy them out, as the verifier allows only constant-offset loads
	// from the tracepoint context itself.
	__u8 sa[28], da[28];
	if (bpf_probe_read_kernel(sa, sizeof(sa), ctx->saddr) < 0 ||
	    bpf_probe_read_kernel(da, sizeof(da), ctx->daddr) < 0)
		return 0;
	__u16 family = *(__u16 *)sa;
	if (family != AF_INET && family != AF_INET6)
		return 0;

	struct net_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_NET_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->kind = EV_PROBE;
	e->proto = IPPROTO_TCP;
	e->lport = sockaddr_port(sa);
	e->rport = sockaddr_port(da);
	if (family == AF_INET) {
		e->ipver = 4;
		__builtin_memcpy(e->laddr, &sa[4], 4); // sin_addr
		__builtin_memcpy(e->raddr, &da[4], 4);
	} else {
		e->ipver = 6;
		__builtin_memcpy(e->laddr, &sa[8], 16); // sin6_addr
		__builtin_memcpy(e->raddr, &da[8], 16);
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

// ICMP type and code of "port unreachable" (RFC 792).
#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3

// handle_icmp_send turns the port-unreachable reply to a UDP datagram for a
// closed port into a probe record: the UDP twin of handle_send_reset. The
// tracepoint fires in __icmp_send just before the reply is queued, after
// the ICMP rate limits, so a reply the kernel suppressed is not seen.
// Protocol unreachable (code 2, an IP protocol scan) is left out: its
// record would carry a protocol number, not a port.
SEC("tracepoint/icmp/icmp_send")
int handle_icmp_send(struct trace_event_raw_icmp_send *ctx)
{
	// On a kernel without this tracepoint the type is missing from its
	// BTF and the CO-RE reads below cannot be relocated: this check is
	// then a constant false, and the verifier drops the rest as dead code,
	// so the object still loads (the loader skips attaching it).
	if (!bpf_core_type_exists(struct trace_event_raw_icmp_send))
		return 0;
	if (ctx->type != ICMP_DEST_UNREACH || ctx->code != ICMP_PORT_UNREACH)
		return 0;
	// The fields describe the offending datagram: saddr is the prober,
	// daddr the probed address (ours), dport the probed port. The ports
	// and ulen are set only when that datagram was UDP with its header in
	// the packet; a UDP datagram the kernel answers has ulen >= 8, so a
	// zero ulen means UDP-Lite or a reject of another protocol (e.g. a
	// firewall's icmp-port-unreachable for a TCP SYN): no port to report.
	if (ctx->ulen == 0)
		return 0;

	struct net_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_NET_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->kind = EV_PROBE;
	e->proto = IPPROTO_UDP;
	e->ipver = 4;
	e->lport = ctx->dport; // host byte order in the tracepoint
	e->rport = ctx->sport;
	bpf_probe_read_kernel(e->laddr, 4, ctx->daddr);
	bpf_probe_read_kernel(e->raddr, 4, ctx->saddr);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
