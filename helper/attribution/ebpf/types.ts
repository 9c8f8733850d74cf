/**
 * What the kernel-side attribution (eBPF programs attached at the cgroup v2
 * root) records and how the rest of the helper asks for it. The programs run in
 * the sending process's own context, so the owner is known even when the
 * process has exited before its first packet is read from the queue.
 */
import type { SocketTuple } from '../../attribution/types.js';

/** One process in a socket owner's parent chain, as the exec records knew it. */
export interface KernelAncestor {
  pid: number;
  /** Clock ticks since boot, as /proc/PID/stat field 22. */
  startTime: number;
  /** The executable as its last execve named it; null when not known. */
  exe: string | null;
  comm: string;
}

/** A socket's owner, recorded when the socket connected or sent. */
export interface KernelOwner {
  /** Thread group id: the pid /proc shows. */
  pid: number;
  /** The thread that connected or sent. */
  tid: number;
  uid: number;
  gid: number;
  /** task->comm at that moment (at most 15 bytes). */
  comm: string;
  /** Clock ticks since boot, as /proc/PID/stat field 22: with the pid it names
   * the process (compare with ProcessInfo.startTime). */
  startTime: number;
  ppid: number;
  /** The process's cgroup v2 id (a directory's inode under the cgroup root). */
  cgroupId: bigint;
  /** The executable as the last execve named it (or /proc/PID/exe for a
   * process that was running before the programs were loaded); null when
   * neither is known. */
  exe: string | null;
  /** Parent chain, nearest first, as far as the exec records reach. */
  ancestors: KernelAncestor[];
  /** Which hook recorded it (for diagnostics and tests). */
  hook: KernelOwnerHook;
}

export type KernelOwnerHook =
  'connect4' | 'connect6' | 'sendmsg4' | 'sendmsg6' | 'sockops' | 'connect-tracepoint';

/** Whether the kernel side is in use, and why not when it is not. */
export type KernelOwnersStatus =
  | {
      mode: 'ebpf';
      /** Every program, and either 'attached' or why the kernel refused it. */
      programs: Record<string, 'attached' | string>;
    }
  | {
      mode: 'procfs';
      /** Why eBPF is not in use, in words a user can act on (with errno). */
      reason: string;
    };

/** The eBPF owner records, read synchronously (a map lookup per call). */
export interface KernelOwnerSource {
  readonly status: KernelOwnersStatus;
  /**
   * The owner of the socket that sends `tuple` (outbound: `src`/`sport` are the
   * local end; `src` may be ignored, as the programs often see the socket
   * before its source address is chosen). null when nothing was recorded.
   */
  ownerOf(tuple: SocketTuple): KernelOwner | null;
  /** Counters for the stats page and the benchmarks. */
  stats(): { lookups: number; hits: number; records: number };
  /** Detaches every program (links) and frees the maps. */
  close(): void;
}
