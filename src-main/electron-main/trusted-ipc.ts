/**
 * The only door from the renderer into main (VS Code's validated ipcMain,
 * GitHub Desktop's trusted senders). A message is used only when:
 *
 * - its channel has our prefix and was registered here;
 * - it comes from a webContents we created (ids added by trust(), removed
 *   when the contents are destroyed);
 * - its sender frame is that contents' top-level frame and its URL has our
 *   origin (app://portcullis), so neither an iframe nor a page we were
 *   navigated away to (navigation is denied anyway) can call us;
 * - its payload passes the channel's validator.
 *
 * Results go back as data, `{ ok: true, result } | { ok: false, error }`
 * (the ApiResult of src-main/common/api.ts): Electron carries only `message`
 * of a thrown Error across invoke.
 */
import type { IpcMain, IpcMainEvent, IpcMainInvokeEvent, WebContents } from 'electron';
import type {
  ApiErrorData,
  ApiResult,
  InvokeArg,
  InvokeChannel,
  InvokeResult,
  PushChannel,
  PushChannels,
} from '../common/api.js';
import { APP_ORIGIN } from './security.js';

const CHANNEL_PREFIX = 'portcullis:';

/** Turns an unknown payload into T or throws (a valibot parse, for instance). */
export type Validator<T> = (payload: unknown) => T;

/**
 * Renderer -> main one-way messages (ipcRenderer.send), by channel: their
 * payload. The preload asks for a push channel's events with these.
 */
export interface SendChannels {
  subscribe: PushChannel;
  unsubscribe: PushChannel;
}
export type SendChannel = keyof SendChannels;

export interface RejectedMessage {
  channel: string;
  reason: string;
}

type SenderEvent = Pick<IpcMainInvokeEvent | IpcMainEvent, 'sender' | 'senderFrame'>;

export class TrustedIpc {
  private readonly trusted = new Set<number>();
  private readonly channels = new Set<string>();

  constructor(
    private readonly ipcMain: IpcMain,
    private readonly onReject: (r: RejectedMessage) => void = () => undefined,
  ) {}

  /** Our windows' contents; forgotten when destroyed. */
  trust(contents: WebContents): void {
    const id = contents.id;
    this.trusted.add(id);
    contents.once('destroyed', () => this.trusted.delete(id));
  }

  /** Why an event's sender is not acceptable, or null. */
  senderProblem(event: SenderEvent): string | null {
    if (!this.trusted.has(event.sender.id)) return 'unknown webContents';
    const frame = event.senderFrame;
    if (!frame) return 'no sender frame (navigated or destroyed)';
    if (frame.parent !== null || frame !== event.sender.mainFrame) return 'not the top-level frame';
    let url: URL;
    try {
      url = new URL(frame.url);
    } catch {
      return 'sender URL unparseable';
    }
    // URL.origin is "null" for non-special schemes: compare protocol and host.
    const origin = `${url.protocol}//${url.host}`;
    if (origin !== APP_ORIGIN) return `foreign origin ${origin}`;
    return null;
  }

  /** A request/response operation (ipcRenderer.invoke) of the api.ts channel map. */
  handle<K extends InvokeChannel>(
    name: K,
    validate: Validator<InvokeArg<K>>,
    fn: (arg: InvokeArg<K>) => Promise<InvokeResult<K>> | InvokeResult<K>,
  ): void {
    const channel = this.register(name);
    this.ipcMain.handle(
      channel,
      async (event, ...args: unknown[]): Promise<ApiResult<InvokeResult<K>>> => {
        const problem = this.senderProblem(event);
        if (problem !== null) {
          this.onReject({ channel, reason: problem });
          // Reject without details: an untrusted caller learns nothing.
          throw new Error('forbidden');
        }
        if (args.length > 1) return failure('invalid', new Error('at most one argument'));
        let arg: InvokeArg<K>;
        try {
          arg = validate(args[0]);
        } catch (error) {
          return failure('invalid', error);
        }
        try {
          return { ok: true, result: await fn(arg) };
        } catch (error) {
          return failure(errorCode(error), error);
        }
      },
    );
  }

  /** A one-way message (ipcRenderer.send), e.g. subscribe/unsubscribe. */
  on<K extends SendChannel>(
    name: K,
    validate: Validator<SendChannels[K]>,
    fn: (arg: SendChannels[K], sender: WebContents) => void,
  ): void {
    const channel = this.register(name);
    this.ipcMain.on(channel, (event, ...args: unknown[]) => {
      const problem = this.senderProblem(event);
      if (problem !== null) {
        this.onReject({ channel, reason: problem });
        return;
      }
      let arg: SendChannels[K];
      try {
        if (args.length > 1) throw new Error('at most one argument');
        arg = validate(args[0]);
      } catch (error) {
        this.onReject({ channel, reason: `invalid payload: ${(error as Error).message}` });
        return;
      }
      fn(arg, event.sender);
    });
  }

  /** Main -> renderer, only to live contents we trust. */
  send<K extends PushChannel>(contents: WebContents, name: K, payload: PushChannels[K]): boolean {
    if (contents.isDestroyed() || !this.trusted.has(contents.id)) return false;
    contents.send(CHANNEL_PREFIX + name, payload);
    return true;
  }

  dispose(): void {
    for (const c of this.channels) {
      this.ipcMain.removeHandler(c);
      this.ipcMain.removeAllListeners(c);
    }
    this.channels.clear();
  }

  private register(name: string): string {
    const channel = CHANNEL_PREFIX + name;
    if (this.channels.has(channel)) throw new Error(`${channel} registered twice`);
    this.channels.add(channel);
    return channel;
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'internal';
}

function failure(code: string, error: unknown): { ok: false; error: ApiErrorData } {
  const e = error instanceof Error ? error : new Error(String(error));
  return { ok: false, error: { name: e.name, message: e.message, code } };
}

/** Validators for the simple cases; channels with domain payloads use the
 * protocol module's schemas. */
export const noArgument: Validator<undefined> = (p) => {
  if (p !== undefined) throw new Error('expected no argument');
  return undefined;
};

export function oneOf<T extends string>(names: readonly T[]): Validator<T> {
  return (p) => {
    if (typeof p !== 'string' || !(names as readonly string[]).includes(p)) {
      throw new Error('unknown name');
    }
    return p as T;
  };
}
