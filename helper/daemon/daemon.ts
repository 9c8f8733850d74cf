/**
 * The whole helper (`portcullis helper`), wired in one place: the rule store + prompt
 * broker + decision engine, the history, the DNS snooper and attribution, the kernel
 * side (flow table, the verdict pipeline of interceptor.ts, stats), and the IPC server
 * with its token. docs/helper.md describes the flow, the files and the fail policy.
 */
import { readFileSync } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { DecisionEngine, PromptBroker, RuleStore, type RuleChange } from '../decisions/index.js';
import { DnsSnooper } from '../dns/index.js';
import { DEFAULT_DNS_LOG_GROUP } from '../firewall/index.js';
import { HistoryStore } from '../history/index.js';
import type { RulesEvent } from '../protocol/messages.js';
import type { Action, Settings } from '../protocol/model.js';
import { IpcServer, writeTokenFile, type AccessGroup } from '../server/index.js';
import { DnsHostNames, HistorySink, ServerPublisher, SockDiagDestroyer } from './adapters.js';
import { openAttribution, type AttributionOptions } from './attribution.js';
import { Conntrack } from '../conntrack/index.js';
import { CounterRefresh } from './counter-refresh.js';
import { DaemonError } from './errors.js';
import { PolicyFallbackDecider } from './fallback-decider.js';
import {
  Interception,
  PromptCounter,
  startFlows,
  startStats,
  type InterceptionOptions,
} from './interception.js';
import { Interceptor } from './interceptor.js';
import { LiveSettings } from './live-settings.js';
import type { Logger } from './log.js';
import type { ProcessAttributor } from './ports.js';
import type { HelperRun } from './options.js';
import { createHelperService, type ServiceParts } from './service.js';
import { SettingsFile, settingOverrides, startSettings } from './settings.js';

export interface DaemonOptions extends HelperRun, AttributionOptions {
  /** From the command line; settings saved by `settings.set` replace those not given explicitly. */
  settings: Settings;
  /** Settings fields given explicitly on the command line (they win over the saved ones). */
  explicit: ReadonlySet<keyof Settings>;
  socket: string;
  token: string;
  /** Non-root uids allowed to connect (root always is). The first owns the token file. */
  allowUids: readonly number[];
  /** Write the token file (TOKEN next to the socket). */
  writeToken: boolean;
  /**
   * Service mode (--access-group): the socket directory, socket and token file
   * belong to this group, and its members may connect.
   */
  accessGroup?: AccessGroup;
  dnsLogGroup?: number;
  /** How often expired and dead-process rules are pruned (ms). Default 10 s. */
  pruneIntervalMs?: number;
}

const COMPONENT = 'helper';

/** The primary gid of a uid from /etc/passwd (the socket's group); 0 when unknown. */
function primaryGid(uid: number): number {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 4 && Number(f[2]) === uid) return Number(f[3]) || 0;
    }
  } catch {
    // no passwd: the group stays root's
  }
  return 0;
}

type Cleanups = { name: string; run: () => unknown }[];

/** The rule store, the history, the prompt broker and the engine, with the rules' pruning. */
async function openDecisions(o: DaemonOptions, settings: LiveSettings, cleanups: Cleanups) {
  const { log } = o;
  const rules = await RuleStore.open({ dir: o.stateDir });
  cleanups.push({ name: 'rules', run: () => rules.close() });
  if (rules.loadProblem) log.warn('rules', rules.loadProblem.message);
  rules.onError((e) => log.error('rules', e.message));
  // Older entries are read when the GUI first asks for history, not at start. The
  // newest 50,000 decisions stay queryable in memory (about 20 MB; at thousands of
  // connections a second the library's 200,000 held 80 MB), all 64 MiB on disk.
  const history = await HistoryStore.open({
    dir: o.stateDir,
    lazyLoad: true,
    memoryEntries: 50_000,
    log,
  });
  cleanups.push({ name: 'history', run: () => history.close() });
  history.onError((e) => log.error('history', e.message));

  const broker = new PromptBroker({
    rules,
    settings: () => settings.current,
    guiConnected: false,
  });
  cleanups.push({ name: 'prompts', run: () => broker.close() });
  const engine = new DecisionEngine({ rules, broker });
  engine.onError((e) => log.error('decisions', e.message));
  rules.onChange(() => broker.reevaluate());
  const prune = setInterval(() => {
    rules
      .prune()
      .then((gone) => {
        if (gone.length > 0) log.info('rules', 'pruned', { count: gone.length });
      })
      .catch((e: unknown) => log.error('rules', `prune: ${(e as Error).message}`));
  }, o.pruneIntervalMs ?? 10_000);
  prune.unref();
  cleanups.push({ name: 'prune timer', run: () => clearInterval(prune) });
  return { rules, history, broker, engine };
}

