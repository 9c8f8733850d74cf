/**
 * KernelOwners: the KernelOwnerSource backed by the owner programs
 * (native/bpf/owners.bpf.c). open() never throws for a kernel or system that
 * cannot run them (no BTF, no cgroup v2, BPF refused, no libbpf): the source
 * it returns then has status { mode: 'procfs', reason } and finds nothing, and
 * the helper attributes from /proc and sock_diag as before.
 */
import { loadBpfBinding } from '../../native/load.js';
import type { NativeBpfBinding, NativeBpfOwners } from '../../native/types.js';
import { findCgroup2Root } from '../../attribution/cgroups.js';
import type { SocketTuple } from '../../attribution/types.js';
import { ProcessProbe } from './process-probe.js';
import {
  EXEC_SIZE,
  FLOW_KEY_SIZE,
  OWNER_SIZE,
  decodeExec,
  decodeOwner,
  encodeFlowKey,
  nsToTicks,
  type ExecRecord,
  type OwnerRecord,
} from './records.js';
import type {
  KernelAncestor,
  KernelOwner,
  KernelOwnerSource,
  KernelOwnersStatus,
} from './types.js';

export interface KernelOwnersOptions {
  /** The cgroup v2 root to attach at; found in /proc/self/mountinfo when absent. */
  cgroupRoot?: string;
  /** The network namespace whose flows ownerOf looks up (a netns file path or
   * an `ip netns` name); the helper's own namespace when absent. */
  netns?: string;
  /** Programs not to load (names as in status.programs). */
  disable?: readonly string[];
  /** Parent chain depth (default 8). */
  maxAncestors?: number;
  /** /proc, for processes the exec records do not know (tests point it elsewhere). */
  procRoot?: string;
  /** The BPF addon; loaded from the native build when absent. */
  binding?: () => NativeBpfBinding;
}

const DEFAULT_ANCESTORS = 8;

/** A source that finds nothing: the /proc path does the work. */
class NoKernelOwners implements KernelOwnerSource {
  readonly status: KernelOwnersStatus;
  private lookups = 0;
  constructor(reason: string) {
    this.status = { mode: 'procfs', reason };
  }
  ownerOf(): KernelOwner | null {
    this.lookups++;
    return null;
  }
  stats(): { lookups: number; hits: number; records: number } {
    return { lookups: this.lookups, hits: 0, records: 0 };
  }
  close(): void {}
}

/** Words a user can act on, for an error from loading or attaching. */
export function refusalReason(error: unknown): string {
  if (!(error instanceof Error)) return `eBPF unavailable: ${String(error)}`;
  const e = error as Error & { code?: string; syscall?: string; detail?: string };
  const hint =
    e.code === 'EPERM' || e.code === 'EACCES'
      ? ' (needs root with CAP_BPF and CAP_SYS_ADMIN, and no lockdown or LSM refusing BPF)'
      : '';
  return `eBPF unavailable: ${e.message}${hint}`;
}

export class KernelOwners implements KernelOwnerSource {
  readonly status: KernelOwnersStatus;
  private readonly key = new Uint8Array(FLOW_KEY_SIZE);
  private readonly ownerBytes = new Uint8Array(OWNER_SIZE);
  private readonly execBytes = new Uint8Array(EXEC_SIZE);
  private lookups = 0;
  private hits = 0;

  private constructor(
    private readonly programs: NativeBpfOwners,
    private readonly netnsCookie: bigint,
    private readonly maxAncestors: number,
    private readonly proc: ProcessProbe,
  ) {
    this.status = { mode: 'ebpf', programs: programs.programs() };
  }

  /** Loads and attaches the programs; a system that cannot run them gets a
   * procfs-mode source with the reason instead of an exception. */
  static open(options: KernelOwnersOptions = {}): KernelOwnerSource {
    let binding: NativeBpfBinding;
    try {
      binding = (options.binding ?? loadBpfBinding)();
    } catch (error) {
      return new NoKernelOwners(refusalReason(error));
    }
    const root = options.cgroupRoot ?? findCgroup2Root();
    if (root === undefined) {
      return new NoKernelOwners('eBPF unavailable: no cgroup v2 hierarchy is mounted');
    }
    let netns: bigint;
    let programs: NativeBpfOwners;
    try {
      netns = binding.netnsCookie(netnsPath(options.netns));
      programs = new binding.BpfOwners(root, options.disable);
    } catch (error) {
      return new NoKernelOwners(refusalReason(error));
    }
    return new KernelOwners(
      programs,
      netns,
      options.maxAncestors ?? DEFAULT_ANCESTORS,
      new ProcessProbe(options.procRoot ?? '/proc'),
    );
  }

