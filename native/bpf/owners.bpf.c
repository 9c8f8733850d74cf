// SPDX-License-Identifier: GPL-2.0-or-later
/* Socket owners, recorded in the owning process's own context (see
 * docs/attribution.md, "The kernel side"). Every program only observes: the
 * cgroup hooks always return 1 (allow), the others return 0. Attached at the
 * cgroup v2 root, they see every process of the machine. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "owners.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_UDPLITE 136
#define SOCK_DGRAM 2

char LICENSE[] SEC("license") = "GPL";

/* Kernel structures read with CO-RE: only the fields used, relocated by name
 * against the running kernel's BTF, so one object serves every kernel. */
struct net {
  __u64 net_cookie;
} __attribute__((preserve_access_index));

struct in6_addr_local {
  __u32 u6_addr32[4];
};

struct sock_common {
  __u32 skc_daddr;
  __u16 skc_dport;
  __u16 skc_num;
  unsigned short skc_family;
  struct {
    struct net *net;
  } skc_net;
  struct in6_addr_local skc_v6_daddr;
} __attribute__((preserve_access_index));

struct sock {
  struct sock_common __sk_common;
  __u16 sk_type;
  __u16 sk_protocol;
} __attribute__((preserve_access_index));

struct socket {
  struct sock *sk;
} __attribute__((preserve_access_index));

struct file {
  void *private_data;
} __attribute__((preserve_access_index));

struct fdtable {
  unsigned int max_fds;
  struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
  struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
  int tgid;
  __u64 start_boottime;
  struct task_struct *real_parent;
  struct task_struct *group_leader;
  struct files_struct *files;
} __attribute__((preserve_access_index));

/* flow -> owner: what the helper looks up. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, FLOWS_MAX);
  __type(key, struct flow_key);
  __type(value, struct owner);
} flows SEC(".maps");

/* socket cookie -> owner of a TCP connect, until sockops knows the local port. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, PENDING_MAX);
  __type(key, __u64);
  __type(value, struct pending);
} pending SEC(".maps");

/* tgid -> its last execve. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, EXECS_MAX);
  __type(key, __u32);
  __type(value, struct exec_rec);
} execs SEC(".maps");

/* tid -> fd of a connect() in progress. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, CONNECTS_MAX);
  __type(key, __u32);
  __type(value, __u32);
} connects SEC(".maps");

/* The exec record is over the 512-byte stack: built here. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct exec_rec);
} exec_scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, CNT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 which) {
  __u64 *n = bpf_map_lookup_elem(&counters, &which);
  if (n) *n += 1;
}

static __always_inline void fill_owner(struct owner *o, __u8 hook) {
  __u64 id = bpf_get_current_pid_tgid();
  __u64 ids = bpf_get_current_uid_gid();
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  o->tgid = id >> 32;
  o->tid = (__u32)id;
  o->uid = (__u32)ids;
  o->gid = ids >> 32;
  o->hook = hook;
  o->cgroup_id = bpf_get_current_cgroup_id();
  /* /proc/PID/stat shows the thread group leader's start time. */
  o->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
  o->ppid = BPF_CORE_READ(task, real_parent, tgid);
  bpf_get_current_comm(o->comm, sizeof(o->comm));
}

/* Context fields one 4-byte load each: the verifier refuses wider loads of
 * ctx->remote_ip6 / user_ip6, which clang may otherwise merge a copy into. */
#define READ_IP6(dst, src)                        \
  do {                                            \
    for (int i_ = 0; i_ < 4; i_++) {              \
      __u32 w_ = (src)[i_];                       \
      asm volatile("" : "+r"(w_));                \
      (dst)[i_] = w_;                             \
    }                                             \
  } while (0)

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) leaves as an IPv4 packet. */
static __always_inline void set_addr6(struct flow_key *k, const __u32 a[4]) {
  if (a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff)) {
    k->family = AF_INET;
    __builtin_memcpy(k->raddr, &a[3], 4);
  } else {
    k->family = AF_INET6;
    __builtin_memcpy(k->raddr, a, 16);
  }
}

static __always_inline void put_flow(struct flow_key *k, struct owner *o) {
  bpf_map_update_elem(&flows, k, o, BPF_ANY);
  count(CNT_FLOW_WRITES);
}

/* ---- TCP: connect4/6 remember the owner by socket cookie ---- */

static __always_inline int remember_connect(struct bpf_sock_addr *ctx, __u8 hook) {
  if (ctx->protocol != IPPROTO_TCP) return 1;
  struct pending p = {};
  fill_owner(&p.owner, hook);
  p.netns = bpf_get_netns_cookie(ctx);
  __u64 cookie = bpf_get_socket_cookie(ctx);
  bpf_map_update_elem(&pending, &cookie, &p, BPF_ANY);
  count(CNT_PENDING);
  return 1;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx) { return remember_connect(ctx, HOOK_CONNECT4); }

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx) { return remember_connect(ctx, HOOK_CONNECT6); }

/* The TCP connect callback runs once the local port is chosen (no process
 * helpers there): join with connect4/6's record by socket cookie. */
SEC("sockops")
int sockops_connect(struct bpf_sock_ops *skops) {
  if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB) return 1;
  __u64 cookie = bpf_get_socket_cookie(skops);
  struct pending *p = bpf_map_lookup_elem(&pending, &cookie);
  if (!p) {
    count(CNT_NO_PENDING);
    return 1;
  }
  struct flow_key k = {};
  k.netns = p->netns;
  k.protocol = IPPROTO_TCP;
  k.lport = (__u16)skops->local_port;
  /* remote_port is in network order in the upper 16 bits on current kernels,
   * in the lower 16 on old ones. */
  __u32 rp = bpf_ntohl(skops->remote_port);
  k.rport = rp > 0xffff || rp == 0 ? bpf_ntohs((__u16)skops->remote_port) : (__u16)rp;
  if (skops->family == AF_INET6) {
    __u32 a[4];
    READ_IP6(a, skops->remote_ip6);
    set_addr6(&k, a);
  } else {
    k.family = AF_INET;
    __u32 a4 = skops->remote_ip4;
    __builtin_memcpy(k.raddr, &a4, 4);
  }
  struct owner o = p->owner;
  o.hook = HOOK_SOCKOPS;
  put_flow(&k, &o);
  bpf_map_delete_elem(&pending, &cookie);
  return 1;
}

