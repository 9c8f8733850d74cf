/**
 * Attribution that asks the eBPF owner records first (ebpf/types.ts): they were made in
 * the sending process's own context, so they name a program that has exited before its
 * first packet is read. A live owner is then read from /proc as the Attributor reads
 * it (command line, user, units, container, app); an exited one is described from its
 * record and its cgroup id. What the records do not cover (inbound, ICMP, sockets from
 * before the programs were loaded, no BPF at all) goes to sock_diag + /proc unchanged.
 */
import { setNewest } from '../common/bounded-map.js';
import { DEFAULT_MAX_ANCESTORS, procAncestors } from './ancestry.js';
import type { AttributeRequest, Attributor } from './attributor.js';
import { CgroupIndex } from './cgroups.js';
import type { KernelOwner, KernelOwnerSource } from './ebpf/types.js';
import { cgroupInfo, type CgroupInfo } from './proc-parse.js';
import type { ProcessAncestor, ProcessInfo, SocketTuple } from './types.js';

/** Who owns a connection's socket, and which path said so. */
export interface OwnerAttribution {
  /** The owner's uid: the record's, else the socket's (sock_diag). */
  uid: number;
  process: ProcessInfo | null;
  /** 'ebpf': an owner record named it; 'procfs': sock_diag + /proc. */
  via: 'ebpf' | 'procfs';
}

export interface KernelFirstOptions {
  /** The owner records; null or absent: sock_diag + /proc only. */
  kernel?: KernelOwnerSource | null;
  /** cgroup id -> path for exited owners (default: the cgroup v2 mount in mountinfo). */
  cgroups?: CgroupIndex;
  /** procfs root for the ppid walk (default: the Attributor's). */
  procRoot?: string;
  /** Parent chain length at most (default DEFAULT_MAX_ANCESTORS). */
  maxAncestors?: number;
  /** Exited owners remembered, so the packets of one sender share one object (default 1024). */
  exitedCacheSize?: number;
}

export interface KernelFirstStats {
  /** Owners named by a record: still running, or exited (described from the record). */
  kernelLive: number;
  kernelExited: number;
  /** Lookups the records could not answer, sent to sock_diag + /proc. */
  fallbacks: number;
}

const NO_CGROUP: Pick<CgroupInfo, 'systemdUnit' | 'systemdUserUnit' | 'container' | 'app'> = {
  systemdUnit: null,
  systemdUserUnit: null,
  container: null,
  app: null,
};

export class KernelFirstAttributor {
  readonly stats: KernelFirstStats = { kernelLive: 0, kernelExited: 0, fallbacks: 0 };
  private readonly kernel: KernelOwnerSource | null;
  private readonly cgroups: CgroupIndex;
  private readonly procRoot: string;
  private readonly maxAncestors: number;
  private readonly exitedMax: number;
  /** Each /proc process with its chain, made once (the Attributor shares one object per process). */
  private readonly chained = new WeakMap<ProcessInfo, ProcessInfo>();
  /** `pid:startTime` -> an exited owner, as its records describe it. */
  private readonly exited = new Map<string, ProcessInfo>();

  constructor(
    readonly attributor: Attributor,
    options: KernelFirstOptions = {},
  ) {
    this.kernel = options.kernel ?? null;
    this.cgroups = options.cgroups ?? new CgroupIndex();
    this.procRoot = options.procRoot ?? attributor.proc.root;
    this.maxAncestors = options.maxAncestors ?? DEFAULT_MAX_ANCESTORS;
    this.exitedMax = options.exitedCacheSize ?? 1024;
  }

  /** The owner of the connection; null when neither path finds its socket. */
  async attribute(request: AttributeRequest): Promise<OwnerAttribution | null> {
    const owner = this.recorded(request);
    if (owner) return { uid: owner.uid, process: this.ownerProcess(owner), via: 'ebpf' };
    this.stats.fallbacks++;
    const found = await this.attributor.attribute(request);
    if (!found) return null;
    const p = found.process;
    return { uid: found.socket.uid, process: p && this.withChain(p, null), via: 'procfs' };
  }

  /** The record of an outbound TCP/UDP/UDP-Lite socket; the programs see no other. */
  private recorded(request: AttributeRequest): KernelOwner | null {
    if (this.kernel === null || request.inbound || request.protocol === 'raw') return null;
    const { family, protocol, src, sport, dst, dport } = request;
    const tuple: SocketTuple = { family, protocol, src, sport, dst, dport };
    return this.kernel.ownerOf(tuple);
  }

  private ownerProcess(owner: KernelOwner): ProcessInfo {
    // The same pid and start time: the recorded process itself, still running. An exiting
    // one (a zombie) is still in /proc but its exe link no longer reads: the record keeps
    // the path, so it describes that process better.
    const live = this.attributor.process(owner.pid);
    const exeLost = live?.exe === null && owner.exe !== null;
    if (live && live.startTime === owner.startTime && !exeLost) {
      this.stats.kernelLive++;
      return this.withChain(live, owner);
    }
    this.stats.kernelExited++;
    const key = `${owner.pid}:${owner.startTime}`;
    let p = this.exited.get(key);
    if (p === undefined) {
      p = this.fromRecord(owner);
      setNewest(this.exited, key, p, this.exitedMax);
    }
    return p;
  }

  /** `p` with its parent chain: the record's when it has one, else the ppid walk. */
  private withChain(p: ProcessInfo, owner: KernelOwner | null): ProcessInfo {
    let c = this.chained.get(p);
    if (c === undefined) {
      c = { ...p, ancestors: this.ancestors(p.ppid, p.startTime, owner) };
      this.chained.set(p, c);
    }
    return c;
  }

  private ancestors(ppid: number, startTime: number, owner: KernelOwner | null): ProcessAncestor[] {
    if (owner && owner.ancestors.length > 0) {
      return owner.ancestors.slice(0, this.maxAncestors).map((a) => ({ ...a }));
    }
    return procAncestors(ppid, startTime, { procRoot: this.procRoot, max: this.maxAncestors });
  }

  /**
   * An exited owner from its record: no command line (nothing kept it), the record's
   * uid and gid as the effective ones too, and units, container and app from the
   * path of its cgroup id (unknown when that cgroup is gone as well).
   */
  private fromRecord(owner: KernelOwner): ProcessInfo {
    const path = owner.cgroupId > 0n ? this.cgroups.pathOf(owner.cgroupId) : undefined;
    const { systemdUnit, systemdUserUnit, container, app } =
      path === undefined ? NO_CGROUP : cgroupInfo(path);
    return {
      pid: owner.pid,
      ppid: owner.ppid,
      comm: owner.comm,
      exe: owner.exe,
      exeDeleted: owner.exe !== null && owner.exe.endsWith(' (deleted)'),
      cmdline: [],
      uid: owner.uid,
      gid: owner.gid,
      euid: owner.uid,
      egid: owner.gid,
      user: this.attributor.proc.passwd.name(owner.uid),
      startTime: owner.startTime,
      systemdUnit,
      systemdUserUnit,
      container,
      app,
      ancestors: this.ancestors(owner.ppid, owner.startTime, owner),
    };
  }
}
