import type { SocketState } from './constants.js';

export type { SocketState } from './constants.js';

/** Address family, as in the conntrack library. */
export type Family = 'ipv4' | 'ipv6';

/** Transport protocols sock_diag knows. `raw` needs CONFIG_INET_RAW_DIAG. */
export type SocketProtocol = 'tcp' | 'udp' | 'udplite' | 'raw';

/**
 * A connection as a packet shows it, from this host's point of view: `src`
 * and `sport` are the local end for an outgoing packet. Addresses are text
 * (IPv4 dotted, IPv6 as helper/common/ip.ts writes it).
 */
export interface SocketTuple {
  family: Family;
  protocol: SocketProtocol;
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

/** One socket as inet_diag describes it. */
export interface SocketInfo {
  /** The socket's own family: an IPv6 socket can carry IPv4 traffic
   * (addresses are then IPv4-mapped, `::ffff:a.b.c.d`). */
  family: Family;
  protocol: SocketProtocol;
  /** TCP state; UDP reports CLOSE when unconnected, ESTABLISHED when connected. */
  state: SocketState | 'UNKNOWN';
  /** Local address and port (`0.0.0.0` / `::` when bound to any). */
  src: string;
  sport: number;
  /** Remote address and port (zero when not connected). */
  dst: string;
  dport: number;
  /** Interface index the socket is bound to (SO_BINDTODEVICE), 0 if none. */
  interface: number;
  /** The kernel's socket cookie: stable for the socket's life, never reused. */
  cookie: bigint;
  /** Inode of the socket in sockfs: what /proc/PID/fd links show as socket:[inode]. 0 for TIME_WAIT. */
  inode: number;
  /** Owner uid (the creator's fsuid, in our user namespace). */
  uid: number;
  timer: number;
  retrans: number;
  expires: number;
  rqueue: number;
  wqueue: number;
  /** INET_DIAG_SHUTDOWN: bit 0 receive, bit 1 send. */
  shutdown?: number;
  /** INET_DIAG_MARK (sent to CAP_NET_ADMIN only). */
  mark?: number;
  /** INET_DIAG_CGROUP_ID: the cgroup v2 id of the socket's creator. */
  cgroupId?: bigint;
  /** INET_DIAG_SKV6ONLY, for listening/closed IPv6 sockets. */
  v6only?: boolean;
  /** INET_DIAG_TOS / INET_DIAG_TCLASS. */
  tos?: number;
  tclass?: number;
  /** INET_DIAG_CONG (TCP congestion control), when asked for. */
  congestion?: string;
}

/** A process, read from /proc/PID. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** /proc/PID/comm (at most 15 bytes, may be changed by the process). */
  comm: string;
  /** readlink(/proc/PID/exe); a replaced or deleted executable keeps the
   * kernel's " (deleted)" suffix. null when unreadable (kernel threads). */
  exe: string | null;
  /** True when `exe` ends in " (deleted)". */
  exeDeleted: boolean;
  /** argv, from /proc/PID/cmdline (empty for kernel threads and zombies). */
  cmdline: string[];
  /** Real uid and gid (/proc/PID/status), and the effective ones. */
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  /** Name of `uid` in /etc/passwd, null if it has none. */
  user: string | null;
  /** Field 22 of /proc/PID/stat, in clock ticks since boot: with the pid,
   * it identifies the process (a reused pid has another start time). */
  startTime: number;
  /** The systemd unit: a system `*.service`/`*.scope`, a session scope, or
   * `user@UID.service` for everything under the user manager. */
  systemdUnit: string | null;
  /** The unit inside the user manager (`app-firefox@x.service`, `vte-spawn-x.scope`). */
  systemdUserUnit: string | null;
  container: ContainerRef | null;
  /** Sandboxed application id: flatpak `[Application] name=` or snap name. */
  app: AppRef | null;
  /** The parent chain, nearest first, when it was looked up (bounded by the caller). */
  ancestors?: ProcessAncestor[];
}

/** One process in a parent chain. */
export interface ProcessAncestor {
  pid: number;
  /** Clock ticks since boot (/proc/PID/stat field 22); 0 when not known. */
  startTime: number;
  /** The executable; null when not known (unreadable, or exited unrecorded). */
  exe: string | null;
  comm: string;
}

export type ContainerRuntime = 'docker' | 'podman' | 'containerd' | 'cri-o' | 'kubernetes';

export interface ContainerRef {
  runtime: ContainerRuntime;
  /** The full (64 hex digit) container id. */
  id: string;
}

export interface AppRef {
  kind: 'flatpak' | 'snap';
  id: string;
}

/** What attribute() found: the socket, and its owner when it could be found. */
export interface Attribution {
  socket: SocketInfo;
  process: ProcessInfo | null;
}
