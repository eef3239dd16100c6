/* Shared between the kernel side (traffic.bpf.c) and user space (bpf/counters.ts decodes
 * the same layout). Every field is a __u64 so the value has no padding and one layout on
 * every architecture. */
#ifndef BAMEL_TRAFFIC_H
#define BAMEL_TRAFFIC_H

/* Per cgroup, per CPU. Keep in step with COUNTER_FIELDS in bpf/counters.ts. */
struct traffic_counters {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
	__u64 syns;           /* TCP SYN (without ACK) received: connection attempts */
	__u64 http_requests;  /* HTTP/1.x request lines received */
	__u64 http2_requests; /* HTTP/2 HEADERS frames on client streams, after the preface */
	__u64 retransmits;    /* tcp:tcp_retransmit_skb on sockets of the cgroup */
};

/* What a flow has been recognised as (the flows LRU map). */
enum flow_proto {
	FLOW_UNKNOWN = 0, /* no payload seen yet */
	FLOW_HTTP1 = 1,
	FLOW_HTTP2 = 2,
	FLOW_OTHER = 3,   /* neither: its payload is not looked at again */
};

/* Slots of the overflow PERCPU_ARRAY: what could not be counted. */
enum overflow_slot {
	OVERFLOW_COUNTERS_FULL = 0, /* packets of a cgroup that found the counters map full */
	OVERFLOW_H2_RESYNC = 1,     /* HTTP/2 flows whose frame boundaries were lost */
	OVERFLOW_SLOTS = 2,
};

#endif
