/**
 * The PortcullisApi over the web host's WebSocket (src-main/node/web-host.ts),
 * for a normal browser: what the preload is in Electron. No DOM names here
 * (the socket is injected), so the same code is unit-tested under Node with
 * the ws package; ws-api.ts installs it in the page.
 *
 * A dropped socket is reopened with backoff; subscriptions are renewed (flows
 * and prompts start again with a snapshot) and `helperStatus` says
 * "connecting" meanwhile. A refused session is final.
 *
 * `exchangeCode` turns the one-time code of the page's URL into a session.
 */
import {
  ApiError,
  INVOKE_CHANNELS,
  PUSH_CHANNELS,
  subscribeMethod,
  type ApiErrorData,
  type Flow,
  type HelperStatus,
  type InvokeChannels,
  type PortcullisApi,
  type PushChannel,
  type PushChannels,
  type SubscribeApi,
} from '../../../src-main/common/api.js';
import {
  WEB_SESSION_PATH,
  WS_CLOSE_BAD_SESSION,
  type WsClientMessage,
  type WsServerMessage,
} from '../../../src-main/common/web-protocol.js';

/** The part of the browser's WebSocket the transport uses. */
export interface PageSocket {
  readonly readyState: number;
  send(data: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number }) => void) | null;
}

/** WebSocket.OPEN */
const OPEN = 1;

const REFUSED =
  'the web host refused this page: its session is not valid (run `portcullis ui link` for a new link)';

export interface WsApiOptions {
  /** ws://127.0.0.1:PORT/ws */
  url: string;
  /** The session secret from exchangeCode (the cookie travels by itself). */
  session: string;
  /** `(url) => new WebSocket(url)` in a page. */
  socket: (url: string) => PageSocket;
  /**
   * Asked when a socket closed before it ever opened (the host refuses an
   * upgrade without a live session cookie, and a browser does not say why):
   * false makes the refusal final. Default: always true.
   */
  sessionAlive?: () => Promise<boolean>;
  /** Default 30 s. */
  callTimeoutMs?: number;
}

type AnyListener = (payload: PushChannels[PushChannel]) => void;

interface Pending {
  resolve(value: unknown): void;
  reject(error: ApiError): void;
  timer: ReturnType<typeof setTimeout>;
}

function unavailable(message: string): ApiError {
  return new ApiError({ name: 'ApiError', message, code: 'helper-unavailable' });
}

function isErrorData(x: unknown): x is ApiErrorData {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Record<string, unknown>;
  return typeof e['message'] === 'string' && typeof e['code'] === 'string';
}

/** Checks a message's envelope (the host validated the payloads it relays). */
function parseServerMessage(text: string): WsServerMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof m !== 'object' || m === null) return null;
  const o = m as Record<string, unknown>;
  switch (o['type']) {
    case 'ready':
      return { type: 'ready' };
    case 'result':
      if (typeof o['id'] !== 'number') return null;
      if (o['ok'] === true) return { type: 'result', id: o['id'], ok: true, result: o['result'] };
      if (o['ok'] === false && isErrorData(o['error']))
        return { type: 'result', id: o['id'], ok: false, error: o['error'] };
      return null;
    case 'push': {
      const channel = o['channel'];
      if (typeof channel !== 'string' || !(PUSH_CHANNELS as readonly string[]).includes(channel))
        return null;
      if (typeof o['payload'] !== 'object' || o['payload'] === null) return null;
      return m as WsServerMessage;
    }
    case 'flows-chunk':
      if (!Array.isArray(o['flows']) || typeof o['last'] !== 'boolean') return null;
      return m as WsServerMessage;
    default:
      return null;
  }
}

type Send = (m: WsClientMessage) => boolean;

/** Calls waiting for their result, each failed by its timeout or a lost socket. */
function createCalls(send: Send, callTimeoutMs: number) {
  const pending = new Map<number, Pending>();
  let nextId = 1;
  const invoke = (channel: keyof InvokeChannels, arg: unknown): Promise<unknown> =>
    new Promise((res, rej) => {
      const id = nextId++;
      const m: WsClientMessage =
        arg === undefined ? { type: 'invoke', id, channel } : { type: 'invoke', id, channel, arg };
      if (!send(m)) {
        rej(unavailable('not connected to the web host'));
        return;
      }
      const timer = setTimeout(() => {
        pending.delete(id);
        rej(new ApiError({ name: 'ApiError', message: `${channel}: timed out`, code: 'timeout' }));
      }, callTimeoutMs);
      pending.set(id, { resolve: res, reject: rej, timer });
    });
  return {
    api: Object.fromEntries(
      INVOKE_CHANNELS.map((channel) => [channel, (arg?: unknown) => invoke(channel, arg)]),
    ) as unknown as InvokeChannels,
    settle(m: Extract<WsServerMessage, { type: 'result' }>): void {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.result === null ? undefined : m.result);
      else p.reject(new ApiError(m.error));
    },
    failAll(reason: string): void {
      for (const [id, p] of pending) {
        clearTimeout(p.timer);
        p.reject(unavailable(reason));
        pending.delete(id);
      }
    },
  };
}

/** The page's push listeners by channel; the host is subscribed to a channel
 * while it has at least one. */
