/**
 * The verdict pipeline: binds the queue, has the rules installed (owned-rules.ts), and
 * gives every queued first packet a verdict: packet -> request -> owner and name ->
 * decision -> verdict -> record.
 *
 * Decisions run concurrently: one flow held by a slow decision (a prompt) never
 * delays another. Every packet is answered by its own deadline (docs/helper.md, "The
 * deadline path").
 */
import {
  DEFAULT_MARKS,
  type BackendKind,
  type ChangeReport,
  type DnsLogConfig,
  type MarkLayout,
} from '../firewall/index.js';
import { NfQueueError } from '../nfqueue/errors.js';
import { NfQueue, type NfQueuePacket } from '../nfqueue/queue.js';
import type { Action, ConnectionRequest, VerdictReason } from '../protocol/model.js';
import { remoteAddress } from '../protocol/rules.js';
import { AnsweredAttempts } from './answered-attempts.js';
import { Deadlines } from './deadlines.js';
import { DecisionLog } from './decision-log.js';
import { DaemonError } from './errors.js';
import type { QueuePlace } from './options.js';
import { OwnedRules } from './owned-rules.js';
import type {
  Decider,
  Decision,
  DecisionRecord,
  DecisionSink,
  HostNames,
  ProcessAttributor,
} from './ports.js';
import { buildRequest, requestTuple, tupleKey } from './request.js';
import { verdictOf, type Verdict } from './verdict.js';

/**
 * What the verdict loop reads of the settings. It is read at each packet, not copied:
 * the owner of the settings (LiveSettings) may change it at run time, and
 * `applyPolicy()` then brings the queue and the rules in line.
 */
export interface VerdictPolicy {
  /** The verdict when the decider misses its deadline or fails. */
  readonly defaultAction: Action;
  /** How long after a packet arrives the decider must have answered (ms). */
  readonly decisionTimeoutMs: number;
  /** Drop instead of accept when the helper is gone (no --queue-bypass) or overloaded (no FAIL_OPEN). */
  readonly failClosed: boolean;
  /** Also queue new inbound connections. */
  readonly inbound: boolean;
}

export interface InterceptorOptions extends QueuePlace {
  policy: VerdictPolicy;
  decider: Decider;
  attributor?: ProcessAttributor;
  hostNames?: HostNames;
  /** Every decision goes to each sink (history, flow table, stats). */
  sinks?: DecisionSink[];
  marks?: MarkLayout;
  /** Also copy DNS responses to this NFLOG group (the DnsSnooper's). */
  dnsLog?: DnsLogConfig;
  /** The queue socket failed for good (no packet can be read any more): the owner should restart. */
  onFatal?: (error: Error) => void;
  /**
   * At most this many decisions a second get their own `info` log line (default 50); the
   * rest are counted and summed up in one line per second (the history keeps every one).
   * 0: no per-decision lines, only the summaries.
   */
  decisionLogPerSecond?: number;
}

export interface InterceptorCounters {
  /** Packets handed to the loop. */
  received: number;
  allowed: number;
  denied: number;
  /** Decisions by reason. */
  reasons: Record<VerdictReason, number>;
  /** Packets that could not be parsed (given the default action, not recorded). */
  malformed: number;
  /** Decisions that came after the queue had already answered (deadline or close). */
  late: number;
  /** Attribution failures (the decision went on without a process). */
  attributionErrors: number;
  /** Decisions in progress. */
  inFlight: number;
  /** Packets that joined the decision of an earlier packet of the same flow. */
  coalesced: number;
  /** Retransmits of a denied attempt, denied again without a new decision or record. */
  repeated: number;
  /** Decisions not logged one by one (over decisionLogPerSecond), only summed up. */
  logSuppressed: number;
  /** Times our rules were found changed by somebody else (a ruleset reload) and restored. */
  rulesRestored: number;
}

const COMPONENT = 'interceptor';

function newCounters(): InterceptorCounters {
  return {
    received: 0,
    allowed: 0,
    denied: 0,
    reasons: { rule: 0, prompt: 0, default: 0, 'no-gui': 0, deadline: 0, error: 0 },
    malformed: 0,
    late: 0,
    attributionErrors: 0,
    inFlight: 0,
    coalesced: 0,
    repeated: 0,
    logSuppressed: 0,
    rulesRestored: 0,
  };
}

/** Attribution's share of the decision time at most: a slow /proc scan must not use it all. */
const ATTRIBUTION_LIMIT_MS = 1000;

/** The queue's own deadline comes this long after the decision's: a backstop that should never fire. */
const QUEUE_BACKSTOP_AFTER_MS = 2000;

