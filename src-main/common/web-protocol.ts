/**
 * The web host's WebSocket messages (src-main/node/web-host.ts <->
 * src-renderer/src/transport/ws-api.ts): the channel map of api.ts as JSON.
 * Types only, shared by both ends; the host validates what it receives with
 * valibot (src-main/node/web-schemas.ts), the page checks the envelope.
 *
 * 1. The page sends `hello` with the per-launch token (taken from the URL
 *    fragment, which the browser never sends to the server).
 * 2. The host answers `ready`, or closes with WS_CLOSE_BAD_TOKEN.
 * 3. `invoke` -> `result` (matched by id); `subscribe`/`unsubscribe` a push
 *    channel -> `push` messages. A flows snapshot travels as `flows-chunk`
 *    messages (the last one with `last: true`), so that no message is huge.
 */
import type { ApiErrorData, Flow, InvokeChannel, PushChannel, PushChannels } from './api.js';

/** The WebSocket path on the host. */
export const WS_PATH = '/ws';
/** Close codes (4000-4999 are the application's). */
export const WS_CLOSE_BAD_TOKEN = 4001;
export const WS_CLOSE_HELLO_TIMEOUT = 4002;
export const WS_CLOSE_BAD_MESSAGE = 4003;
/** Largest message the host accepts from a page. */
export const WS_MAX_INBOUND_BYTES = 4 * 1024 * 1024;
/** Flows per `flows-chunk` message. */
export const WS_FLOWS_PER_CHUNK = 1000;

export type WsClientMessage =
  | { type: 'hello'; token: string }
  | { type: 'invoke'; id: number; channel: InvokeChannel; arg?: unknown }
  | { type: 'subscribe'; channel: PushChannel }
  | { type: 'unsubscribe'; channel: PushChannel };

export type WsServerMessage =
  | { type: 'ready' }
  | { type: 'result'; id: number; ok: true; result: unknown }
  | { type: 'result'; id: number; ok: false; error: ApiErrorData }
  | { type: 'push'; channel: PushChannel; payload: PushChannels[PushChannel] }
  | { type: 'flows-chunk'; flows: Flow[]; last: boolean };
