// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Traffic per cgroup, for bamel's node agent (bpf/agent.ts).
 *
 * One cgroup_skb program pair attached once at the cgroup v2 root sees every packet
 * delivered to or sent by a socket on the node; bpf_skb_cgroup_id() says which cgroup
 * (which container, hence which pod) the socket belongs to. Ingress counts packets, bytes,
 * TCP SYNs, HTTP/1.x request lines and HTTP/2 requests (HEADERS frames on client streams);
 * egress counts packets and bytes. Counters are per CPU in a bounded hash (not LRU: an
 * eviction under churn would silently undercount a live pod); the cgroup_rmdir raw
 * tracepoint removes a cgroup's entry when the cgroup goes.
 *
 * Both cgroup_skb programs return 1: they observe, they never drop.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "traffic.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10
#define H2_FRAME_HEADER 9
#define H2_PREFACE_LEN 24
#define H2_TYPE_HEADERS 0x1
/* HTTP/2 frames looked at per packet; beyond that the flow's frame boundaries are lost. */
#define H2_MAX_FRAMES 96

/* Tunables, set by the loader before the object is loaded. */
const volatile __u8 parse_l7 = 1;            /* 0: packets, bytes and SYNs only */
const volatile __s32 cgroup2_hierarchy = 0;  /* the v2 hierarchy's id (0 on Linux) */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* cgroup id */
	__type(value, struct traffic_counters);
} counters SEC(".maps");

struct flow_state {
	__u32 next_seq;  /* the sequence number the next new payload byte carries */
	__u32 skip;      /* HTTP/2: bytes of the current frame still to come */
	__u8 proto;      /* enum flow_proto */
	__u8 hdr_have;   /* HTTP/2: bytes of a frame header split across packets */
	__u8 hdr[16];    /* H2_FRAME_HEADER used; indexes are masked with 15 for the verifier */
	__u8 started;    /* 0 in a slot just created: next_seq is not known yet */
	__u8 pad[5];
};

/*
 * A flow's state lives in its receiving socket's local storage: found with one pointer
 * walk (no hash of a 4-tuple per packet), gone when the socket goes (no FIN/RST
 * bookkeeping, no eviction under churn), and a new connection is a new socket.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct flow_state);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OVERFLOW_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} overflow SEC(".maps");

static __always_inline void note_overflow(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&overflow, &slot);
	if (v)
		*v += 1;
}

static __always_inline struct traffic_counters *counters_of(__u64 cgroup)
{
	struct traffic_counters *c = bpf_map_lookup_elem(&counters, &cgroup);
	if (c)
		return c;
	struct traffic_counters zero = {};
	/* EEXIST: another CPU created it meanwhile; the lookup below finds it. */
	bpf_map_update_elem(&counters, &cgroup, &zero, BPF_NOEXIST);
	c = bpf_map_lookup_elem(&counters, &cgroup);
	if (!c)
		note_overflow(OVERFLOW_COUNTERS_FULL);
	return c;
}

struct tcp_segment {
	__u32 seq;
	__u32 payload_off; /* from the IP header */
	__u32 payload_len;
	__u8 flags;
};

/* IPv4 or IPv6 (without extension headers) carrying TCP; 0 when it is something else. */
static __always_inline int parse_tcp(struct __sk_buff *skb, struct tcp_segment *seg)
{
	__u32 l4_off;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 0;
		if (ip.protocol != IPPROTO_TCP || ip.ihl < 5)
			return 0;
		/* A fragment has no TCP header of its own (or only part of one). */
		if (ip.frag_off & bpf_htons(0x3fff))
			return 0;
		l4_off = ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		/* Version, class and flow label (4), payload length (2), next header (1), hop limit (1). */
		__u8 fixed[8];
		if (bpf_skb_load_bytes(skb, 0, fixed, sizeof(fixed)))
			return 0;
		if (fixed[6] != IPPROTO_TCP)
			return 0;
		l4_off = sizeof(struct ipv6hdr);
	} else {
		return 0;
	}

	struct tcphdr tcp;
	if (bpf_skb_load_bytes(skb, l4_off, &tcp, sizeof(tcp)))
		return 0;
	if (tcp.doff < 5)
		return 0;
	seg->seq = bpf_ntohl(tcp.seq);
	seg->flags = ((__u8 *)&tcp)[13];
	seg->payload_off = l4_off + tcp.doff * 4;
	seg->payload_len = skb->len > seg->payload_off ? skb->len - seg->payload_off : 0;
	return 1;
}

