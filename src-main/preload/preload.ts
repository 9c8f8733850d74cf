/**
 * The preload: exposes `window.portcullis`, one function per operation and one
 * `onXxx(listener)` per event stream, and nothing else (no generic invoke, no
 * ipcRenderer, no Node). It runs sandboxed, where `require` knows only
 * `electron`: this file imports nothing else at run time and is compiled on
 * its own to CommonJS (tsconfig.preload.json -> dist/preload/preload.js).
 *
 * The channel lists below are the channel map of src-main/common/api.ts. They
 * cannot import it (this file compiles alone, rootDir src-main/preload):
 * test/unit/main/channel-map.test.ts checks them against api.ts's types (both
 * ways) and INVOKE_CHANNELS / PUSH_CHANNELS.
 */
import { contextBridge, ipcRenderer } from 'electron';

const PREFIX = 'portcullis:';

export const INVOKE_NAMES = [
  'killFlow',
  'setFlowMark',
  'setFlowLabels',
  'answerPrompt',
  'listRules',
  'addRule',
  'updateRule',
  'removeRule',
  'setRuleEnabled',
  'importRules',
  'exportRules',
  'dryRunRule',
  'queryHistory',
  'historySeries',
  'getStats',
  'getSettings',
  'setSettings',
  'getHelperStatus',
  'retryHelper',
  'processIcon',
] as const;

export const PUSH_NAMES = [
  'flows',
  'prompts',
  'verdicts',
  'stats',
  'helperStatus',
  'rules',
] as const;

export type InvokeName = (typeof INVOKE_NAMES)[number];
export type PushName = (typeof PUSH_NAMES)[number];
export type SubscribeName = `on${Capitalize<PushName>}`;

export type ExposedApi = Record<InvokeName, (arg?: unknown) => Promise<unknown>> &
  Record<SubscribeName, (listener: (payload: unknown) => void) => () => void>;

interface ErrorData {
  name: string;
  message: string;
  code: string;
}
type Envelope = { ok: true; result: unknown } | { ok: false; error: ErrorData };

/** An Error rebuilt from main's error data (only `message` would survive a throw). */
function rebuild(data: ErrorData): Error {
  const e = new Error(data.message) as Error & { code: string };
  e.name = data.name;
  e.code = data.code;
  return e;
}

function invoker(name: InvokeName): (arg?: unknown) => Promise<unknown> {
  // Arity pinned to one: extra arguments never reach main.
  return async (arg?: unknown) => {
    const args = arg === undefined ? [] : [arg];
    const envelope = (await ipcRenderer.invoke(PREFIX + name, ...args)) as Envelope;
    if (envelope.ok) return envelope.result;
    throw rebuild(envelope.error);
  };
}

function subscribeName(name: PushName): SubscribeName {
  return `on${name.charAt(0).toUpperCase()}${name.slice(1)}` as SubscribeName;
}

function buildApi(): ExposedApi {
  const api: Partial<ExposedApi> = {};
  for (const name of INVOKE_NAMES) api[name] = invoker(name);
  for (const name of PUSH_NAMES) {
    const listeners = new Set<(payload: unknown) => void>();
    // The event object (with its sender) never reaches the page.
    ipcRenderer.on(PREFIX + name, (_event, payload: unknown) => {
      for (const l of listeners) l(payload);
    });
    api[subscribeName(name)] = (listener) => {
      if (typeof listener !== 'function') throw new TypeError('listener must be a function');
      listeners.add(listener);
      // Every subscribe asks main for a fresh snapshot (flows, prompts, status).
      ipcRenderer.send(`${PREFIX}subscribe`, name);
      let active = true;
      return () => {
        if (!active) return;
        active = false;
        listeners.delete(listener);
        if (listeners.size === 0) ipcRenderer.send(`${PREFIX}unsubscribe`, name);
      };
    };
  }
  return api as ExposedApi;
}

contextBridge.exposeInMainWorld('portcullis', buildApi());
