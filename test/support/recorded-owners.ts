/**
 * An in-test KernelOwnerSource: the records the eBPF programs would have made, keyed
 * as the programs see an outbound socket (no source address).
 */
import type {
  KernelOwner,
  KernelOwnerSource,
  KernelOwnersStatus,
} from '../../helper/attribution/ebpf/types.js';
import type { SocketTuple } from '../../helper/attribution/types.js';

export class RecordedOwners implements KernelOwnerSource {
  readonly lookups: SocketTuple[] = [];
  closed = false;
  private readonly records = new Map<string, KernelOwner>();

  constructor(
    readonly status: KernelOwnersStatus = { mode: 'ebpf', programs: { sendmsg4: 'attached' } },
  ) {}

  private static key(t: Pick<SocketTuple, 'protocol' | 'sport' | 'dst' | 'dport'>): string {
    return `${t.protocol} ${t.sport} ${t.dst} ${t.dport}`;
  }

  record(t: SocketTuple, owner: KernelOwner): void {
    this.records.set(RecordedOwners.key(t), owner);
  }

  ownerOf(tuple: SocketTuple): KernelOwner | null {
    this.lookups.push(tuple);
    return this.records.get(RecordedOwners.key(tuple)) ?? null;
  }

  stats(): { lookups: number; hits: number; records: number } {
    return { lookups: this.lookups.length, hits: 0, records: this.records.size };
  }

  close(): void {
    this.closed = true;
  }
}

/** A record with plausible defaults. */
export function ownerRecord(
  over: Partial<KernelOwner> & Pick<KernelOwner, 'pid' | 'startTime'>,
): KernelOwner {
  return {
    tid: over.pid,
    uid: 1000,
    gid: 1000,
    comm: 'sender',
    ppid: 1,
    cgroupId: 0n,
    exe: '/usr/local/bin/sender',
    ancestors: [],
    hook: 'sendmsg4',
    ...over,
  };
}