/** The broker's prompts as the protocol's `prompts` events (once the server listens). */
function publishPrompts(broker: PromptBroker, server: () => IpcServer | undefined, log: Logger) {
  broker.on('added', (prompt) => server()?.publish('prompts', { kind: 'added', prompt }));
  broker.on('updated', (prompt) => server()?.publish('prompts', { kind: 'updated', prompt }));
  broker.on('resolved', (r) => {
    log.info('prompts', `resolved ${r.decision.action}`, {
      prompt: r.prompt.id,
      reason: r.decision.reason,
      released: r.released,
    });
    server()?.publish('prompts', {
      kind: 'resolved',
      id: r.prompt.id,
      action: r.decision.action,
      reason: r.decision.reason,
    });
  });
  broker.on('error', (e) => log.error('prompts', e.message));
}

/**
 * The settings in force at start: saved, with explicit command-line options over them.
 * Each option that replaced a different saved value is logged (warning) and kept for
 * the state until a client sets that field.
 */
async function openSettings(o: DaemonOptions) {
  const settingsFile = new SettingsFile(o.stateDir, { log: o.log });
  const loaded = await settingsFile.load(o.settings);
  const settings = new LiveSettings(startSettings(loaded, o.settings, o.explicit));
  const overrides = {
    list: settingOverrides(loaded, o.settings, o.explicit),
    cleared(fields: readonly (keyof Settings)[]): void {
      this.list = this.list.filter((x) => !fields.includes(x.field));
    },
  };
  for (const x of overrides.list) {
    o.log.warn('settings', `${x.flag} overrides the saved ${x.field}`, {
      saved: String(x.saved),
      now: String(settings.current[x.field]),
    });
  }
  return { settingsFile, settings, overrides };
}

/** Bounds of naming the flows found at start: a big table must not keep the helper busy. */
const EXISTING_FLOWS = { max: 4096, deadlineMs: 5000 };

/**
 * Names the flows already in the conntrack table at start (a restart left them
 * without a process), in the background: the verdict loop starts at once.
 */
function nameExistingFlows(
  interception: Interception,
  attributor: ProcessAttributor,
  log: Logger,
): void {
  interception.flows.attributeExisting(attributor, EXISTING_FLOWS).then(
    (r) => log.info('flows', 'named the flows found at start', r),
    (e: unknown) => log.warn('flows', `naming the flows found at start: ${(e as Error).message}`),
  );
}

/** A store change as the protocol's `rules` event: what a client's rule list must follow. */
export function rulesEvent(change: RuleChange): RulesEvent {
  if (change.kind === 'removed') {
    return { kind: 'removed', id: change.rule.id, reason: change.reason };
  }
  return change;
}

/** The DNS snooper (host names) and attribution (socket owners) in the namespace. */
async function openNaming(o: DaemonOptions, cleanups: Cleanups) {
  const { log } = o;
  const ns = o.netns !== undefined ? { netns: o.netns } : {};
  const group = o.dnsLogGroup ?? DEFAULT_DNS_LOG_GROUP;
  const snooper = await DnsSnooper.open({ group, ...ns });
  cleanups.push({ name: 'dns snooper', run: () => snooper.close() });
  snooper.onError((e) => log.warn('dns', e.message));
  const attribution = await openAttribution(o);
  cleanups.push({ name: 'attribution', run: () => attribution.close() });
  return { snooper, attribution, dnsLog: { group } };
}

/**
 * The kernel side: accounting and the flow table, then the verdict pipeline over the
 * decision parts (interceptor.ts: packet -> request -> owner and name -> decision ->
 * verdict -> record), then the stats. Without a decider the no-GUI policy decides
 * (PolicyFallbackDecider): nobody can be asked. Undone if a step fails.
 */
