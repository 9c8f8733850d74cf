/**
 * One client connection: handshake, authentication, validation of every
 * frame, dispatch to the HelperService, subscriptions and the slow-client
 * policy. Nothing a peer sends may throw out of here: every failure becomes
 * an error frame or response, and repeated failures close the connection.
 */
import type { Socket } from 'node:net';
import * as v from 'valibot';
import { ServiceError, type ErrorBody, type ErrorCode } from '../protocol/errors.js';
import {
  ClientFrame,
  HELLO_MAX_BYTES,
  PROTOCOL_VERSION,
  SUBSCRIBABLE_TOPICS,
  isMethodName,
  methods,
  type ClientHello,
  type ErrorFrame,
  type MethodName,
  type RequestFrame,
  type ServerHello,
  type SubscribableTopic,
} from '../protocol/messages.js';
import { FrameDecoder, FrameError, encodeFrame, parseFramePayload } from '../protocol/framing.js';
import type { PeerCredentials } from '../native/types.js';
import { tokenMatches } from './auth.js';
import type { ResolvedOptions, ServerLogEntry } from './options.js';
import { Outbox, type ItemKind } from './outbox.js';
import type { CallContext, HelperService, ServiceMethod } from './service.js';

export interface ConnectionHost {
  readonly options: ResolvedOptions;
  readonly service: HelperService;
  readonly token: string;
  log(entry: ServerLogEntry): void;
  /** The token matched: null to go on, or why the client may not (too many clients). */
  mayAuthenticate(connection: Connection): string | null;
  /** The Hello's token did not match (the server counts and logs these per uid). */
  badToken(connection: Connection): void;
  /** The Hello succeeded. */
  authenticated(connection: Connection): void;
  closed(connection: Connection): void;
  /** The connection's subscriptions changed (subscribe, unsubscribe, cut-off). */
  subscriptionsChanged(connection: Connection): void;
}

type State = 'handshake' | 'ready' | 'closed';

