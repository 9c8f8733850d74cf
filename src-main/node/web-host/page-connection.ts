/**
 * One page's WebSocket, after the upgrade: its first message must be the
 * session secret (hello); then it carries the PortcullisApi channel map as
 * JSON (src-main/common/web-protocol.ts). Every message is validated (the
 * envelope, then the invoke channel's argument); a bounded number of calls may
 * be in flight; pushes go through the page's bounded outbound queue.
 */
import * as v from 'valibot';
import type { RawData, WebSocket } from 'ws';
import {
  subscribeMethod,
  type InvokeChannel,
  type PortcullisApi,
  type PushChannel,
  type PushChannels,
  type Unsubscribe,
} from '../../common/api.js';
import {
  WS_CLOSE_BAD_MESSAGE,
  WS_CLOSE_BAD_SESSION,
  WS_CLOSE_TOO_MANY,
} from '../../common/web-protocol.js';
import { toApiError } from '../bridge.js';
import { checkInvokeArg } from '../invoke-args.js';
import { WsClientMessageSchema } from '../web-client-message.js';
import type { Conn, WebHandshakes } from './handshakes.js';
import { OutboundQueue, type OutboundLimits } from './outbound-queue.js';
import { WebSessions, type Session } from './sessions.js';

export interface PageContext {
  api: PortcullisApi;
  handshakes: WebHandshakes;
  /** The pages that said hello; shared by all connections. */
  authenticated: Set<WebSocket>;
  maxConnections: number;
  /** Invokes one page may have in flight; more get `busy`. */
  maxInFlight: number;
  outbound: OutboundLimits;
  log: (message: string) => void;
}

type ClientMessage = v.InferOutput<typeof WsClientMessageSchema>;

export function servePage(ctx: PageContext, ws: WebSocket, conn: Conn, session: Session): void {
  conn.ws = ws;
  const page = new PageConnection(ctx, ws, conn, session);
  ws.on('message', (data: RawData, isBinary: boolean) => page.receive(data, isBinary));
  ws.on('close', () => page.closed());
  ws.on('error', () => undefined);
}

class PageConnection {
  private readonly out: OutboundQueue;
  private readonly subs = new Map<PushChannel, Unsubscribe>();
  private ready = false;
  private inFlight = 0;

  constructor(
    private readonly ctx: PageContext,
    private readonly ws: WebSocket,
    private readonly conn: Conn,
    private readonly session: Session,
  ) {
    this.out = new OutboundQueue(ws, ctx.outbound, ctx.log);
  }

  receive(data: RawData, isBinary: boolean): void {
    let raw: unknown;
    try {
      if (isBinary) throw new Error('binary');
      raw = JSON.parse(rawText(data));
    } catch {
      this.ws.close(WS_CLOSE_BAD_MESSAGE, 'not JSON text');
      return;
    }
    const parsed = v.safeParse(WsClientMessageSchema, raw);
    if (!parsed.success) {
      this.ws.close(WS_CLOSE_BAD_MESSAGE, 'invalid message');
      return;
    }
    const m = parsed.output;
    if (!this.ready) return this.hello(m);
    switch (m.type) {
      case 'hello':
        return;
      case 'invoke':
        void this.invoke(m.id, m.channel, m.arg);
        return;
      case 'subscribe':
        this.subscribe(m.channel);
        return;
      case 'unsubscribe':
        this.subs.get(m.channel)?.();
        this.subs.delete(m.channel);
        return;
    }
  }

  closed(): void {
    this.ctx.authenticated.delete(this.ws);
    this.out.clear();
    for (const off of this.subs.values()) off();
    this.subs.clear();
  }

  /** The first message: the session's secret, or the page is closed. */
  private hello(m: ClientMessage): void {
    const { ctx, ws } = this;
    ctx.handshakes.finish(this.conn);
    if (m.type !== 'hello' || !WebSessions.helloMatches(this.session, m.session)) {
      ctx.log('web host: a page presented a wrong session secret');
      ws.close(WS_CLOSE_BAD_SESSION, 'bad session');
      return;
    }
    if (ctx.authenticated.size >= ctx.maxConnections) {
      ws.close(WS_CLOSE_TOO_MANY, 'too many pages');
      return;
    }
    this.ready = true;
    ctx.authenticated.add(ws);
    ctx.log(`web host: a page connected (${ctx.authenticated.size} open)`);
    this.out.send({ type: 'ready' });
  }

  private async invoke(id: number, channel: InvokeChannel, arg: unknown): Promise<void> {
    const { api, maxInFlight } = this.ctx;
    const checked = checkInvokeArg(channel, arg);
    if (!checked.ok) return this.fail(id, checked.message, 'invalid');
    if (this.inFlight >= maxInFlight) {
      return this.fail(id, `more than ${maxInFlight} calls in flight`, 'busy');
    }
    this.inFlight++;
    try {
      const fn = api[channel] as (a: unknown) => Promise<unknown>;
      const result = await fn.call(api, checked.arg);
      this.out.send({ type: 'result', id, ok: true, result: result ?? null });
    } catch (error) {
      const e = toApiError(error);
      this.out.send({
        type: 'result',
        id,
        ok: false,
        error: { name: e.name, message: e.message, code: e.code },
      });
    } finally {
      this.inFlight--;
    }
  }

  private fail(id: number, message: string, code: string): void {
    this.out.send({ type: 'result', id, ok: false, error: { name: 'ApiError', message, code } });
  }

  private subscribe(channel: PushChannel): void {
    if (this.subs.has(channel)) return;
    const { api } = this.ctx;
    const on = api[subscribeMethod(channel)] as (
      l: (p: PushChannels[typeof channel]) => void,
    ) => Unsubscribe;
    this.subs.set(
      channel,
      on.call(api, (p) => this.out.push(channel, p)),
    );
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