export async function startKernelSide(options: InterceptionOptions): Promise<Interception> {
  const { log, netns } = options;
  if (!isAbsolute(options.stateDir)) {
    throw new DaemonError('INVALID_OPTION', `state dir must be absolute: ${options.stateDir}`);
  }
  const { noGuiPolicy, promptTimeoutSeconds: p } = options.settings.current;
  if (!Number.isInteger(p) || p < 1 || p > 600) {
    throw new DaemonError('INVALID_OPTION', `prompt timeout must be 1..600 s, got ${p}`);
  }
  await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
  const ns = netns !== undefined ? { netns } : {};
  if (!options.decider) {
    log.info(COMPONENT, 'decisions: policy-only fallback (no decider given)', { noGuiPolicy });
  }
  const { flows, accounting, ownDiag } = await startFlows(options);
  const prompts = new PromptCounter();
  let fail: (error: Error) => void = () => undefined;
  const failure = new Promise<never>((_, reject) => (fail = reject));
  failure.catch(() => undefined); // observed by whoever awaits interception.failure
  const interceptor = new Interceptor({
    ...ns,
    queue: options.queue,
    log,
    policy: options.settings.policy,
    decider: options.decider ?? new PolicyFallbackDecider(noGuiPolicy),
    ...(options.attributor ? { attributor: options.attributor } : {}),
    ...(options.hostNames ? { hostNames: options.hostNames } : {}),
    sinks: [flows, prompts, ...(options.history ? [options.history] : [])],
    ...(options.dnsLog ? { dnsLog: options.dnsLog } : {}),
    onFatal: (error) => fail(error),
  });
  let statsConntrack: Conntrack | undefined;
  try {
    await interceptor.start();
    statsConntrack = Conntrack.open(ns);
    const stats = startStats(options, interceptor, prompts, statsConntrack);
    // Counters and start times reach the flow table only by dumps (counter-refresh.ts).
    const refresh = accounting.active ? new CounterRefresh(flows, { log }) : undefined;
    refresh?.start();
    const interception = new Interception(options, {
      interceptor,
      flows,
      stats,
      statsConntrack,
      failure,
      ownDiag,
      accounting,
      refresh,
    });
    log.info(COMPONENT, 'running', { pid: process.pid, ...interception.settingsFields() });
    options.publisher?.publish('state', interception.state());
    return interception;
  } catch (error) {
    statsConntrack?.close();
    flows.close();
    ownDiag?.close();
    await interceptor.stop().catch((e: unknown) => {
      log.error(COMPONENT, `cleanup after a failed start: ${(e as Error).message}`);
    });
    await accounting.restore();
    throw error;
  }
}

/** Writes the token file next to the socket; its path, removed at stop. */
function writeToken(o: DaemonOptions, cleanups: Cleanups): string {
  const tokenPath = join(dirname(o.socket), 'token');
  const owner = o.allowUids[0];
  writeTokenFile(tokenPath, o.token, owner ?? 0, o.accessGroup ? { group: o.accessGroup.gid } : {});
  cleanups.push({
    name: 'token file',
    run: () =>
      unlink(tokenPath).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      }),
  });
  return tokenPath;
}

/**
 * The IPC server over the service: a prompts subscriber means a GUI to ask, a flows
 * subscriber means the flow table is watched, and client changes publish the state.
 */
async function listen(
  o: DaemonOptions,
  parts: Omit<ServiceParts, 'onSettingsChanged' | 'importStaging'>,
  events: {
    server: () => IpcServer | undefined;
    publisher: ServerPublisher;
    noGuiPolicy: () => Action;
    /** The fields a client set: a command-line override of them is over. */
    settingsSet: (fields: readonly (keyof Settings)[]) => void;
  },
): Promise<IpcServer> {
  const { log } = o;
  const { interception, broker } = parts;
  const { publisher } = events;
  const subscriptionsChanged = (): void => {
    const connected = (events.server()?.subscriberCount('prompts') ?? 0) > 0;
    if (connected !== broker.guiConnected) {
      log.info(COMPONENT, connected ? 'a GUI is listening for prompts' : 'no GUI: no-GUI policy', {
        noGuiPolicy: events.noGuiPolicy(),
      });
    }
    broker.setGuiConnected(connected);
    interception.flows.setWatched((events.server()?.subscriberCount('flows') ?? 0) > 0);
  };
  const service = createHelperService({
    ...parts,
    // The saved settings replace the recovered ones: the state says so.
    onSettingsChanged: (fields) => {
      events.settingsSet(fields);
      publisher.publish('state', interception.state());
    },
  });
  const owner = o.allowUids[0];
  return IpcServer.listen({
    path: o.socket,
    service,
    token: o.token,
    allowedUids: [0, ...o.allowUids],
    ...(o.accessGroup ? { allowedGid: o.accessGroup.gid } : {}),
    socketGroup: o.accessGroup?.gid ?? (owner !== undefined ? primaryGid(owner) : 0),
    build: o.version ?? 'unknown',
    log: (e) => log[e.level]('ipc', `${e.event}: ${e.message}`),
    onClientsChanged: () => publisher.publish('state', interception.state()),
    onSubscriptionsChanged: subscriptionsChanged,
  });
}

export class Daemon {
  private stopping: Promise<void> | undefined;
  private readonly cleanups: Cleanups;