/** A short, single-line account of what failed validation. */
function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 3)
    .map((issue) => {
      const path = v.getDotPath(issue);
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ')
    .slice(0, 1000);
}

export class Connection {
  private state: State = 'handshake';
  private readonly decoder: FrameDecoder;
  readonly outbox: Outbox;
  readonly subscriptions = new Set<SubscribableTopic>();
  private strikes = 0;
  private inFlight = 0;
  private handshakeTimer: NodeJS.Timeout | null;
  private graceTimer: NodeJS.Timeout | null = null;
  /** Whether the client is cut off from events and has not read since. */
  private cutOff = false;
  private cleanedUp = false;
  private authenticatedOnce = false;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    readonly peer: PeerCredentials,
    private readonly host: ConnectionHost,
  ) {
    const o = host.options;
    this.decoder = new FrameDecoder(Math.min(HELLO_MAX_BYTES, o.maxFrameBytes));
    this.outbox = new Outbox(
      {
        write: (frame) => void socket.write(frame),
        get pendingBytes() {
          return socket.writableLength;
        },
      },
      o,
      {
        overflow: (kind) => this.overflow(kind),
        encodeError: (error) =>
          host.log({
            level: 'error',
            event: 'publish-error',
            message: `flows for client ${id} could not be encoded and were dropped: ${error.message}`,
            clientId: id,
            error,
          }),
        oversizeItem: (topic, bytes) =>
          host.log({
            level: 'warn',
            event: 'oversize-event',
            message: `a ${topic} item of ${bytes} bytes does not fit a frame and was left out`,
            clientId: id,
          }),
      },
    );
    this.handshakeTimer = setTimeout(
      () => this.fail('handshake-timeout', 'no Hello within the handshake timeout'),
      o.handshakeTimeoutMs,
    );
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('drain', () => this.outbox.pump());
    socket.on('error', (error) =>
      host.log({ level: 'debug', event: 'socket-error', message: error.message, clientId: id }),
    );
    socket.on('close', () => this.cleanup());
  }

  /** A method, not a narrowed field read: handlers may close the connection. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Whether the Hello succeeded at some point (for the server's count). */
  get wasAuthenticated(): boolean {
    return this.authenticatedOnce;
  }

  get ready(): boolean {
    return this.state === 'ready';
  }

  get context(): CallContext {
    return { clientId: this.id, peer: { ...this.peer } };
  }

  /** Queues an event frame for a subscribed topic (already encoded once for all). */
  sendEvent(frame: Buffer): void {
    if (this.state === 'ready') this.outbox.enqueue(frame, 'event');
  }

  /** Sends a fatal error frame, then closes (the server is stopping, or abuse). */
  fail(code: ErrorCode, message: string, extra?: Partial<ErrorFrame>): void {
    if (this.state === 'closed') return;
    const frame: ErrorFrame = { type: 'error', error: { code, message }, fatal: true, ...extra };
    this.host.log({
      level: 'info',
      event: 'client-closed',
      message: `${code}: ${message}`,
      clientId: this.id,
    });
    this.close(encodeFrame(frame));
  }

  /**
   * Sends a fatal error frame and closes at once, logging nothing: for the
   * handshakes the server drops in bulk (it logs those per uid, throttled).
   * The frame goes out if the peer's socket has room for it.
   */
  abort(code: ErrorCode, message: string): void {
    if (this.state === 'closed') return;
    this.close(encodeFrame({ type: 'error', error: { code, message }, fatal: true }), false);
  }

  /** Closes now; with a last frame, gives the kernel a moment to pass it on
   * (`linger`) or writes what fits now and closes at once. */
  close(lastFrame?: Buffer, linger = true): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.outbox.close();
    // Keep reading (and ignoring) so the peer's close is seen at once.
    this.socket.resume();
    if (lastFrame) {
      this.socket.end(lastFrame);
      if (linger) setTimeout(() => this.socket.destroy(), 1000).unref();
      else this.socket.destroy();
    } else {
      this.socket.destroy();
    }
    this.cleanup();
  }

  private cleanup(): void {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.handshakeTimer = null;
    this.graceTimer = null;
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.outbox.close();
    }
    this.subscriptions.clear();
    this.host.closed(this);
  }

  // -------------------------------------------------------------------------
  // Inbound

  private receive(chunk: Buffer): void {
    if (this.state === 'closed') return;
    for (const item of this.decoder.push(chunk)) {
      if (this.isClosed()) return;
      if (item.kind === 'oversized') {
        this.strike(
          'frame-too-large',
          `frame of ${item.length} bytes exceeds the ${this.decoder.maxFrameBytes}-byte limit`,
        );
        continue;
      }
      let value: unknown;
      try {
        value = parseFramePayload(item.payload);
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        this.strike(error.code, error.message);
        continue;
      }
      this.handle(value);
    }
  }

  private handle(value: unknown): void {
    if (this.state === 'handshake' && this.isOtherMajor(value)) return;
    const parsed = v.safeParse(ClientFrame, value);
    if (!parsed.success) {
      this.strike('bad-frame', `not a valid frame: ${describeIssues(parsed.issues)}`);
      return;
    }
    const frame = parsed.output;
    if (frame.type === 'hello') {
      if (this.state === 'handshake') this.hello(frame);
      else this.strike('bad-frame', 'Hello was already exchanged');
      return;
    }
    if (this.state !== 'ready') {
      this.strike('unauthenticated', 'send Hello with the token before any request');
      return;
    }
    this.request(frame);
  }

  /** A Hello of another major version may not match this version's schema:
   * recognise it loosely so its sender gets a clear answer. */
  private isOtherMajor(value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    const hello = value as { type?: unknown; protocol?: { major?: unknown } };
    const major = hello.protocol?.major;
    if (hello.type !== 'hello' || typeof major !== 'number' || major === PROTOCOL_VERSION.major) {
      return false;
    }
    const minor = (hello.protocol as { minor?: unknown }).minor;
    this.fail(
      'protocol-mismatch',
      `client speaks protocol ${major}.${String(minor)}, this helper speaks ${PROTOCOL_VERSION.major}.${PROTOCOL_VERSION.minor}: use matching versions of the app and the helper`,
      { protocol: { ...PROTOCOL_VERSION } },
    );
    return true;
  }

  private hello(frame: ClientHello): void {
    if (!tokenMatches(this.host.token, frame.token)) {
      // Logged by the host per uid, not per connection: a flood of wrong
      // tokens is one line a minute. Lingering for its last frame, the
      // connection still counts among its uid's handshakes.
      this.host.badToken(this);
      this.close(
        encodeFrame({
          type: 'error',
          error: { code: 'bad-token', message: 'the token does not match this helper launch' },
          fatal: true,
        }),
      );
      return;
    }
    const refusal = this.host.mayAuthenticate(this);
    if (refusal !== null) {
      this.fail('forbidden', refusal);
      return;
    }
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.state = 'ready';
    this.authenticatedOnce = true;
    this.decoder.maxFrameBytes = this.host.options.maxFrameBytes;
    const reply: ServerHello = {
      type: 'hello',
      protocol: { ...PROTOCOL_VERSION },
      build: this.host.options.build,
      pid: process.pid,
    };
    this.send(encodeFrame(reply), 'notice');
    this.host.authenticated(this);
  }

  /** A bad frame or request: an error, and after too many in a row, the end. */
  private strike(code: ErrorCode, message: string, id?: number): void {
    this.strikes++;
    if (this.strikes >= this.host.options.maxStrikes) {
      this.fail(
        'too-many-errors',
        `closed after ${this.strikes} bad frames in a row (last: ${code}: ${message})`,
      );
      return;
    }
    if (id === undefined) {
      this.send(encodeFrame({ type: 'error', error: { code, message }, fatal: false }), 'notice');
    } else {
      this.respondError(id, { code, message });
    }
  }

  private request(frame: RequestFrame): void {
    const { id, method } = frame;
    if (!isMethodName(method)) {
      this.strike('unknown-method', `unknown method '${method.slice(0, 64)}'`, id);
      return;
    }
    const parsed = v.safeParse(methods[method].params, frame.params);
    if (!parsed.success) {
      this.strike('invalid-params', `${method}: ${describeIssues(parsed.issues)}`, id);
      return;
    }
    this.strikes = 0;
    if (this.inFlight >= this.host.options.maxInFlight) {
      this.respondError(id, { code: 'busy', message: 'too many requests in flight' });
      return;
    }
    this.inFlight++;
    if (this.inFlight >= this.host.options.maxInFlight) this.socket.pause();
    this.dispatch(method, parsed.output)
      .then(
        (result) => this.respondResult(id, method, result),
        (error: unknown) => this.respondError(id, this.serviceFailure(method, error)),
      )
      .catch((error: unknown) => {
        // Only a bug in the response path itself lands here; a rejection left
        // unhandled would end the process.
        this.host.log({
          level: 'error',
          event: 'internal-error',
          message: `${method}: answering failed: ${(error as Error).message}`,
          clientId: this.id,
          error: error as Error,
        });
      })
      .finally(() => {
        this.inFlight--;
        if (this.state !== 'closed' && this.inFlight < this.host.options.maxInFlight) {
          this.socket.resume();
        }
      });
  }

  /** Async so that anything thrown, even synchronously by the service,
   * becomes a rejection and an error response, never an uncaught exception. */
  private async dispatch(method: MethodName, params: unknown): Promise<unknown> {
    if (method === 'subscribe' || method === 'unsubscribe') {
      const { topics } = params as { topics: SubscribableTopic[] };
      if (method === 'subscribe') await this.subscribe(topics);
      else this.unsubscribe(topics);
      this.host.subscriptionsChanged(this);
      return { topics: SUBSCRIBABLE_TOPICS.filter((t) => this.subscriptions.has(t)) };
    }
    // The params were validated against this method's schema just above.
    const handler = this.host.service[method as ServiceMethod] as (
      p: unknown,
      c: CallContext,
    ) => Promise<unknown>;
    return await handler.call(this.host.service, params, this.context);
  }

  private async subscribe(topics: readonly SubscribableTopic[]): Promise<void> {
    this.cutOff = false;
    if (topics.includes('flows') && !this.subscriptions.has('flows')) {
      await this.host.service.prepareFlows?.();
    }
    // From here on synchronous: no delta can be published between the snapshot
    // and the subscription.
    if (this.state === 'closed') return;
    for (const topic of topics) {
      if (this.subscriptions.has(topic)) continue;
      if (topic === 'flows') {
        // Copied before the topic is added, so a failing snapshot leaves no
        // half subscription. The response is queued first; the snapshot follows.
        const flows = Array.from(this.host.service.flowsSnapshot());
        this.outbox.startSnapshot(flows);
      }
      this.subscriptions.add(topic);
    }
  }

  private unsubscribe(topics: readonly SubscribableTopic[]): void {
    for (const topic of topics) {
      this.subscriptions.delete(topic);
      if (topic === 'flows') this.outbox.dropFlows();
      if (topic === 'stats' || topic === 'state') this.outbox.dropLatest(topic);
    }
  }

  private serviceFailure(method: string, error: unknown): ErrorBody {
    if (error instanceof ServiceError) return { code: error.code, message: error.message };
    const e = error instanceof Error ? error : new Error(String(error));
    this.host.log({
      level: 'error',
      event: 'service-error',
      message: `${method} failed: ${e.message}`,
      clientId: this.id,
      error: e,
    });
    return { code: 'internal', message: `${method} failed inside the helper (see its log)` };
  }

  private respondResult(id: number, method: MethodName, result: unknown): void {
    if (this.state === 'closed') return;
    const checked = v.safeParse(methods[method].result, result);
    if (!checked.success) {
      this.host.log({
        level: 'error',
        event: 'service-error',
        message: `${method} returned an invalid result: ${describeIssues(checked.issues)}`,
        clientId: this.id,
      });
      this.respondError(id, { code: 'internal', message: `${method} returned an invalid result` });
      return;
    }
    let frame: Buffer;
    try {
      frame = encodeFrame(
        { type: 'response', id, ok: true, result: checked.output },
        this.host.options.maxFrameBytes,
      );
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.respondError(id, {
        code: 'result-too-large',
        message: `${method}: ${error.message}; ask for a smaller page (limit)`,
      });
      return;
    }
    this.send(frame, 'response');
  }

  private respondError(id: number, error: ErrorBody): void {
    if (this.state === 'closed') return;
    this.send(encodeFrame({ type: 'response', id, ok: false, error }), 'response');
  }

  private send(frame: Buffer, kind: ItemKind): void {
    if (this.state !== 'closed') this.outbox.enqueue(frame, kind);
  }

  // -------------------------------------------------------------------------
  // Slow clients

  private overflow(kind: ItemKind): void {
    if (this.state === 'closed') return;
    if (kind !== 'event') {
      // Responses cannot be dropped: a client that lets them pile up is gone.
      this.fail('slow-consumer', 'the client does not read its responses');
      return;
    }
    if (this.cutOff) return;
    this.cutOff = true;
    const topics = SUBSCRIBABLE_TOPICS.filter((t) => this.subscriptions.has(t));
    this.subscriptions.clear();
    this.outbox.dropEvents();
    this.host.subscriptionsChanged(this);
    this.host.log({
      level: 'warn',
      event: 'client-cut-off',
      message: `client ${this.id} does not read its events: unsubscribed from ${topics.join(', ')}`,
      clientId: this.id,
    });
    const notice = encodeFrame({
      type: 'event',
      topic: 'dropped',
      data: {
        topics,
        reason: 'slow-consumer',
        message: `more than ${this.host.options.maxQueuedBytes} bytes were waiting: subscribe again for a fresh snapshot`,
      },
    });
    this.outbox.enqueue(notice, 'notice');
    this.watchAfterCutoff(this.outbox.flushedBytes);
  }

  /**
   * After a cut-off: a client that takes nothing from its socket for a whole
   * `cutoffGraceMs` while output waits is not reading and is closed. One
   * that makes progress is watched until it has caught up.
   */
  private watchAfterCutoff(mark: number): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = setTimeout(() => {
      this.graceTimer = null;
      if (this.state === 'closed' || this.outbox.queuedBytes === 0) return;
      const flushed = this.outbox.flushedBytes;
      if (flushed === mark) this.fail('slow-consumer', 'the client stopped reading');
      else this.watchAfterCutoff(flushed);
    }, this.host.options.cutoffGraceMs);
  }
}
