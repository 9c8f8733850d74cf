/* The records the owner programs (owners.bpf.c) write and the helper reads
 * (helper/attribution/ebpf/records.ts decodes them at these fixed offsets).
 * Shared by the BPF object and the native addon; only fixed-width fields, with
 * explicit padding, so both compilers lay them out the same way. */
#ifndef PORTCULLIS_OWNERS_H
#define PORTCULLIS_OWNERS_H

#define OWNER_COMM_LEN 16
#define EXE_PATH_LEN 512

/* Map sizes: LRU hashes, so a flood of sockets or execs evicts the oldest
 * entries instead of growing kernel memory. */
#define FLOWS_MAX 32768
#define PENDING_MAX 8192
#define EXECS_MAX 8192
#define CONNECTS_MAX 4096

enum owner_hook {
  HOOK_CONNECT4 = 1,
  HOOK_CONNECT6 = 2,
  HOOK_SENDMSG4 = 3,
  HOOK_SENDMSG6 = 4,
  HOOK_SOCKOPS = 5,
  HOOK_CONNECT_TP = 6,
};

/* Counters (a per-CPU array, summed by the reader). */
enum owner_counter {
  CNT_FLOW_WRITES = 0,   /* flow records written */
  CNT_FLOW_SAME = 1,     /* sendmsg skipped: an equal record was there */
  CNT_PENDING = 2,       /* TCP connects waiting for their local port */
  CNT_NO_PENDING = 3,    /* sockops connect without a connect4/6 record */
  CNT_EXECS = 4,         /* exec records written */
  CNT_READ_ERRORS = 5,   /* a kernel structure could not be read */
  CNT_MAX = 8,
};

/* 32 bytes. Addresses and ports as the sending socket sees its peer; an IPv4
 * address (also an IPv4-mapped IPv6 one) fills the first 4 bytes of raddr
 * with family AF_INET. */
struct flow_key {
  __u64 netns;      /* 0: network namespace cookie */
  __u8 protocol;    /* 8: IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE */
  __u8 family;      /* 9: AF_INET or AF_INET6 */
  __u16 lport;      /* 10: local port, host order */
  __u16 rport;      /* 12: remote port, host order */
  __u16 pad;        /* 14 */
  __u8 raddr[16];   /* 16 */
};

/* 56 bytes: the process that connected or sent. */
struct owner {
  __u64 start_ns;   /* 0: thread group leader's start_boottime */
  __u64 cgroup_id;  /* 8 */
  __u32 tgid;       /* 16 */
  __u32 tid;        /* 20 */
  __u32 uid;        /* 24 */
  __u32 gid;        /* 28 */
  __u32 ppid;       /* 32 */
  __u8 hook;        /* 36: enum owner_hook */
  __u8 pad[3];      /* 37 */
  char comm[OWNER_COMM_LEN]; /* 40 */
};

/* A TCP socket's owner between connect4/6 and the sockops connect callback. */
struct pending {
  struct owner owner;
  __u64 netns;
};

/* 552 bytes, keyed by tgid: the last execve of a process. */
struct exec_rec {
  __u64 exec_ns;    /* 0: boot-time ns of the exec */
  __u64 start_ns;   /* 8: the process's start_boottime */
  __u32 ppid;       /* 16 */
  __u32 uid;        /* 20 */
  char comm[OWNER_COMM_LEN]; /* 24 */
  char path[EXE_PATH_LEN];   /* 40: as passed to execve */
};

#endif
