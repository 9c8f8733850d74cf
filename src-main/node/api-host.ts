/**
 * Serving a PortcullisApi (the bridge's) through Electron main's trusted IPC,
 * without importing Electron: the registrar and the push sink are structural,
 * so electron-main/ passes its TrustedIpc and its push(), and tests pass fakes.
 *
 * - Every invoke channel is registered with the valibot validator of its
 *   argument (invoke-args.ts: the same checks as the web host), except the
 *   ones main serves itself (`skip`).
 * - Every push channel is forwarded; `subscribed(channel)` replays the
 *   current snapshot (flows, prompts) or status when a window subscribes.
 * - The pending prompts feed the tray count and the notices.
 */
import {
  INVOKE_CHANNELS,
  PUSH_CHANNELS,
  subscribeMethod,
  type InvokeArg,
  type InvokeChannel,
  type InvokeResult,
  type PortcullisApi,
  type Prompt,
  type PushChannel,
  type PushChannels,
  type Unsubscribe,
} from '../common/api.js';
import type { PromptSummary } from '../common/prompt-notices.js';
import { checkInvokeArg } from './invoke-args.js';

/** Where invoke channels are served (Electron main's TrustedIpc; a fake in tests). */
export interface InvokeRegistrar {
  handle<K extends InvokeChannel>(
    name: K,
    validate: (payload: unknown) => InvokeArg<K>,
    fn: (arg: InvokeArg<K>) => Promise<InvokeResult<K>>,
  ): void;
}

/** A validator (throws with the first issue) for a channel's argument. */
export function validatorFor<K extends InvokeChannel>(
  channel: K,
): (payload: unknown) => InvokeArg<K> {
  return (payload) => {
    const r = checkInvokeArg(channel, payload);
    if (!r.ok) throw new Error(r.message);
    return r.arg;
  };
}

/** Registers every invoke channel but `skip` on `ipc`, calling `api`. */
export function registerInvokeChannels(
  ipc: InvokeRegistrar,
  api: PortcullisApi,
  skip: readonly InvokeChannel[] = [],
): InvokeChannel[] {
  const done: InvokeChannel[] = [];
  for (const channel of INVOKE_CHANNELS) {
    if (skip.includes(channel)) continue;
    registerInvokeChannel(ipc, api, channel);
    done.push(channel);
  }
  return done;
}

function registerInvokeChannel<K extends InvokeChannel>(
  ipc: InvokeRegistrar,
  api: PortcullisApi,
  channel: K,
): void {
  // TypeScript cannot tie api[K]'s signature to K's argument and result types.
  const fn = api[channel] as unknown as (arg: InvokeArg<K>) => Promise<InvokeResult<K>>;
  ipc.handle(channel, validatorFor(channel), (arg) => fn.call(api, arg));
}

export interface PushForwarder {
  /** A window subscribed: send it what a new subscriber gets first. */
  subscribed(channel: PushChannel): void;
  stop(): void;
}

/**
 * Forwards the api's push channels to `push` (which sends only to windows
 * subscribed to the channel). One subscription per channel is held on the
 * api; a window that subscribes late gets the snapshot replayed.
 */
export function forwardPushChannels(
  api: PortcullisApi,
  push: <K extends PushChannel>(channel: K, payload: PushChannels[K]) => void,
): PushForwarder {
  const latest = new Map<PushChannel, unknown>();
  const offs: Unsubscribe[] = [];
  for (const channel of PUSH_CHANNELS) {
    const on = api[subscribeMethod(channel)] as (l: (p: unknown) => void) => Unsubscribe;
    offs.push(
      on.call(api, (payload) => {
        if (channel === 'helperStatus') latest.set(channel, payload);
        push(channel, payload as PushChannels[typeof channel]);
      }),
    );
  }
  return {
    subscribed(channel) {
      if (channel === 'flows' || channel === 'prompts' || channel === 'helperStatus') {
        // A fresh subscription on the api delivers its snapshot synchronously.
        const on = api[subscribeMethod(channel)] as (l: (p: unknown) => void) => Unsubscribe;
        let first = true;
        const off = on.call(api, (payload) => {
          if (first) push(channel, payload as PushChannels[typeof channel]);
          first = false;
        });
        off();
      }
    },
    stop() {
      for (const off of offs.splice(0)) off();
    },
  };
}

/** What the tray and the notices need from a prompt. */
function promptSummary(p: Prompt): PromptSummary {
  const r = p.request;
  const app = r.process?.comm ?? r.process?.exe ?? 'unknown program';
  const where = r.host ?? r.dst;
  return { id: p.id, app, destination: r.dport === null ? where : `${where}:${r.dport}` };
}

/**
 * Tracks the pending prompts from the api's `prompts` channel and reports
 * them (all pending, and the ids answered since the last report).
 */
export function trackPrompts(
  api: PortcullisApi,
  report: (pending: PromptSummary[], answered: string[]) => void,
): Unsubscribe {
  const pending = new Map<string, Prompt>();
  return api.onPrompts((e) => {
    let answered: string[] = [];
    if (e.kind === 'snapshot') {
      const next = new Set(e.prompts.map((p) => p.id));
      answered = [...pending.keys()].filter((id) => !next.has(id));
      pending.clear();
      for (const p of e.prompts) pending.set(p.id, p);
    } else {
      for (const p of e.upsert) pending.set(p.id, p);
      for (const id of e.remove) if (pending.delete(id)) answered.push(id);
    }
    report([...pending.values()].map(promptSummary), answered);
  });
}
