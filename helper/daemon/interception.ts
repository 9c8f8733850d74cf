/**
 * The kernel side of the helper while it runs: conntrack accounting, the flow table,
 * the verdict pipeline (Interceptor) and the stats sampler, with HelperState and the
 * settings' application. `startKernelSide` in daemon.ts assembles it from these parts;
 * this module holds the parts' starting steps and the running whole.
 */
import { join } from 'node:path';
import type { Conntrack } from '../conntrack/index.js';
import { SockDiag } from '../attribution/index.js';
import type { BackendKind, DnsLogConfig } from '../firewall/index.js';
import type { Flow, HelperState, Settings } from '../protocol/model.js';
import { SockDiagDestroyer } from './adapters.js';
import {
  accountingMarkerName,
  ConntrackAccounting,
  loadConntrack,
  sysctlAccessFor,
  type SysctlAccess,
} from './conntrack-accounting.js';
import type { CounterRefresh } from './counter-refresh.js';
import { DaemonError } from './errors.js';
import { FlowTable } from './flows.js';
import type { Interceptor } from './interceptor.js';
import type { LiveSettings } from './live-settings.js';
import type { HelperRun } from './options.js';
import type {
  Decider,
  DecisionRecord,
  DecisionSink,
  EventPublisher,
  HostNames,
  ProcessAttributor,
  SocketDestroyer,
} from './ports.js';
import { StatsCollector } from './stats.js';

export interface InterceptionOptions extends HelperRun {
  /** The settings' one owner: read by the verdict loop and state(), changed by applySettings(). */
  settings: LiveSettings;
  /** The decision engine; the PolicyFallbackDecider when absent. */
  decider?: Decider;
  attributor?: ProcessAttributor;
  hostNames?: HostNames;
  /** The history store. */
  history?: DecisionSink;
  publisher?: EventPublisher;
  /** Kill's TCP socket destroyer; SOCK_DESTROY over sock_diag in the namespace by default, null for none. */
  socketDestroyer?: SocketDestroyer | null;
  /** Each flow's last state as it leaves the conntrack table (history end counters). */
  onFlowEnded?: (flow: Flow, tupleKey: string) => void;
  /** Copy DNS responses to this NFLOG group (for the DnsSnooper). */
  dnsLog?: DnsLogConfig;
  /** HelperState's clients, pendingPrompts, rules and settingsRecovered, from the parts that know them. */
  stateExtras?: () => Pick<
    HelperState,
    'clients' | 'pendingPrompts' | 'rules' | 'settingsRecovered'
  >;
  statsIntervalMs?: number;
  /** How long the whole conntrack table is still followed after the last watcher left (ms). Default 30 s. */
  flowIdleMs?: number;
  /** Test seam: where those sysctls are read and written. */
  sysctls?: SysctlAccess;
}

const COMPONENT = 'helper';

/** HelperState's names: "nft", "iptables" (iptables-nft, the nf_tables compat) or "iptables-legacy". */
function backendName(b: BackendKind | undefined): string {
  return b === undefined ? 'none' : b === 'iptables-nft' ? 'iptables' : b;
}

/** Counts prompted decisions for Stats (the interceptor counts allow/deny). */
export class PromptCounter implements DecisionSink {
  prompted = 0;
  record(entry: DecisionRecord): void {
    if (entry.reason === 'prompt') this.prompted++;
  }
}

/**
 * Conntrack accounting, then the flow table: accounting first, so that counters and
 * start times are attached to conntrack entries created from now on.
 */
export async function startFlows(
  options: InterceptionOptions,
): Promise<{ flows: FlowTable; accounting: ConntrackAccounting; ownDiag: SockDiag | undefined }> {
  const { log, netns, publisher } = options;
  const ns = netns !== undefined ? { netns } : {};
  const ownDiag = options.socketDestroyer === undefined ? SockDiag.open({ ...ns }) : undefined;
  const socketDestroyer =
    options.socketDestroyer === undefined && ownDiag
      ? new SockDiagDestroyer(ownDiag)
      : options.socketDestroyer;
  let accounting: ConntrackAccounting | undefined;
  try {
    accounting = await ConntrackAccounting.start({
      access: options.sysctls ?? sysctlAccessFor(netns),
      enable: options.conntrackAccounting ?? false,
      prepare: () => loadConntrack(netns),
      log,
      marker: join(options.stateDir, accountingMarkerName(netns)),
    });
    const flows = await FlowTable.start({
      ...ns,
      log,
      ...(publisher ? { publisher } : {}),
      ...(socketDestroyer ? { socketDestroyer } : {}),
      ...(options.onFlowEnded ? { onEnded: options.onFlowEnded } : {}),
      ...(options.flowIdleMs !== undefined ? { idleMs: options.flowIdleMs } : {}),
    });
    return { flows, accounting, ownDiag };
  } catch (error) {
    await accounting?.restore();
    ownDiag?.close();
    throw error;
  }
}