/* An HTTP/1.x request line starts with a method and a space. */
static __always_inline int is_http1_request(const __u8 *b)
{
	switch (b[0]) {
	case 'G':
		return b[1] == 'E' && b[2] == 'T' && b[3] == ' ';
	case 'P':
		if (b[1] == 'U' && b[2] == 'T' && b[3] == ' ')
			return 1;
		if (b[1] == 'O' && b[2] == 'S' && b[3] == 'T' && b[4] == ' ')
			return 1;
		if (b[1] == 'A' && b[2] == 'T' && b[3] == 'C' && b[4] == 'H' && b[5] == ' ')
			return 1;
		return 0;
	case 'H':
		return b[1] == 'E' && b[2] == 'A' && b[3] == 'D' && b[4] == ' ';
	case 'D':
		return b[1] == 'E' && b[2] == 'L' && b[3] == 'E' && b[4] == 'T' && b[5] == 'E' && b[6] == ' ';
	case 'O':
		return b[1] == 'P' && b[2] == 'T' && b[3] == 'I' && b[4] == 'O' && b[5] == 'N' && b[6] == 'S' && b[7] == ' ';
	case 'C':
		return b[1] == 'O' && b[2] == 'N' && b[3] == 'N' && b[4] == 'E' && b[5] == 'C' && b[6] == 'T' && b[7] == ' ';
	case 'T':
		return b[1] == 'R' && b[2] == 'A' && b[3] == 'C' && b[4] == 'E' && b[5] == ' ';
	}
	return 0;
}

/* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", the client connection preface (RFC 9113 §3.4). */
static __always_inline int is_h2_preface(const __u8 *b)
{
	return b[0] == 'P' && b[1] == 'R' && b[2] == 'I' && b[3] == ' ' && b[4] == '*' && b[5] == ' ' &&
	       b[6] == 'H' && b[7] == 'T' && b[8] == 'T' && b[9] == 'P' && b[10] == '/' && b[11] == '2' &&
	       b[12] == '.' && b[13] == '0' && b[14] == '\r' && b[15] == '\n';
}

