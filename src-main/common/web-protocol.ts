/**
 * The web host's WebSocket messages (src-main/node/web-host.ts <->
 * src-renderer/src/transport/ws-api.ts): the channel map of api.ts as JSON.
 * Types only, shared by both ends; the host validates what it receives with
 * valibot (src-main/node/web-client-message.ts and invoke-args.ts), the page
 * checks the envelope.
 *
 * 0. The page is opened at a URL whose fragment (never sent to a server)
 *    carries a one-time code: `#code=...`. It POSTs `{code}` to WEB_SESSION_PATH
 *    once; the host answers `{session}` (a secret the page keeps in
 *    sessionStorage, which is per origin, port included) and sets an HttpOnly,
 *    SameSite=Strict session cookie. The code is dead from then on.
 * 1. The WebSocket upgrade carries the cookie (refused without a live one);
 *    the page's first message is `hello` with the session secret.
 * 2. The host answers `ready`, or closes with WS_CLOSE_BAD_SESSION.
 * 3. `invoke` -> `result` (matched by id); `subscribe`/`unsubscribe` a push
 *    channel -> `push` messages. A flows snapshot travels as `flows-chunk`
 *    messages (the last one with `last: true`), so that no message is huge.
 */
import type { ApiErrorData, Flow, InvokeChannel, PushChannel, PushChannels } from './api.js';

/** The WebSocket path on the host. */
export const WS_PATH = '/ws';
/**
 * POST `{code}` -> 200 `{session}` + the cookie, or 403 (used, expired or
 * unknown). GET -> 204 while the page's cookie names a live session, else 401.
 */
export const WEB_SESSION_PATH = '/session';
/** Close codes (4000-4999 are the application's). */
export const WS_CLOSE_BAD_SESSION = 4001;
export const WS_CLOSE_HELLO_TIMEOUT = 4002;
export const WS_CLOSE_BAD_MESSAGE = 4003;
/** Too many pages at once, or too many unfinished handshakes: try again later. */
export const WS_CLOSE_TOO_MANY = 4004;
/** Largest message the host accepts from a page. */
export const WS_MAX_INBOUND_BYTES = 4 * 1024 * 1024;
/** Flows per `flows-chunk` message. */
export const WS_FLOWS_PER_CHUNK = 1000;

export type WsClientMessage =
  | { type: 'hello'; session: string }
  | { type: 'invoke'; id: number; channel: InvokeChannel; arg?: unknown }
  | { type: 'subscribe'; channel: PushChannel }
  | { type: 'unsubscribe'; channel: PushChannel };

export type WsServerMessage =
  | { type: 'ready' }
  | { type: 'result'; id: number; ok: true; result: unknown }
  | { type: 'result'; id: number; ok: false; error: ApiErrorData }
  | { type: 'push'; channel: PushChannel; payload: PushChannels[PushChannel] }
  | { type: 'flows-chunk'; flows: Flow[]; last: boolean };