/** The stats sampler: the verdict loop's counters, the queue's and conntrack's. */
export function startStats(
  options: InterceptionOptions,
  interceptor: Interceptor,
  prompts: PromptCounter,
  ct: Conntrack,
): StatsCollector {
  const { log, publisher } = options;
  const stats = new StatsCollector(
    {
      decisions: () => ({
        allowed: interceptor.counters.allowed,
        denied: interceptor.counters.denied,
        prompted: prompts.prompted,
      }),
      queue: async () => interceptor.nfqueue?.procStats(),
      conntrackGlobal: () => ct.globalStats(),
      conntrackCpus: () => ct.stats(),
    },
    { intervalMs: options.statsIntervalMs ?? 1000, log, ...(publisher ? { publisher } : {}) },
  );
  stats.start();
  return stats;
}

/** The running parts, as startKernelSide (daemon.ts) started them. */
export interface InterceptionParts {
  interceptor: Interceptor;
  flows: FlowTable;
  stats: StatsCollector;
  /** The stats sampler's conntrack socket. */
  statsConntrack: Conntrack;
  /** Rejects when the verdict loop cannot go on (the queue socket failed): stop and exit non-zero. */
  failure: Promise<never>;
  /** The flow table's own sock_diag socket, when no socket destroyer was given. */
  ownDiag: SockDiag | undefined;
  accounting: ConntrackAccounting;
  refresh: CounterRefresh | undefined;
}

export class Interception {
  readonly startedAt = Date.now();
  readonly interceptor: Interceptor;
  readonly flows: FlowTable;
  readonly stats: StatsCollector;
  readonly failure: Promise<never>;
  readonly accounting: ConntrackAccounting;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly options: InterceptionOptions,
    private readonly parts: InterceptionParts,
  ) {
    this.interceptor = parts.interceptor;
    this.flows = parts.flows;
    this.stats = parts.stats;
    this.failure = parts.failure;
    this.accounting = parts.accounting;
  }

  settings(): Settings {
    return { ...this.options.settings.current };
  }

  state(): HelperState {
    return {
      version: this.options.version ?? 'unknown',
      pid: process.pid,
      startedAt: this.startedAt,
      netns: this.options.netns ?? null,
      firewallBackend: backendName(this.interceptor.backend),
      queue: this.options.queue,
      settings: this.settings(),
      clients: 0,
      pendingPrompts: 0,
      rules: 0,
      conntrack: this.accounting.state,
      rulesRestored: this.interceptor.counters.rulesRestored,
      ...this.options.stateExtras?.(),
    };
  }

  /**
   * Applies new settings (already validated): every reader sees them at once; a changed
   * fail policy or inbound interception reinstalls the rules, and when that fails the
   * previous settings come back. interceptOutbound cannot be turned off (the helper
   * exists to decide outbound).
   */
  async applySettings(next: Settings): Promise<void> {
    if (!next.interceptOutbound) {
      throw new DaemonError('INVALID_OPTION', 'outbound interception cannot be turned off');
    }
    const { settings, log } = this.options;
    const previous = settings.replace(next);
    try {
      await this.interceptor.applyPolicy();
    } catch (error) {
      settings.replace(previous);
      await this.interceptor.applyPolicy().catch((e: unknown) => {
        log.error(COMPONENT, `restoring the previous settings: ${(e as Error).message}`);
      });
      throw error;
    }
    log.info(COMPONENT, 'settings changed', this.settingsFields());
    this.options.publisher?.publish('state', this.state());
  }

  settingsFields(): Record<string, string | number | boolean> {
    const s = this.settings();
    return {
      backend: this.interceptor.backend ?? 'none',
      queue: this.options.queue,
      netns: this.options.netns ?? '-',
      defaultAction: s.defaultAction,
      noGuiPolicy: s.noGuiPolicy,
      promptTimeout: s.promptTimeoutSeconds,
      failPolicy: s.failOpen ? 'open' : 'closed',
      inbound: s.interceptInbound,
    };
  }

  /** Removes the rules, closes the queue (waiting packets get the fail verdict) and the sockets. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stats.stop();
      this.parts.refresh?.stop();
      try {
        await this.interceptor.stop();
      } finally {
        this.flows.close();
        this.parts.statsConntrack.close();
        this.parts.ownDiag?.close();
        // Last: the sysctls go back to what they were only once nothing needs them.
        await this.accounting.restore();
        this.options.log.info(COMPONENT, 'stopped');
      }
    })();
    return this.stopping;
  }
}