/** Resolves with `fallback()` when `work` has not settled by `deadline` (epoch ms). */
function byDeadline<T>(
  deadlines: Deadlines,
  work: Promise<T>,
  deadline: number,
  fallback: () => T,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = deadlines.add(deadline, () => resolve(fallback()));
    work.then(
      (v) => {
        cancel();
        resolve(v);
      },
      (e: unknown) => {
        cancel();
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export class Interceptor {
  readonly counters: InterceptorCounters = newCounters();
  private rules: OwnedRules | undefined;
  private q: NfQueue | undefined;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private readonly marks: MarkLayout;
  /** The decision in progress per flow (tuple key), so a flow is decided once. */
  private readonly pendingFlows = new Map<string, Promise<Verdict>>();
  private queueDeadlineMs: number;
  /** The fail policy and inbound interception the queue and the rules were last given. */
  private applied: { failClosed: boolean; inbound: boolean };
  private readonly decisionDeadlines = new Deadlines();
  private readonly attributionDeadlines = new Deadlines();
  private readonly decisionLog: DecisionLog;
  private readonly answered = new AnsweredAttempts();
  /** buildRequest's out-parameter, one for the loop (a packet is parsed at a time). */
  private readonly attempt: { tcpSeq: number | null } = { tcpSeq: null };

  constructor(private readonly options: InterceptorOptions) {
    const { queue, policy } = options;
    if (!Number.isInteger(queue) || queue < 0 || queue > 0xffff) {
      throw new DaemonError('INVALID_OPTION', `queue must be 0..65535, got ${queue}`);
    }
    if (!(policy.decisionTimeoutMs > 0)) {
      throw new DaemonError('INVALID_OPTION', `decisionTimeoutMs must be > 0`);
    }
    this.marks = options.marks ?? { ...DEFAULT_MARKS };
    this.decisionLog = new DecisionLog(options.log, COMPONENT, options.decisionLogPerSecond ?? 50);
    this.queueDeadlineMs = policy.decisionTimeoutMs + QUEUE_BACKSTOP_AFTER_MS;
    this.applied = { failClosed: policy.failClosed, inbound: policy.inbound };
  }

  get backend(): BackendKind | undefined {
    return this.rules?.backend;
  }

  /** The bound queue (for its /proc counters), while running. */
  get nfqueue(): NfQueue | undefined {
    return this.q;
  }

  /**
   * Binds the queue first, then reconciles the rules (a crashed run's leftovers are
   * fixed, ours installed): packets are queued only once somebody listens.
   */
  async start(): Promise<ChangeReport> {
    if (this.state !== 'new') throw new DaemonError('BAD_STATE', `interceptor is ${this.state}`);
    this.state = 'starting';
    const { netns, queue, log } = this.options;
    const { failClosed, inbound } = this.applied;
    const ns = netns !== undefined ? { netns } : {};
    try {
      this.rules = await OwnedRules.open({
        ...ns,
        queue,
        marks: this.marks,
        ...(this.options.dnsLog ? { dnsLog: this.options.dnsLog } : {}),
        log,
        component: COMPONENT,
        wanted: () => this.applied,
        onRestored: (report) => this.rulesRestored(report),
      });
      this.q = await NfQueue.open({
        queue,
        ...ns,
        flags: { failOpen: !failClosed, uidGid: true },
        deadlineMs: this.queueDeadlineMs,
        defaultVerdict: failClosed ? 'drop' : 'accept',
        // The verdict caches decisions with `repeat` and a mark (docs/firewall.md): no glue needed.
        probeConntrackGlue: false,
      });
      for (const r of this.q.flagReport.refused) {
        log.warn(COMPONENT, `kernel refused queue flag ${r.flag}`, { errno: r.code });
      }
      this.q.onError((e) => {
        if (e.code === 'SOCKET') {
          log.error(COMPONENT, `queue socket failed: ${e.message}`);
          this.options.onFatal?.(e);
        } else {
          log.warn(COMPONENT, `queue: ${e.message}`, { code: e.code });
        }
      });
      this.q.onPacket((p) => this.onPacket(p));
      // Binding the queue proved no other helper runs here (a second one gets EPERM above).
      this.rules.own();
      const report = await this.rules.install();
      this.rules.startWatch();
      log.info(COMPONENT, 'rules installed', {
        backend: report.backend,
        changed: report.changed,
        queue,
        netns: netns ?? null,
        failPolicy: failClosed ? 'closed' : 'open',
        inbound,
      });
      for (const a of report.actions) log.debug(COMPONENT, `rules: ${a}`);
      this.state = 'running';
      return report;
    } catch (error) {
      try {
        await this.teardown();
      } catch (cleanup) {
        log.error(COMPONENT, `cleanup after a failed start: ${(cleanup as Error).message}`);
      }
      this.state = 'stopped';
      throw error;
    }
  }

  private rulesRestored(report: ChangeReport): void {
    if (this.state !== 'running') return;
    this.counters.rulesRestored++;
    const { log } = this.options;
    log.warn(COMPONENT, 'rules were changed by somebody else (a ruleset reload?): restored', {
      backend: report.backend,
      actions: report.actions.length,
      times: this.counters.rulesRestored,
    });
    for (const a of report.actions) log.debug(COMPONENT, `rules: ${a}`);
  }

  /**
   * After the policy changed: the default action and decision timeout already apply to
   * packets that arrive from now on; this moves the queue's backstop deadline with the
   * decision's, and a changed fail policy or inbound interception sets the queue's
   * FAIL_OPEN flag and backstop verdict and reinstalls the rules (--queue-bypass, INPUT).
   */
  async applyPolicy(): Promise<ChangeReport | null> {
    if (this.state !== 'running')
      throw new DaemonError('BAD_STATE', `interceptor is ${this.state}`);
    const { policy, log } = this.options;
    const { failClosed, inbound } = policy;
    const queueDeadlineMs = policy.decisionTimeoutMs + QUEUE_BACKSTOP_AFTER_MS;
    if (queueDeadlineMs !== this.queueDeadlineMs) {
      this.queueDeadlineMs = queueDeadlineMs;
      this.q?.setBackstop({ deadlineMs: this.queueDeadlineMs });
    }
    if (failClosed === this.applied.failClosed && inbound === this.applied.inbound) return null;
    this.applied = { failClosed, inbound };
    if (this.q) {
      await this.q.updateFlags({ failOpen: !failClosed });
      this.q.setBackstop({ verdict: failClosed ? 'drop' : 'accept' });
    }
    const report = await this.rules!.install();
    log.info(COMPONENT, 'rules reinstalled', {
      changed: report.changed,
      failPolicy: failClosed ? 'closed' : 'open',
      inbound,
    });
    return report;
  }

  /** Removes the rules (nothing new is queued), then closes the queue (waiting packets get the fail verdict). */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    try {
      await this.teardown();
    } finally {
      this.state = 'stopped';
    }
  }

  private async teardown(): Promise<void> {
    this.decisionLog.flush();
    const errors: unknown[] = [];
    try {
      await this.rules?.remove();
    } catch (error) {
      errors.push(error);
    }
    if (this.q) {
      try {
        await this.q.close();
      } catch (error) {
        errors.push(error);
      }
      this.q = undefined;
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'interceptor stop failed');
  }

  private onPacket(p: NfQueuePacket): void {
    if (this.state === 'stopping' || this.state === 'stopped') return; // close() answers it
    this.counters.received++;
    const arrived = Date.now();
    let request: ConnectionRequest;
    try {
      // The payload is a view valid only inside this callback: parse it now.
      request = buildRequest(p, p.payload, arrived, this.attempt);
    } catch (error) {
      this.counters.malformed++;
      const { defaultAction } = this.options.policy;
      this.options.log.warn(
        COMPONENT,
        `packet ${p.id}: ${(error as Error).message}; default verdict`,
        {
          action: defaultAction,
        },
      );
      this.give(p, defaultAction);
      return;
    }
    // Packets of a flow sent before its first verdict (a UDP burst, a retransmitted SYN)
    // are the same connection: they wait for that decision instead of asking again.
    const key = tupleKey(requestTuple(request));
    const { tcpSeq } = this.attempt;
    const earlier = this.answered.answerFor(key, tcpSeq);
    if (earlier !== null) {
      this.counters.repeated++;
      this.give(p, earlier);
      return;
    }
    const pending = this.pendingFlows.get(key);
    if (pending) {
      this.counters.coalesced++;
      void pending.then((verdict) => {
        if (!p.decided) this.give(p, verdict);
      });
      return;
    }
    this.counters.inFlight++;
    const { policy } = this.options;
    const decided = this.decideAndAnswer(p, request, arrived + policy.decisionTimeoutMs, key)
      .then((verdict) => {
        if (verdict !== 'allow') this.answered.remember(key, tcpSeq, verdict);
        return verdict;
      })
      .catch((error: unknown): Verdict => {
        // Only a bug gets here (decide errors are handled inside): log it loudly.
        this.options.log.error(
          COMPONENT,
          `verdict loop: ${(error as Error).stack ?? String(error)}`,
        );
        if (!p.decided) this.give(p, policy.defaultAction);
        return policy.defaultAction;
      })
      .finally(() => {
        this.counters.inFlight--;
        this.pendingFlows.delete(key);
      });
    this.pendingFlows.set(key, decided);
  }

  /** Resolves with the verdict the packet got (which the flow's other waiting packets get too). */
  private async decideAndAnswer(
    p: NfQueuePacket,
    base: ConnectionRequest,
    deadline: number,
    key: string,
  ): Promise<Verdict> {
    const { decider, log } = this.options;
    const { defaultAction } = this.options.policy;
    const request = await this.complete(p, base, deadline);
    let decision: Decision;
    try {
      decision = await byDeadline(
        this.decisionDeadlines,
        decider.decide(request, { deadline }),
        deadline,
        () => {
          decider.abandon?.(request);
          return { action: defaultAction, reason: 'deadline' as const, ruleId: null };
        },
      );
    } catch (error) {
      log.error(COMPONENT, `decider failed: ${(error as Error).message}; default verdict`);
      decision = { action: defaultAction, reason: 'error', ruleId: null };
    }
    if (p.decided) {
      // The queue's backstop or close() answered first; record what the kernel got.
      this.counters.late++;
      const stopping = this.state === 'stopping' || this.state === 'stopped';
      if (!stopping)
        log.warn(COMPONENT, `packet ${p.id} was answered by the queue before the decision`);
      decision = {
        action: this.applied.failClosed ? 'deny' : 'allow',
        reason: 'deadline',
        ruleId: null,
      };
    } else {
      this.give(p, verdictOf(decision));
    }
    const { denyWith: _kernelOnly, ...recorded } = decision;
    this.record({ request, ...recorded, decidedAt: Date.now() }, key);
    return verdictOf(decision);
  }

  /** Adds the socket owner and the remote host name to a request, within the time allowed. */
  private async complete(
    p: NfQueuePacket,
    request: ConnectionRequest,
    deadline: number,
  ): Promise<ConnectionRequest> {
    const { attributor, hostNames, log } = this.options;
    // NFQA_UID: the kernel's own answer for full sockets, used when attribution finds nobody.
    let uid: number | null = p.uid ?? null;
    let process: ConnectionRequest['process'] = null;
    if (attributor) {
      const limit = Math.min(deadline, Date.now() + ATTRIBUTION_LIMIT_MS);
      try {
        const owner = await byDeadline(
          this.attributionDeadlines,
          attributor.attribute({
            ...requestTuple(request),
            ...(request.direction === 'inbound' ? { inbound: true } : {}),
          }),
          limit,
          () => null,
        );
        if (owner) {
          uid = owner.uid ?? owner.process?.uid ?? uid;
          process = owner.process;
        } else {
          log.debug(COMPONENT, 'attribution timed out', { dst: request.dst });
        }
      } catch (error) {
        this.counters.attributionErrors++;
        log.warn(COMPONENT, `attribution failed: ${(error as Error).message}`);
      }
    }
    const host = (await hostNames?.lookup(remoteAddress(request))) ?? null;
    // The request is this packet's own (built by buildRequest, used by nobody else
    // yet): filled in place instead of copied, one object less per decision.
    request.uid = uid;
    request.process = process;
    request.host = host;
    return request;
  }

  /**
   * allow: NF_REPEAT with the accepted mark, so the rules save it to the connmark and
   * accept, and the flow's later packets never reach user space. deny: NF_REPEAT with
   * the denied mark, which the rules reject (outbound) or drop; drop: with the dropped
   * mark, which they drop. Other mark bits are kept.
   */
  private give(p: NfQueuePacket, verdict: Verdict): void {
    const bits =
      verdict === 'allow'
        ? this.marks.accepted
        : verdict === 'drop'
          ? this.marks.dropped
          : this.marks.denied;
    const mark = (((p.mark ?? 0) & ~this.marks.mask) | bits) >>> 0;
    try {
      p.repeat({ mark });
    } catch (error) {
      if (
        error instanceof NfQueueError &&
        (error.code === 'CLOSED' || error.code === 'ALREADY_DECIDED')
      ) {
        this.counters.late++;
        return;
      }
      throw error;
    }
  }

  private record(entry: DecisionRecord, key: string): void {
    const { sinks = [], log } = this.options;
    if (entry.action === 'allow') this.counters.allowed++;
    else this.counters.denied++;
    this.counters.reasons[entry.reason]++;
    if (!this.decisionLog.write(entry)) this.counters.logSuppressed++;
    for (const sink of sinks) {
      try {
        sink.record(entry, key);
      } catch (error) {
        log.error(COMPONENT, `decision sink failed: ${(error as Error).message}`);
      }
    }
  }
}