  ownerOf(tuple: SocketTuple): KernelOwner | null {
    if (this.programs.closed) return null;
    this.lookups++;
    if (!encodeFlowKey(tuple, this.netnsCookie, this.key)) return null;
    if (!this.programs.lookupFlow(this.key, this.ownerBytes)) return null;
    this.hits++;
    return new RecordedOwner(decodeOwner(this.ownerBytes), this);
  }

  /** The executable of a recorded owner: its exec record, else /proc while it lives. */
  exeOf(owner: OwnerRecord): string | null {
    const exec = this.execOf(owner.tgid, owner.startNs);
    return exec ? exec.path : this.proc.exeIfSame(owner.tgid, nsToTicks(owner.startNs));
  }

  stats(): { lookups: number; hits: number; records: number } {
    const counters = this.programs.closed ? [] : this.programs.counters();
    return { lookups: this.lookups, hits: this.hits, records: counters[0] ?? 0 };
  }

  /** The programs' own counters (native/bpf/owners.h, enum owner_counter). */
  counters(): number[] {
    return this.programs.closed ? [] : this.programs.counters();
  }

  /** Kernel ids of the attached programs (tests check they go away on close). */
  programIds(): number[] {
    return this.programs.closed ? [] : this.programs.programIds();
  }

  close(): void {
    this.programs.close();
  }

  /** The exec record of this very process: same pid and start time, so a
   * reused pid is not given an older process's path. */
  private execOf(tgid: number, startNs: bigint): ExecRecord | null {
    if (!this.programs.lookupExec(tgid, this.execBytes)) return null;
    const exec = decodeExec(this.execBytes);
    return exec.startNs === startNs && exec.execNs >= startNs ? exec : null;
  }

  /** Parents, nearest first, as far as the exec records reach (map lookups
   * only: /proc reads for long-lived parents would cost more than the rest
   * of the lookup; the caller can go on from the last one with /proc). A
   * parent must have started before its child, or the pid was reused. */
  ancestorsOf(owner: OwnerRecord): KernelAncestor[] {
    const chain: KernelAncestor[] = [];
    let pid = owner.ppid;
    let childStart = owner.startNs;
    while (pid > 0 && chain.length < this.maxAncestors) {
      if (!this.programs.lookupExec(pid, this.execBytes)) break;
      const exec = decodeExec(this.execBytes);
      if (exec.startNs > childStart) break;
      chain.push({ pid, startTime: nsToTicks(exec.startNs), exe: exec.path, comm: exec.comm });
      pid = exec.ppid;
      childStart = exec.startNs;
    }
    return chain;
  }
}

/**
 * One recorded owner. The executable and the parent chain cost map lookups (and /proc
 * reads for a process older than the programs), and most connections come from a
 * process the caller knows already (a live one it read from /proc once): they are
 * looked up when first read, then kept.
 */
class RecordedOwner implements KernelOwner {
  readonly pid: number;
  readonly tid: number;
  readonly uid: number;
  readonly gid: number;
  readonly comm: string;
  readonly startTime: number;
  readonly ppid: number;
  readonly cgroupId: bigint;
  readonly hook: KernelOwner['hook'];
  #exe: string | null | undefined;
  #ancestors: KernelAncestor[] | undefined;

  constructor(
    private readonly record: OwnerRecord,
    private readonly source: KernelOwners,
  ) {
    this.pid = record.tgid;
    this.tid = record.tid;
    this.uid = record.uid;
    this.gid = record.gid;
    this.comm = record.comm;
    this.startTime = nsToTicks(record.startNs);
    this.ppid = record.ppid;
    this.cgroupId = record.cgroupId;
    this.hook = record.hook;
  }

  get exe(): string | null {
    if (this.#exe === undefined) this.#exe = this.source.exeOf(this.record);
    return this.#exe;
  }

  get ancestors(): KernelAncestor[] {
    this.#ancestors ??= this.source.ancestorsOf(this.record);
    return this.#ancestors;
  }
}

function netnsPath(netns: string | undefined): string | undefined {
  if (netns === undefined || netns.includes('/')) return netns;
  return `/run/netns/${netns}`;
}