  private constructor(
    readonly interception: Interception,
    readonly server: IpcServer,
    readonly rules: RuleStore,
    readonly broker: PromptBroker,
    readonly history: HistoryStore,
    readonly tokenPath: string | null,
    cleanups: Cleanups,
    private readonly log: Logger,
  ) {
    this.cleanups = cleanups;
  }

  get failure(): Promise<never> {
    return this.interception.failure;
  }

  /** The composition root: each part opened in order, undone in reverse if a later one fails. */
  static async start(o: DaemonOptions): Promise<Daemon> {
    const { log } = o;
    const cleanups: Cleanups = [];
    try {
      await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
      // An unusable settings.json is recovered, never weaker than saved (settings.ts).
      const { settingsFile, settings, overrides } = await openSettings(o);
      const { rules, history, broker, engine } = await openDecisions(o, settings, cleanups);
      // Set once the server listens; events before that have no subscriber anyway.
      const ref: { server?: IpcServer } = {};
      rules.onChange((c) => ref.server?.publish('rules', rulesEvent(c)));
      publishPrompts(broker, () => ref.server, log);
      const publisher = new ServerPublisher();
      const { snooper, attribution, dnsLog } = await openNaming(o, cleanups);
      const historySink = new HistorySink(history, {
        log,
        publish: (entry) => ref.server?.publish('verdicts', entry),
      });

      const interception = await startKernelSide({
        ...(o.netns !== undefined ? { netns: o.netns } : {}),
        queue: o.queue,
        stateDir: o.stateDir,
        log,
        ...(o.version !== undefined ? { version: o.version } : {}),
        settings,
        decider: engine,
        attributor: attribution.adapter,
        hostNames: new DnsHostNames(snooper.cache, () => snooper.pollNow()),
        history: historySink,
        publisher,
        socketDestroyer: new SockDiagDestroyer(attribution.attributor.diag),
        onFlowEnded: (flow, key) => historySink.flowEnded(flow, key),
        dnsLog,
        conntrackAccounting: o.conntrackAccounting ?? false,
        stateExtras: () => ({
          clients: ref.server?.clientCount ?? 0,
          pendingPrompts: broker.pending().length,
          rules: rules.size,
          attribution: attribution.state,
          ...(settingsFile.recovered ? { settingsRecovered: settingsFile.recovered } : {}),
          ...(overrides.list.length > 0 ? { settingsOverridden: overrides.list } : {}),
        }),
      });
      cleanups.push({ name: 'interceptor', run: () => interception.stop() });

      const server = await listen(
        o,
        { interception, rules, broker, history, settingsFile },
        {
          server: () => ref.server,
          publisher,
          noGuiPolicy: () => settings.current.noGuiPolicy,
          settingsSet: (fields) => overrides.cleared(fields),
        },
      );
      ref.server = server;
      cleanups.push({ name: 'ipc server', run: () => server.close() });
      publisher.attach(server);
      nameExistingFlows(interception, attribution.adapter, log);
      const tokenPath = o.writeToken ? writeToken(o, cleanups) : null;
      log.info(COMPONENT, 'serving', {
        socket: o.socket,
        token: tokenPath ?? 'stdin',
        allowUids: [0, ...o.allowUids].join(','),
        ...(o.accessGroup ? { group: `${o.accessGroup.name} (${o.accessGroup.gid})` } : {}),
      });
      return new Daemon(interception, server, rules, broker, history, tokenPath, cleanups, log);
    } catch (error) {
      // Undone in reverse order.
      for (const c of cleanups.splice(0).reverse()) {
        try {
          await c.run();
        } catch (cleanup) {
          log.error(COMPONENT, `stopping ${c.name}: ${(cleanup as Error).message}`);
        }
      }
      throw error;
    }
  }

  /**
   * Clean shutdown: clients told and the socket and token removed first, then held
   * prompts released, the rules removed and the queue closed, then the stores flushed.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const order = [
        'ipc server',
        'token file',
        'prune timer',
        'prompts',
        'interceptor',
        'dns snooper',
        'attribution',
        'rules',
        'history',
      ];
      const byName = new Map(this.cleanups.map((c) => [c.name, c]));
      const errors: Error[] = [];
      for (const name of order) {
        const c = byName.get(name);
        if (!c) continue;
        try {
          await c.run();
        } catch (error) {
          errors.push(error as Error);
          this.log.error(COMPONENT, `stopping ${name}: ${(error as Error).message}`);
        }
      }
      if (errors.length > 0) throw errors[0];
    })();
    return this.stopping;
  }
}
