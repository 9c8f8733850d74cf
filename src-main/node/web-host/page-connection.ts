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

export function servePage(ctx: PageContext, ws: WebSocket, conn: Conn, session: Session): void {
  conn.ws = ws;
  const { api, log } = ctx;
  const out = new OutboundQueue(ws, ctx.outbound, log);
  const subs = new Map<PushChannel, Unsubscribe>();
  let ready = false;
  let inFlight = 0;

  const fail = (id: number, message: string, code: string): void =>
    out.send({ type: 'result', id, ok: false, error: { name: 'ApiError', message, code } });

  const invoke = async (id: number, channel: InvokeChannel, arg: unknown): Promise<void> => {
    const checked = checkInvokeArg(channel, arg);
    if (!checked.ok) return fail(id, checked.message, 'invalid');
    if (inFlight >= ctx.maxInFlight) {
      return fail(id, `more than ${ctx.maxInFlight} calls in flight`, 'busy');
    }
    inFlight++;
    try {
      const fn = api[channel] as (a: unknown) => Promise<unknown>;
      const result = await fn.call(api, checked.arg);
      out.send({ type: 'result', id, ok: true, result: result ?? null });
    } catch (error) {
      const e = toApiError(error);
      out.send({
        type: 'result',
        id,
        ok: false,
        error: { name: e.name, message: e.message, code: e.code },
      });
    } finally {
      inFlight--;
    }
  };

  const subscribe = (channel: PushChannel): void => {
    if (subs.has(channel)) return;
    const on = api[subscribeMethod(channel)] as (
      l: (p: PushChannels[typeof channel]) => void,
    ) => Unsubscribe;
    subs.set(
      channel,
      on.call(api, (p) => out.push(channel, p)),
    );
  };

  /** The first message: the session's secret, or the page is closed. */
  const hello = (m: v.InferOutput<typeof WsClientMessageSchema>): void => {
    if (m.type !== 'hello' || !WebSessions.helloMatches(session, m.session)) {
      log('web host: a page presented a wrong session secret');
      ctx.handshakes.finish(conn);
      ws.close(WS_CLOSE_BAD_SESSION, 'bad session');
      return;
    }
    ctx.handshakes.finish(conn);
    if (ctx.authenticated.size >= ctx.maxConnections) {
      ws.close(WS_CLOSE_TOO_MANY, 'too many pages');
      return;
    }
    ready = true;
    ctx.authenticated.add(ws);
    log(`web host: a page connected (${ctx.authenticated.size} open)`);
    out.send({ type: 'ready' });
  };

  ws.on('message', (data: RawData, isBinary: boolean) => {
    let raw: unknown;
    try {
      if (isBinary) throw new Error('binary');
      raw = JSON.parse(rawText(data));
    } catch {
      ws.close(WS_CLOSE_BAD_MESSAGE, 'not JSON text');
      return;
    }
    const parsed = v.safeParse(WsClientMessageSchema, raw);
    if (!parsed.success) {
      ws.close(WS_CLOSE_BAD_MESSAGE, 'invalid message');
      return;
    }
    const m = parsed.output;
    if (!ready) return hello(m);
    switch (m.type) {
      case 'hello':
        return;
      case 'invoke':
        void invoke(m.id, m.channel, m.arg);
        return;
      case 'subscribe':
        subscribe(m.channel);
        return;
      case 'unsubscribe':
        subs.get(m.channel)?.();
        subs.delete(m.channel);
        return;
    }
  });
  ws.on('close', () => {
    ctx.authenticated.delete(ws);
    out.clear();
    for (const off of subs.values()) off();
    subs.clear();
  });
  ws.on('error', () => undefined);
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
