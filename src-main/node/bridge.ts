/**
 * The PortcullisApi (src-main/common/api.ts) on top of the helper's IpcClient:
 * the one core that both Electron main (trusted IPC) and the web host
 * (web-host.ts) hand to the renderer. Electron-free.
 *
 * - Each invoke channel is one wire method, or a loop of them where the
 *   protocol pages (rules.list, rules.export, history.query), or stages
 *   (rules.importBegin/Page/Commit: an import is all or nothing).
 * - The bridge subscribes once per helper connection to every topic and keeps
 *   the flow table and the pending prompts, so that any number of renderers
 *   (windows, browser tabs) get a snapshot when they subscribe and then the
 *   same deltas, without asking the helper for a second copy. The helper counts
 *   a prompts subscriber as a GUI that answers: with `promptsWhileWatched` (the
 *   web host, whose pages come and go) the bridge holds that subscription only
 *   while a page listens, so a closed tab lets the no-GUI policy apply.
 * - `helperStatus` combines the link state (given by the launcher or the web
 *   host's reconnect loop through setLink) with the helper's `state` topic.
 * - Errors leave as ApiError (code and message from the wire, or
 *   `helper-unavailable` while there is no connection), which the transports
 *   serialise as ApiErrorData.
 */
import {
  IpcError,
  MAX_PAGE,
  exportAllRules,
  importRules,
  listAllRules,
  queryHistory,
  type FlowsEvent,
  type IpcClient,
  type PromptsEvent,
} from '../../helper/protocol/index.js';
import {
  ApiError,
  type Flow,
  type FlowEvent,
  type HelperState,
  type HelperStatus,
  type InvokeChannels,
  type PortcullisApi,
  type ProcessIcon,
  type Prompt,
  type PromptEvent,
  type PushChannel,
  type PushChannels,
  type Stats,
  type Unsubscribe,
  type VerdictEvent,
} from '../common/api.js';
import { IconResolver } from './process-icons/icon-resolver.js';

/** Where processIcon's answers come from (process-icons/icon-resolver.ts; a test seam). */
export interface IconSource {
  resolve(exe: string, appId: string | null): Promise<ProcessIcon | null>;
}

export interface HelperBridgeOptions {
  /** Default: an IconResolver over the user's XDG directories, made on first use. */
  icons?: IconSource;
  /**
   * Subscribe to the helper's prompts only while something listens to them here, and
   * let go `graceMs` after the last listener left (a reloading page comes back within
   * it, and its prompts stay open). Default: always subscribed (Electron main, whose
   * tray and notifications listen for as long as the app runs).
   */
  promptsWhileWatched?: { graceMs: number };
}

/** The part of IpcClient the bridge uses (a test seam, and a narrow contract). */
export type BridgeClient = Pick<IpcClient, 'call' | 'on' | 'onClose'>;

export interface LinkStatus {
  connection: HelperStatus['connection'];
  error: string | null;
}

type Listener<K extends PushChannel> = (payload: PushChannels[K]) => void;