function createSubscriptions(send: Send) {
  const listeners = new Map<PushChannel, Set<AnyListener>>();
  let snapshot: Flow[] | null = null;
  let lastStatus: HelperStatus = { connection: 'connecting', state: null, error: null };

  const emit = (channel: PushChannel, payload: PushChannels[PushChannel]): void => {
    if (channel === 'helperStatus') lastStatus = payload as HelperStatus;
    for (const l of [...(listeners.get(channel) ?? [])]) l(payload);
  };

  const subscribe = (channel: PushChannel, listener: AnyListener): (() => void) => {
    let set = listeners.get(channel);
    if (!set) listeners.set(channel, (set = new Set()));
    const first = set.size === 0;
    set.add(listener);
    if (first) send({ type: 'subscribe', channel });
    else if (channel === 'helperStatus') listener(lastStatus);
    else if (channel === 'flows' || channel === 'prompts') {
      // A snapshot for the newcomer: subscribe afresh (the others get
      // one too, which replaces their table with the same content).
      send({ type: 'unsubscribe', channel });
      send({ type: 'subscribe', channel });
    }
    return () => {
      if (!set.delete(listener)) return;
      if (set.size === 0) send({ type: 'unsubscribe', channel });
    };
  };

  return {
    api: Object.fromEntries(
      PUSH_CHANNELS.map((channel) => [
        subscribeMethod(channel),
        (listener: AnyListener) => subscribe(channel, listener),
      ]),
    ) as unknown as SubscribeApi,
    emit,
    /** A new socket: the host knows none of this page's subscriptions yet. */
    renew(): void {
      for (const [channel, set] of listeners) {
        if (set.size > 0) send({ type: 'subscribe', channel });
      }
    },
    /** The flows snapshot arrives in chunks; the last one delivers it whole. */
    chunk(m: Extract<WsServerMessage, { type: 'flows-chunk' }>): void {
      snapshot = [...(snapshot ?? []), ...m.flows];
      if (m.last) {
        const flows = snapshot;
        snapshot = null;
        emit('flows', { kind: 'snapshot', flows });
      }
    },
    lost(reason: string): void {
      snapshot = null;
      emit('helperStatus', { connection: 'connecting', state: lastStatus.state, error: reason });
    },
  };
}

/** A message of a session that is ready (the first ready is the socket's). */
function deliver(
  m: WsServerMessage,
  calls: ReturnType<typeof createCalls>,
  subscriptions: ReturnType<typeof createSubscriptions>,
): void {
  switch (m.type) {
    case 'ready':
      return;
    case 'result':
      calls.settle(m);
      return;
    case 'flows-chunk':
      subscriptions.chunk(m);
      return;
    case 'push':
      subscriptions.emit(m.channel, m.payload);
      return;
  }
}

/**
 * Opens the connection; resolves once the host accepted the token, rejects if
 * it refused it (or could not be reached at all).
 */
export function connectWsApi(options: WsApiOptions): Promise<PortcullisApi> {
  let ws: PageSocket | null = null;
  let ready = false;
  let refused = false;
  let attempt = 0;

  const sendRaw: Send = (m) => {
    if (!ws || !ready || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(m));
    return true;
  };
  const calls = createCalls(sendRaw, options.callTimeoutMs ?? 30_000);
  const subscriptions = createSubscriptions(sendRaw);
  const api: PortcullisApi = { ...calls.api, ...subscriptions.api };

  const lost = (reason: string): void => {
    ready = false;
    calls.failAll(reason);
    subscriptions.lost(reason);
  };

  return new Promise<PortcullisApi>((resolve, reject) => {
    let settled = false;
    const open = (): void => {
      const socket = options.socket(options.url);
      ws = socket;
      let opened = false;
      socket.onopen = () => {
        opened = true;
        socket.send(
          JSON.stringify({ type: 'hello', session: options.session } satisfies WsClientMessage),
        );
      };
      socket.onmessage = (event) => {
        if (typeof event.data !== 'string') return;
        const m = parseServerMessage(event.data);
        if (!m) return;
        if (m.type === 'ready' && !ready) {
          ready = true;
          attempt = 0;
          subscriptions.renew();
          if (!settled) {
            settled = true;
            resolve(api);
          }
          return;
        }
        deliver(m, calls, subscriptions);
      };
      socket.onclose = (event) => void closed(socket, event.code, opened);
    };

    const closed = async (socket: PageSocket, code: number, opened: boolean): Promise<void> => {
      if (ws !== socket) return;
      if (code === WS_CLOSE_BAD_SESSION) refused = true;
      else if (!opened && options.sessionAlive) {
        refused = !(await options.sessionAlive().catch(() => true));
        if (ws !== socket) return;
      }
      const reason = refused ? REFUSED : 'lost the connection to the web host';
      lost(reason);
      if (!settled) {
        settled = true;
        reject(unavailable(reason));
        return;
      }
      if (refused) return;
      const delay = Math.min(5000, 250 * 2 ** attempt++);
      setTimeout(open, delay);
    };

    open();
  });
}

/** What exchangeCode needs of the page's fetch. */
export type PageFetch = (
  url: string,
  init: {
    method: 'POST';
    headers: Record<string, string>;
    body: string;
    credentials: 'same-origin';
  },
) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

/**
 * Exchanges the one-time code of the page's URL (`#code=...`) for a session:
 * the host sets the session cookie and answers the secret the hello carries.
 * Rejects (code `refused`) if the code was used already, has expired or is
 * unknown.
 */
export async function exchangeCode(code: string, fetchFn: PageFetch): Promise<string> {
  const res = await fetchFn(WEB_SESSION_PATH, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ code }),
    credentials: 'same-origin',
  });
  const body = (await res.json().catch(() => null)) as {
    session?: unknown;
    error?: unknown;
  } | null;
  if (!res.ok || typeof body?.session !== 'string') {
    const why = typeof body?.error === 'string' ? body.error : `HTTP ${res.status}`;
    throw new ApiError({
      name: 'ApiError',
      message: `the web host refused this link: ${why} (run \`portcullis ui link\` for a new link)`,
      code: 'refused',
    });
  }
  return body.session;
}