/* One complete frame header: a HEADERS frame on an odd (client-initiated) stream is a request. */
static __always_inline __u32 h2_frame(const __u8 *h, struct traffic_counters *c)
{
	__u32 len = ((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2];
	__u32 stream = (((__u32)h[5] & 0x7f) << 24) | ((__u32)h[6] << 16) | ((__u32)h[7] << 8) | h[8];
	if (h[3] == H2_TYPE_HEADERS && (stream & 1))
		c->http2_requests += 1;
	return len;
}

/*
 * Walks the HTTP/2 frames of one in-order payload. st->skip carries the rest of a frame
 * that continues past the packet; st->hdr keeps the first bytes of a frame header that
 * was cut by the packet boundary.
 */
static __always_inline void h2_walk(struct __sk_buff *skb, struct flow_state *st, __u32 base, __u32 len,
				    struct traffic_counters *c)
{
	__u32 off = 0;

	/* The end of a frame header begun in an earlier packet. */
	if (st->hdr_have > 0 && st->hdr_have < H2_FRAME_HEADER) {
		for (int i = 0; i < H2_FRAME_HEADER; i++) {
			__u8 have = st->hdr_have;
			if (have >= H2_FRAME_HEADER || off >= len)
				break;
			__u8 b;
			if (bpf_skb_load_bytes(skb, base + off, &b, 1))
				return;
			st->hdr[have & 15] = b;
			st->hdr_have = have + 1;
			off++;
		}
		if (st->hdr_have < H2_FRAME_HEADER)
			return;
		st->hdr_have = 0;
		st->skip = h2_frame(st->hdr, c);
	}

	if (st->skip >= len - off) {
		st->skip -= len - off;
		return;
	}
	off += st->skip;
	st->skip = 0;

	for (int i = 0; i < H2_MAX_FRAMES; i++) {
		if (off >= len)
			return;
		__u32 left = len - off;
		if (left < H2_FRAME_HEADER) {
			/* The header is cut: keep its first bytes for the next packet. */
			for (int j = 0; j < H2_FRAME_HEADER - 1; j++) {
				if ((__u32)j >= left)
					break;
				__u8 b;
				if (bpf_skb_load_bytes(skb, base + off + j, &b, 1))
					return;
				st->hdr[j & 15] = b;
				st->hdr_have = j + 1;
			}
			return;
		}
		__u8 h[H2_FRAME_HEADER];
		if (bpf_skb_load_bytes(skb, base + off, h, sizeof(h)))
			return;
		__u32 flen = h2_frame(h, c);
		off += H2_FRAME_HEADER;
		if (flen >= len - off) {
			st->skip = flen - (len - off);
			return;
		}
		off += flen;
	}
	/* More frames in one packet than we look at: where the next frame starts is lost. */
	note_overflow(OVERFLOW_H2_RESYNC);
	st->proto = FLOW_OTHER;
}

/* st: the socket's flow state when it has one already (NULL: created here). */
static __always_inline void parse_payload(struct __sk_buff *skb, struct bpf_sock *sk, struct flow_state *st,
					  struct tcp_segment *seg, struct traffic_counters *c)
{
	if (!st)
		st = bpf_sk_storage_get(&flows, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return;
	if (!st->started) {
		/* A fresh slot: the flow's payload starts at this segment. */
		st->next_seq = seg->seq;
		st->started = 1;
	}
	if (st->proto == FLOW_OTHER)
		return;

	__u32 base = seg->payload_off;
	__u32 len = seg->payload_len;
	__s32 ahead = (__s32)(seg->seq - st->next_seq);
	if (ahead < 0) {
		/* A retransmission: only what follows the bytes already seen is new. */
		__u32 seen = (__u32)(-ahead);
		if (seen >= len)
			return;
		base += seen;
		len -= seen;
	} else if (ahead > 0) {
		/* Bytes were missed (the agent started mid-stream, or a gap): boundaries are lost. */
		if (st->proto == FLOW_HTTP2) {
			note_overflow(OVERFLOW_H2_RESYNC);
			st->proto = FLOW_OTHER;
			return;
		}
	}
	st->next_seq = seg->seq + seg->payload_len;

	if (st->proto == FLOW_HTTP2) {
		h2_walk(skb, st, base, len, c);
		return;
	}

	/* HTTP/1.x, or the first payload of the flow: look at its start. */
	__u8 b[16] = {};
	if (len < 8 || bpf_skb_load_bytes(skb, base, b, len >= 16 ? 16 : 8)) {
		if (st->proto == FLOW_UNKNOWN && len >= 8)
			st->proto = FLOW_OTHER;
		return;
	}
	if (st->proto == FLOW_HTTP1) {
		if (is_http1_request(b))
			c->http_requests += 1;
		return;
	}
	/* FLOW_UNKNOWN */
	if (is_http1_request(b)) {
		st->proto = FLOW_HTTP1;
		c->http_requests += 1;
	} else if (len >= 16 && is_h2_preface(b)) {
		st->proto = FLOW_HTTP2;
		/* The rest of the preface, then frames. */
		st->skip = H2_PREFACE_LEN;
		h2_walk(skb, st, base, len, c);
	} else if (len >= 16) {
		st->proto = FLOW_OTHER;
	}
}

SEC("cgroup_skb/ingress")
int count_ingress(struct __sk_buff *skb)
{
	struct traffic_counters *c = counters_of(bpf_skb_cgroup_id(skb));
	if (!c)
		return 1;
	c->rx_packets += 1;
	c->rx_bytes += skb->len;

	/* The receiving socket (a full one: not a request or time-wait mini socket). */
	struct bpf_sock *sk = skb->sk;
	if (sk)
		sk = bpf_sk_fullsock(sk);
	struct flow_state *st = NULL;
	if (parse_l7 && sk) {
		/* Established flows known to be neither HTTP/1 nor HTTP/2: nothing more to read. */
		st = bpf_sk_storage_get(&flows, sk, 0, 0);
		if (st && st->proto == FLOW_OTHER)
			return 1;
	}

	struct tcp_segment seg = {};
	if (!parse_tcp(skb, &seg))
		return 1;
	if ((seg.flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
		c->syns += 1;
		return 1;
	}
	if (parse_l7 && sk && seg.payload_len > 0)
		parse_payload(skb, sk, st, &seg, c);
	return 1;
}

SEC("cgroup_skb/egress")
int count_egress(struct __sk_buff *skb)
{
	struct traffic_counters *c = counters_of(bpf_skb_cgroup_id(skb));
	if (!c)
		return 1;
	c->tx_packets += 1;
	c->tx_bytes += skb->len;
	return 1;
}

/*
 * The two hooks below are raw tracepoints: BPF_RAW_TRACEPOINT_OPEN attaches them by name,
 * where a classic tracepoint needs its id from tracefs (often not mounted on nodes). Their
 * context is the tracepoint's arguments as u64s, in the order of its TP_PROTO (this
 * kernel's BTF: btf_trace_<name>, after the leading void *); the pointers are read with
 * BPF_CORE_READ, as a raw tracepoint's arguments are not typed for the verifier.
 */

/* A cgroup removed: its counters go with it (the agent has read them at its last poll).
 * cgroup_rmdir(struct cgroup *cgrp, const char *path) */
SEC("raw_tp/cgroup_rmdir")
int cgroup_gone(struct bpf_raw_tracepoint_args *ctx)
{
	struct cgroup *cgrp = (struct cgroup *)ctx->args[0];
	if (!cgrp)
		return 0;
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != cgroup2_hierarchy)
		return 0;
	/* What cgroup_id() returns, and what bpf_skb_cgroup_id() keyed the counters with. */
	__u64 id = BPF_CORE_READ(cgrp, kn, id);
	bpf_map_delete_elem(&counters, &id);
	return 0;
}

/* Optional: TCP retransmissions, charged to the sending socket's cgroup.
 * tcp_retransmit_skb(const struct sock *sk, const struct sk_buff *skb, int reason) */
SEC("raw_tp/tcp_retransmit_skb")
int tcp_retransmit(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	if (!sk)
		return 0;
	struct cgroup *cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	if (!cg)
		return 0;
	__u64 id = BPF_CORE_READ(cg, kn, id);
	struct traffic_counters *c = bpf_map_lookup_elem(&counters, &id);
	if (c)
		c->retransmits += 1;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
