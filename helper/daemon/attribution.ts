/**
 * The daemon's attribution: the eBPF owner records when the kernel allows them, and
 * sock_diag + /proc always (for what the records miss, and alone when BPF is refused or
 * turned off). The helper never fails to start for want of BPF: it says why in one
 * warning and in its state (HelperState.attribution), which the UI shows.
 * docs/attribution.md describes both paths.
 */
import { Attributor, KernelFirstAttributor, KernelOwners } from '../attribution/index.js';
import type { KernelOwnerSource } from '../attribution/ebpf/types.js';
import type { AttributionState } from '../protocol/model.js';
import { AttributorAdapter } from './adapters.js';
import type { Logger } from './log.js';

const COMPONENT = 'attribution';
/** A reason longer than this is cut (the state's text fields are bounded). */
const MAX_REASON = 1024;

/** 'auto': eBPF when the kernel allows it, else /proc; 'procfs': sock_diag + /proc only. */
export type AttributionChoice = 'auto' | 'procfs';

/** Opens the eBPF owner records (KernelOwners.open); rejects when the kernel refuses them. */
export type KernelOwnersOpener = (options: {
  netns?: string;
  log: Logger;
}) => KernelOwnerSource | Promise<KernelOwnerSource>;

export interface AttributionOptions {
  /** Default 'auto' (`portcullis helper --attribution`). */
  attribution?: AttributionChoice;
  /** How the owner records are opened (tests inject a refusal or their own records). */
  openKernelOwners?: KernelOwnersOpener;
}

/** The programs in native/bpf, attached at the cgroup v2 root (never throws: a refusal
 * is a source in procfs mode with its reason). */
const openOwnerPrograms: KernelOwnersOpener = ({ netns }) =>
  KernelOwners.open(netns !== undefined ? { netns } : {});

export interface DaemonAttribution {
  /** sock_diag + /proc; its sock_diag socket also destroys killed TCP sockets. */
  readonly attributor: Attributor;
  /** Records first, then sock_diag + /proc, as the verdict loop's ProcessAttributor. */
  readonly adapter: AttributorAdapter;
  readonly state: AttributionState;
  /** Logs the counters, then detaches the programs and closes sock_diag. */
  close(): void;
}

function bounded(reason: string): string {
  return reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON - 1)}…` : reason;
}

function fallback(log: Logger, reason: string): { kernel: null; state: AttributionState } {
  log.warn(
    COMPONENT,
    `falling back to sock_diag + /proc (${reason}); programs that exit before their first packet is read may go unnamed`,
  );
  return { kernel: null, state: { mode: 'procfs', reason: bounded(reason) } };
}

/** The owner records, or null and why not (logged). */
async function openKernel(
  o: AttributionOptions & { netns?: string; log: Logger },
): Promise<{ kernel: KernelOwnerSource | null; state: AttributionState }> {
  const { log } = o;
  if (o.attribution === 'procfs') {
    const reason = 'turned off by --attribution procfs';
    log.info(COMPONENT, `sock_diag + /proc only: eBPF ${reason}`);
    return { kernel: null, state: { mode: 'procfs', reason } };
  }
  let kernel: KernelOwnerSource;
  try {
    const open = o.openKernelOwners ?? openOwnerPrograms;
    kernel = await open({ ...(o.netns !== undefined ? { netns: o.netns } : {}), log });
  } catch (error) {
    return fallback(log, (error as Error).message);
  }
  const status = kernel.status;
  if (status.mode === 'procfs') {
    kernel.close();
    return fallback(log, status.reason);
  }
  const programs = Object.entries(status.programs);
  const refused = programs.filter(([, s]) => s !== 'attached').map(([n, s]) => `${n}: ${s}`);
  log.info(COMPONENT, 'eBPF owner records first, sock_diag + /proc for what they miss', {
    programs: programs
      .filter(([, s]) => s === 'attached')
      .map(([n]) => n)
      .join(','),
  });
  if (refused.length === 0) return { kernel, state: { mode: 'ebpf' } };
  const reason = `programs refused: ${refused.join('; ')}`;
  log.warn(COMPONENT, `eBPF in part: ${reason}; their connections are named from /proc`);
  return { kernel, state: { mode: 'ebpf', reason: bounded(reason) } };
}

/** Opens both paths in the helper's namespace. */
export async function openAttribution(
  o: AttributionOptions & { netns?: string; log: Logger },
): Promise<DaemonAttribution> {
  const { log } = o;
  const ns = o.netns !== undefined ? { netns: o.netns } : {};
  // The tuple cache only has to cover packets of a flow queued before its verdict
  // (later ones carry the connmark): 100 ms instead of 2 s keeps its entries out of
  // the old generation at thousands of connections a second.
  const attributor = Attributor.open({ ...ns, tupleTtlMs: 100 });
  let kernel: KernelOwnerSource | null = null;
  try {
    await attributor.owners.prime();
    const opened = await openKernel(o);
    kernel = opened.kernel;
    const combined = new KernelFirstAttributor(attributor, { kernel });
    return {
      attributor,
      adapter: new AttributorAdapter(combined),
      state: opened.state,
      close: () => {
        const owners = attributor.owners.stats;
        log.info(COMPONENT, 'stopped', {
          ...combined.stats,
          ...attributor.stats,
          ownerHits: owners.hits,
          ownerMisses: owners.misses,
          probeHits: owners.probeHits,
          processesProbed: owners.processesProbed,
          scans: owners.scans,
          processesScanned: owners.processesScanned,
          ...(kernel
            ? { recordLookups: kernel.stats().lookups, recordHits: kernel.stats().hits }
            : {}),
        });
        try {
          kernel?.close();
        } finally {
          attributor.close();
        }
      },
    };
  } catch (error) {
    kernel?.close();
    attributor.close();
    throw error;
  }
}
