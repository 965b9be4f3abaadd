//go:build ignore

// attackmap's XDP block list: one XDP program that drops every packet whose
// source address is in an IPv4 or IPv6 LPM trie, before the kernel allocates
// anything for it. The sensor's responder (sensor/respond, backend "xdp")
// owns the tries: it adds an address with an expiry time and sweeps expired
// entries every second. The program also checks the expiry itself, so an
// entry stops dropping the moment it expires even if the sweeper is late or
// gone.
//
// Parsed: Ethernet, up to two VLAN tags (802.1Q / 802.1ad), then IPv4 or
// IPv6. Only the source address is read (it sits in the fixed header, so
// IPv4 options, fragments and IPv6 extension headers change nothing).
// Everything else (ARP, LLDP, truncated frames) passes.
//
// Drops are counted per CPU in `am_xdp_stats` (per address family, packets
// and bytes) and per entry in the trie value (`hits`).

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define MAX_VLAN_TAGS 2 // QinQ at most: deeper stacks are not seen in practice

// The tries must not preallocate (LPM tries require BPF_F_NO_PREALLOC).
#define BPF_F_NO_PREALLOC_FLAG 1

// Default size of each trie; the loader sets the configured cap. Memory is
// allocated per entry, so a large bound costs nothing until it is used.
#define DEFAULT_MAX_ENTRIES 262144

// Indexes of the am_xdp_stats counters.
enum stat_index {
	STAT_DROP_V4 = 0, // IPv4 packets dropped
	STAT_DROP_V6 = 1, // IPv6 packets dropped
	STAT_EXPIRED = 2, // packets that matched an expired entry and passed
	STAT_MAX = 3,
};

// Key of the IPv4 trie. A single address is prefixlen 32.
struct key_v4 {
	__u32 prefixlen; // number of leading bits of addr that match (0..32)
	__u8 addr[4];    // IPv4 address, network byte order
};

// Key of the IPv6 trie. A single address is prefixlen 128.
struct key_v6 {
	__u32 prefixlen; // number of leading bits of addr that match (0..128)
	__u8 addr[16];   // IPv6 address, network byte order
};

// Value of both tries.
struct block_value {
	__u64 expires_ns; // CLOCK_BOOTTIME ns (bpf_ktime_get_boot_ns) when the block ends; 0: never
	__u64 hits;       // packets dropped by this entry since it was (re)written
};

// One counter of am_xdp_stats (one copy per CPU).
struct xdp_stat {
	__u64 packets; // packets counted on this CPU
	__u64 bytes;   // their bytes, from the Ethernet header on
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, DEFAULT_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC_FLAG);
	__type(key, struct key_v4);
	__type(value, struct block_value);
} am_block_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, DEFAULT_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC_FLAG);
	__type(key, struct key_v6);
	__type(value, struct block_value);
} am_block_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, struct xdp_stat);
} am_xdp_stats SEC(".maps");

static __always_inline void count(__u32 idx, __u64 bytes)
{
	struct xdp_stat *s = bpf_map_lookup_elem(&am_xdp_stats, &idx);
	if (s) {
		s->packets++; // per-CPU: no other CPU writes this copy
		s->bytes += bytes;
	}
}

// verdict decides for a trie match v: drop while the entry is live.
static __always_inline int verdict(struct block_value *v, __u32 stat, __u64 bytes)
{
	if (!v)
		return XDP_PASS;
	if (v->expires_ns && bpf_ktime_get_boot_ns() >= v->expires_ns) {
		count(STAT_EXPIRED, bytes);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&v->hits, 1); // shared by all CPUs
	count(stat, bytes);
	return XDP_DROP;
}

SEC("xdp")
int attackmap_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	__u16 proto = eth->h_proto;
	void *cur = eth + 1;

#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr *vh = cur;
		if ((void *)(vh + 1) > data_end)
			return XDP_PASS;
		proto = vh->h_vlan_encapsulated_proto;
		cur = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cur;
		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		struct key_v4 k = {.prefixlen = 32};
		__builtin_memcpy(k.addr, &ip->saddr, sizeof(k.addr));
		return verdict(bpf_map_lookup_elem(&am_block_v4, &k), STAT_DROP_V4, bytes);
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cur;
		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		struct key_v6 k = {.prefixlen = 128};
		__builtin_memcpy(k.addr, &ip6->saddr, sizeof(k.addr));
		return verdict(bpf_map_lookup_elem(&am_block_v6, &k), STAT_DROP_V6, bytes);
	}
	return XDP_PASS;
}