/** ApiErrorData's shape for anything thrown by the client or the bridge. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof IpcError) {
    const code = error.code === 'closed' ? 'helper-unavailable' : error.code;
    return new ApiError({ name: 'ApiError', message: error.message, code });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError({ name: 'ApiError', message, code: 'internal' });
}

export class HelperBridge {
  private client: BridgeClient | null = null;
  private offs: (() => void)[] = [];
  private link: LinkStatus = { connection: 'disconnected', error: null };
  private lastClose: 'stopped' | 'lost' | null = null;
  /** The client attached last, whose close gives `lastClose`. */
  private lastClient: BridgeClient | null = null;
  private state: HelperState | null = null;
  private readonly flows = new Map<number, Flow>();
  /** Flows of a snapshot being received (null: none in progress). */
  private pendingSnapshot: Flow[] | null = null;
  private flowsReady = false;
  private readonly prompts = new Map<string, Prompt>();
  private promptsReady = false;
  private lastStats: Stats | null = null;
  /** Whoever owns the link (the web host's reconnect loop) retries it on request. */
  private retryLink: (() => void) | null = null;
  private readonly listeners: { [K in PushChannel]: Set<Listener<K>> } = {
    flows: new Set(),
    prompts: new Set(),
    verdicts: new Set(),
    stats: new Set(),
    helperStatus: new Set(),
    rules: new Set(),
  };

  /** The API the renderer sees. */
  readonly api: PortcullisApi;

  private icons: IconSource | null;
  private readonly promptsWhileWatched: { graceMs: number } | null;
  /** The pending unsubscribe from prompts after the last listener left. */
  private promptsRelease: NodeJS.Timeout | null = null;
  /** Whether the helper has been asked for prompts on the current client. */
  private promptsSubscribed = false;

  constructor(options: HelperBridgeOptions = {}) {
    this.icons = options.icons ?? null;
    this.promptsWhileWatched = options.promptsWhileWatched ?? null;
    this.api = { ...this.invokeChannels(), ...this.subscribeChannels() };
  }

  /** Icons need no helper: main reads the user's own desktop files. */
  private iconSource(): IconSource {
    this.icons ??= new IconResolver();
    return this.icons;
  }

  /** The link state (connected, connecting with a reason...). */
  setLink(link: LinkStatus): void {
    this.link = { ...link };
    this.emitStatus();
  }

  /** What `retryHelper` does: the owner of the link's "try again now" (null: nothing). */
  setRetry(retry: (() => void) | null): void {
    this.retryLink = retry;
  }

  get status(): HelperStatus {
    return {
      connection: this.link.connection,
      state: this.state,
      error: this.link.error,
      lastClose: this.lastClose,
    };
  }

  /**
   * Adopts a connected client: subscribes to every topic and loads the
   * pending prompts and the helper's state. Resolves once the first
   * snapshot of prompts and the state are known (flows follow as they come).
   */
  async attach(client: BridgeClient): Promise<void> {
    this.detach();
    this.client = client;
    this.lastClient = client;
    this.lastClose = null;
    // Not among `offs`: whoever owns the link may detach first when the client closes
    // (its own close listener runs before this one), and the reason must still be read.
    client.onClose((error) => {
      if (this.lastClient !== client) return;
      this.lastClose = error?.code === 'shutting-down' ? 'stopped' : 'lost';
      if (this.client === client) this.detach();
      this.emitStatus();
    });
    this.flowsReady = false;
    this.pendingSnapshot = null;
    this.promptsReady = false;
    this.offs = [
      client.on('flows', (e) => this.onFlowsEvent(e)),
      client.on('prompts', (e) => this.onPromptsEvent(e)),
      client.on('verdicts', (e) => this.emit('verdicts', e)),
      client.on('stats', (s) => {
        this.lastStats = s;
        this.emit('stats', s);
      }),
      client.on('state', (s) => {
        this.state = s;
        this.emitStatus();
      }),
      client.on('rules', (e) => this.emit('rules', e)),
      client.on('dropped', (d) => {
        // Cut off as a slow consumer: subscribe again for a fresh snapshot.
        if (this.client !== client) return;
        const topics = d.topics.filter((t) => t !== 'rules');
        void this.subscribe(client, topics);
        // Rule changes were lost with the cut: the lists are read again.
        if (d.topics.includes('rules')) void this.subscribeRules(client);
      }),
    ];
    const prompts = this.wantsPrompts() ? (['prompts'] as const) : [];
    this.promptsSubscribed = prompts.length > 0;
    await this.subscribe(client, ['flows', ...prompts, 'verdicts', 'stats', 'state']);
    await this.subscribeRules(client);
  }

  /**
   * Rule changes, in a call of their own: a helper older than protocol 1.5 refuses the
   * topic (invalid-params), and the rule list then reloads only after its own changes.
   * A (re)subscription may have missed changes: listeners are told to list again.
   */
  private async subscribeRules(client: BridgeClient): Promise<void> {
    try {
      await client.call('subscribe', { topics: ['rules'] });
    } catch (error) {
      if (error instanceof IpcError && error.code === 'invalid-params') return;
      throw error;
    }
    if (this.client === client) this.emit('rules', { kind: 'reset' });
  }

  /** Whether the helper's prompts are wanted now. */
  private wantsPrompts(): boolean {
    return !this.promptsWhileWatched || this.listeners.prompts.size > 0;
  }

  /** Follows the prompt listeners: subscribe with the first, let go a grace time after the last. */
  private promptListenersChanged(): void {
    if (!this.promptsWhileWatched) return;
    if (this.listeners.prompts.size > 0) {
      if (this.promptsRelease) clearTimeout(this.promptsRelease);
      this.promptsRelease = null;
      const client = this.client;
      if (client && !this.promptsSubscribed) {
        this.promptsSubscribed = true;
        // A failure here means the link is closing; attach() on the next one subscribes.
        this.subscribe(client, ['prompts']).catch(() => undefined);
      }
      return;
    }
    if (this.promptsRelease) return;
    this.promptsRelease = setTimeout(() => {
      this.promptsRelease = null;
      const client = this.client;
      if (this.listeners.prompts.size > 0 || !client || !this.promptsSubscribed) return;
      this.promptsSubscribed = false;
      this.promptsReady = false;
      this.prompts.clear();
      // As above: a failed call means the link is closing, and the helper forgets its subscribers.
      client.call('unsubscribe', { topics: ['prompts'] }).catch(() => undefined);
    }, this.promptsWhileWatched.graceMs);
    this.promptsRelease.unref();
  }

  /** Forgets the client (it closed, or the link is being replaced). */
  detach(): void {
    for (const off of this.offs) off();
    this.offs = [];
    this.client = null;
    this.promptsSubscribed = false;
  }

  private async subscribe(
    client: BridgeClient,
    topics: ('flows' | 'prompts' | 'verdicts' | 'stats' | 'state')[],
  ): Promise<void> {
    await client.call('subscribe', { topics });
    if (topics.includes('prompts')) {
      const list = await client.call('prompts.list');
      // Gone, or let go while the list was on its way (the last page left).
      if (this.client !== client || !this.promptsSubscribed) return;
      this.prompts.clear();
      for (const p of list) this.prompts.set(p.id, p);
      this.promptsReady = true;
      this.emit('prompts', { kind: 'snapshot', prompts: [...this.prompts.values()] });
    }
    if (topics.includes('state')) {
      const state = await client.call('state.get');
      if (this.client !== client) return;
      this.state = state;
      this.emitStatus();
    }
  }

  private onFlowsEvent(e: FlowsEvent): void {
    switch (e.kind) {
      case 'snapshot-begin':
        this.pendingSnapshot = [];
        return;
      case 'snapshot-chunk':
        this.pendingSnapshot?.push(...e.flows);
        return;
      case 'snapshot-end': {
        const flows = this.pendingSnapshot ?? [];
        this.pendingSnapshot = null;
        this.flows.clear();
        for (const f of flows) this.flows.set(f.id, f);
        this.flowsReady = true;
        this.emit('flows', { kind: 'snapshot', flows });
        return;
      }
      case 'delta': {
        const upsert = [...e.added, ...e.updated];
        for (const f of upsert) this.flows.set(f.id, f);
        for (const id of e.removed) this.flows.delete(id);
        if (this.flowsReady) this.emit('flows', { kind: 'delta', upsert, remove: e.removed });
        return;
      }
    }
  }

  private onPromptsEvent(e: PromptsEvent): void {
    let event: PromptEvent;
    if (e.kind === 'resolved') {
      if (!this.prompts.delete(e.id)) return;
      event = { kind: 'delta', upsert: [], remove: [e.id] };
    } else {
      this.prompts.set(e.prompt.id, e.prompt);
      event = { kind: 'delta', upsert: [e.prompt], remove: [] };
    }
    this.state = this.state ? { ...this.state, pendingPrompts: this.prompts.size } : null;
    if (this.promptsReady) this.emit('prompts', event);
  }

  private emit<K extends PushChannel>(channel: K, payload: PushChannels[K]): void {
    for (const l of [...this.listeners[channel]]) {
      try {
        l(payload);
      } catch {
        // One listener's bug must not starve the others.
      }
    }
  }

  private emitStatus(): void {
    this.emit('helperStatus', this.status);
  }

  private listen<K extends PushChannel>(
    channel: K,
    listener: Listener<K>,
    first?: () => PushChannels[K] | null,
  ): Unsubscribe {
    const set = this.listeners[channel];
    set.add(listener);
    const initial = first?.();
    if (initial) listener(initial);
    if (channel === 'prompts') this.promptListenersChanged();
    return () => {
      if (set.delete(listener) && channel === 'prompts') this.promptListenersChanged();
    };
  }

  private subscribeChannels(): Pick<
    PortcullisApi,
    'onFlows' | 'onPrompts' | 'onVerdicts' | 'onStats' | 'onHelperStatus' | 'onRules'
  > {
    return {
      onFlows: (l) =>
        this.listen('flows', l, (): FlowEvent | null =>
          this.flowsReady ? { kind: 'snapshot', flows: [...this.flows.values()] } : null,
        ),
      onPrompts: (l) =>
        this.listen('prompts', l, (): PromptEvent | null =>
          this.promptsReady ? { kind: 'snapshot', prompts: [...this.prompts.values()] } : null,
        ),
      onVerdicts: (l: (v: VerdictEvent) => void) => this.listen('verdicts', l),
      onStats: (l) => this.listen('stats', l, () => this.lastStats),
      onHelperStatus: (l) => this.listen('helperStatus', l, () => this.status),
      onRules: (l) => this.listen('rules', l),
    };
  }

  private require(): BridgeClient {
    if (!this.client) {
      throw new ApiError({
        name: 'ApiError',
        message: this.link.error ?? 'not connected to the helper',
        code: 'helper-unavailable',
      });
    }
    return this.client;
  }

  /** Runs fn against the client; every failure leaves as ApiError. */
  private async run<T>(fn: (c: BridgeClient) => Promise<T>): Promise<T> {
    try {
      return await fn(this.require());
    } catch (error) {
      throw toApiError(error);
    }
  }

  // eslint-disable-next-line max-lines-per-function -- one entry per invoke channel of the PortcullisApi: the whole mapping onto the helper's wire methods in one table
  private invokeChannels(): InvokeChannels {
    return {
      // A helper of protocol 1.2 answers null: it deleted the entry and destroyed
      // what it could, or it would have failed.
      killFlow: (id) =>
        this.run(
          async (c) =>
            (await c.call('flows.kill', { id })) ?? {
              conntrackDeleted: true,
              socketsDestroyed: null,
            },
        ),
      setFlowMark: ({ id, mark }) =>
        this.run(async (c) => void (await c.call('flows.setMark', { id, mark }))),
      // The API carries the complete label set; the wire adds and removes bits.
      setFlowLabels: ({ id, labels }) =>
        this.run(async (c) => {
          const want = new Set(labels);
          const remove: number[] = [];
          for (let bit = 0; bit < 128; bit++) if (!want.has(bit)) remove.push(bit);
          await c.call('flows.setLabels', { id, add: [...want], remove });
        }),
      answerPrompt: (answer) =>
        this.run(async (c) => void (await c.call('prompts.answer', answer))),
      listRules: () => this.run((c) => listAllRules(c)),
      addRule: (rule) => this.run((c) => c.call('rules.add', rule)),
      updateRule: ({ id, rule }) => this.run((c) => c.call('rules.update', { id, patch: rule })),
      removeRule: (id) => this.run(async (c) => void (await c.call('rules.remove', { id }))),
      setRuleEnabled: ({ id, enabled }) =>
        this.run((c) => c.call('rules.setEnabled', { id, enabled })),
      importRules: ({ document, replace }) =>
        this.run(async (c) => {
          const r = await importRules(c, document.rules, replace ? 'replace' : 'merge');
          return { imported: r.added, skipped: r.skipped, removed: r.removed };
        }),
      exportRules: () => this.run((c) => exportAllRules(c)),
      dryRunRule: ({ match, action, since, limit }) =>
        this.run(async (c) => {
          const r = await c.call('rules.dryRun', {
            match,
            limit: Math.max(1, Math.min(limit, MAX_PAGE)),
            ...(since !== null ? { since } : {}),
          });
          return {
            matched: r.entries,
            matchedTotal: r.total,
            // The wire does not report how many entries it scanned: the
            // matches are the part of the history the rule is about.
            scanned: r.total,
            wouldChange: r.entries.filter((e) => e.action !== action).length,
          };
        }),
      queryHistory: (q) =>
        this.run((c) => {
          const base = {
            limit: Math.max(1, q.limit),
            ...(q.from !== null ? { since: q.from } : {}),
            // The API's `to` is exclusive, the wire's `until` inclusive.
            ...(q.to !== null ? { until: Math.max(0, q.to - 1) } : {}),
            ...(q.text !== '' ? { text: q.text } : {}),
            ...(q.action !== null ? { action: q.action } : {}),
          };
          return q.beforeSeq === null
            ? queryHistory(c, base)
            : c.call('history.query', {
                ...base,
                limit: Math.min(base.limit, MAX_PAGE),
                beforeSeq: q.beforeSeq,
              });
        }),
      historySeries: ({ from, to, bucketMs }) =>
        this.run(async (c) => {
          const r = await c.call('history.series', { since: from, until: to, bucketMs });
          return {
            time: r.buckets.map((b) => b.start),
            newConnections: r.buckets.map((b) => b.allowed + b.denied),
            allowed: r.buckets.map((b) => b.allowed),
            denied: r.buckets.map((b) => b.denied),
            bytesOut: r.buckets.map((b) => b.bytesOut ?? 0),
            bytesIn: r.buckets.map((b) => b.bytesIn ?? 0),
          };
        }),
      getStats: () => this.run((c) => c.call('stats.get')),
      getSettings: () => this.run((c) => c.call('settings.get')),
      setSettings: (patch) => this.run((c) => c.call('settings.set', patch)),
      getHelperStatus: () => Promise.resolve(this.status),
      retryHelper: async () => this.retryLink?.(),
      processIcon: ({ exe, appId }) => this.iconSource().resolve(exe, appId),
    };
  }
}