/* ---- unconnected UDP: sendmsg4/6 write the flow record directly ---- */

static __always_inline int record_send(struct bpf_sock_addr *ctx, struct flow_key *k, __u8 hook) {
  struct bpf_sock *sk = ctx->sk;
  if (!sk) return 1;
  k->netns = bpf_get_netns_cookie(ctx);
  k->protocol = (__u8)ctx->protocol;
  k->lport = (__u16)sk->src_port;
  k->rport = bpf_ntohs((__u16)ctx->user_port);
  struct owner o = {};
  fill_owner(&o, hook);
  /* A socket sending many datagrams: skip the write when nothing changed. */
  struct owner *old = bpf_map_lookup_elem(&flows, k);
  if (old && old->tgid == o.tgid && old->tid == o.tid && old->start_ns == o.start_ns &&
      old->hook == o.hook) {
    count(CNT_FLOW_SAME);
    return 1;
  }
  put_flow(k, &o);
  return 1;
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx) {
  struct flow_key k = {};
  k.family = AF_INET;
  __u32 a4 = ctx->user_ip4;
  __builtin_memcpy(k.raddr, &a4, 4);
  return record_send(ctx, &k, HOOK_SENDMSG4);
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx) {
  struct flow_key k = {};
  __u32 a[4];
  READ_IP6(a, ctx->user_ip6);
  set_addr6(&k, a);
  return record_send(ctx, &k, HOOK_SENDMSG6);
}

/* ---- connected UDP: the connect syscall, read back after it succeeded ---- */

struct sys_enter_connect_args {
  __u64 common;
  __s32 syscall_nr;
  __u32 pad;
  __u64 fd;
  __u64 uservaddr;
  __u64 addrlen;
};

struct sys_exit_connect_args {
  __u64 common;
  __s32 syscall_nr;
  __u32 pad;
  __s64 ret;
};

SEC("tracepoint/syscalls/sys_enter_connect")
int connect_enter(struct sys_enter_connect_args *ctx) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  __u32 fd = (__u32)ctx->fd;
  bpf_map_update_elem(&connects, &tid, &fd, BPF_ANY);
  return 0;
}

static __always_inline struct sock *sock_of_fd(__u32 fd) {
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds)) return 0;
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *f = 0;
  if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f) return 0;
  struct socket *sock = BPF_CORE_READ(f, private_data);
  if (!sock) return 0;
  return BPF_CORE_READ(sock, sk);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int connect_exit(struct sys_exit_connect_args *ctx) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  __u32 *fdp = bpf_map_lookup_elem(&connects, &tid);
  if (!fdp) return 0;
  __u32 fd = *fdp;
  bpf_map_delete_elem(&connects, &tid);
  /* TCP is recorded by connect4/6 + sockops; here only a UDP connect, which
   * has chosen its local port once it returns 0. */
  if (ctx->ret != 0) return 0;
  struct sock *sk = sock_of_fd(fd);
  if (!sk) {
    count(CNT_READ_ERRORS);
    return 0;
  }
  __u16 type = BPF_CORE_READ(sk, sk_type);
  __u16 proto = BPF_CORE_READ(sk, sk_protocol);
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (type != SOCK_DGRAM || (proto != IPPROTO_UDP && proto != IPPROTO_UDPLITE)) return 0;
  if (family != AF_INET && family != AF_INET6) return 0;
  struct flow_key k = {};
  k.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, net_cookie);
  k.protocol = (__u8)proto;
  k.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
  k.rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (family == AF_INET6) {
    struct in6_addr_local a = {};
    BPF_CORE_READ_INTO(&a, sk, __sk_common.skc_v6_daddr);
    set_addr6(&k, a.u6_addr32);
  } else {
    k.family = AF_INET;
    __u32 a4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(k.raddr, &a4, 4);
  }
  if (k.rport == 0) return 0; /* connect(AF_UNSPEC): a disconnect */
  struct owner o = {};
  fill_owner(&o, HOOK_CONNECT_TP);
  put_flow(&k, &o);
  return 0;
}

/* ---- exec: the path as passed to execve, kept after the process exits ---- */

struct sched_process_exec_args {
  __u64 common;
  __u32 filename_loc; /* __data_loc: offset in the low 16 bits */
  __s32 pid;
  __s32 old_pid;
};

SEC("tracepoint/sched/sched_process_exec")
int exec(struct sched_process_exec_args *ctx) {
  __u32 zero = 0;
  struct exec_rec *r = bpf_map_lookup_elem(&exec_scratch, &zero);
  if (!r) return 0;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  r->exec_ns = bpf_ktime_get_boot_ns();
  r->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
  r->ppid = BPF_CORE_READ(task, real_parent, tgid);
  r->uid = (__u32)bpf_get_current_uid_gid();
  bpf_get_current_comm(r->comm, sizeof(r->comm));
  __u16 off = ctx->filename_loc & 0xffff;
  if (bpf_probe_read_kernel_str(r->path, sizeof(r->path), (void *)ctx + off) < 0) r->path[0] = 0;
  bpf_map_update_elem(&execs, &tgid, r, BPF_ANY);
  count(CNT_EXECS);
  return 0;
}
