/**
 * The PortcullisApi over the web host's WebSocket (src-main/node/web-host.ts),
 * for a normal browser: what the preload is in Electron. Browser APIs only.
 *
 * The token comes in the URL fragment (`#token=...`), which the browser never
 * sends to a server; it is moved to sessionStorage (so a reload works) and
 * removed from the address bar. A dropped socket is reopened with backoff;
 * subscriptions are renewed (flows and prompts start again with a snapshot)
 * and `helperStatus` says "connecting" meanwhile.
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
  WS_CLOSE_BAD_TOKEN,
  WS_PATH,
  type WsClientMessage,
  type WsServerMessage,
} from '../../../src-main/common/web-protocol.js';

const TOKEN_KEY = 'portcullis.webToken';

export interface WsApiOptions {
  /** ws://127.0.0.1:PORT/ws */
  url: string;
  token: string;
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
export function parseServerMessage(text: string): WsServerMessage | null {
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

/**
 * Opens the connection; resolves once the host accepted the token, rejects if
 * it refused it (or could not be reached at all).
 */
export function connectWsApi(options: WsApiOptions): Promise<PortcullisApi> {
  const callTimeoutMs = options.callTimeoutMs ?? 30_000;
  const listeners = new Map<PushChannel, Set<AnyListener>>();
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let ws: WebSocket | null = null;
  let ready = false;
  let refused = false;
  let attempt = 0;
  let snapshot: Flow[] | null = null;
  let lastStatus: HelperStatus = { connection: 'connecting', state: null, error: null };

  const emit = (channel: PushChannel, payload: PushChannels[PushChannel]): void => {
    if (channel === 'helperStatus') lastStatus = payload as HelperStatus;
    for (const l of [...(listeners.get(channel) ?? [])]) l(payload);
  };

  const sendRaw = (m: WsClientMessage): boolean => {
    if (!ws || !ready || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(m));
    return true;
  };

  const onMessage = (m: WsServerMessage): void => {
    switch (m.type) {
      case 'ready':
        return;
      case 'result': {
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.ok) p.resolve(m.result === null ? undefined : m.result);
        else p.reject(new ApiError(m.error));
        return;
      }
      case 'flows-chunk':
        snapshot = [...(snapshot ?? []), ...m.flows];
        if (m.last) {
          const flows = snapshot;
          snapshot = null;
          emit('flows', { kind: 'snapshot', flows });
        }
        return;
      case 'push':
        emit(m.channel, m.payload);
        return;
    }
  };

  const lost = (reason: string): void => {
    ready = false;
    snapshot = null;
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      p.reject(unavailable(reason));
      pending.delete(id);
    }
    emit('helperStatus', { connection: 'connecting', state: lastStatus.state, error: reason });
  };

  return new Promise<PortcullisApi>((resolve, reject) => {
    let settled = false;
    const open = (): void => {
      const socket = new WebSocket(options.url);
      ws = socket;
      socket.onopen = () => {
        socket.send(
          JSON.stringify({ type: 'hello', token: options.token } satisfies WsClientMessage),
        );
      };
      socket.onmessage = (event: MessageEvent) => {
        if (typeof event.data !== 'string') return;
        const m = parseServerMessage(event.data);
        if (!m) return;
        if (m.type === 'ready' && !ready) {
          ready = true;
          attempt = 0;
          for (const [channel, set] of listeners) {
            if (set.size > 0) sendRaw({ type: 'subscribe', channel });
          }
          if (!settled) {
            settled = true;
            resolve(api);
          }
          return;
        }
        onMessage(m);
      };
      socket.onclose = (event: CloseEvent) => {
        if (ws !== socket) return;
        if (event.code === WS_CLOSE_BAD_TOKEN) refused = true;
        const reason = refused
          ? 'the web host refused this page (open the URL it printed)'
          : 'lost the connection to the web host';
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
    };

    const invoke = (channel: keyof InvokeChannels, arg: unknown): Promise<unknown> =>
      new Promise((res, rej) => {
        const id = nextId++;
        const m: WsClientMessage =
          arg === undefined
            ? { type: 'invoke', id, channel }
            : { type: 'invoke', id, channel, arg };
        if (!sendRaw(m)) {
          rej(unavailable('not connected to the web host'));
          return;
        }
        const timer = setTimeout(() => {
          pending.delete(id);
          rej(
            new ApiError({ name: 'ApiError', message: `${channel}: timed out`, code: 'timeout' }),
          );
        }, callTimeoutMs);
        pending.set(id, { resolve: res, reject: rej, timer });
      });

    const invokeApi = Object.fromEntries(
      INVOKE_CHANNELS.map((channel) => [channel, (arg?: unknown) => invoke(channel, arg)]),
    ) as unknown as InvokeChannels;

    const subscribeApi = Object.fromEntries(
      PUSH_CHANNELS.map((channel) => [
        subscribeMethod(channel),
        (listener: AnyListener) => {
          let set = listeners.get(channel);
          if (!set) listeners.set(channel, (set = new Set()));
          const first = set.size === 0;
          set.add(listener);
          if (first) sendRaw({ type: 'subscribe', channel });
          else if (channel === 'helperStatus') listener(lastStatus);
          return () => {
            if (!set.delete(listener)) return;
            if (set.size === 0) sendRaw({ type: 'unsubscribe', channel });
          };
        },
      ]),
    ) as unknown as SubscribeApi;

    const api: PortcullisApi = { ...invokeApi, ...subscribeApi };
    open();
  });
}

/**
 * Installs window.portcullis from the web host, when the page was not given
 * an API (Electron's preload) and was served by the web host.
 */
export async function installWsApi(): Promise<void> {
  if (window.portcullis) return;
  const params = new URLSearchParams(window.location.hash.slice(1));
  const fromUrl = params.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    // Out of the address bar, the history and any screenshot.
    history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  const token = fromUrl ?? sessionStorage.getItem(TOKEN_KEY);
  if (!token || window.location.protocol !== 'http:') return;
  const url = `ws://${window.location.host}${WS_PATH}`;
  window.portcullis = await connectWsApi({ url, token });
}
