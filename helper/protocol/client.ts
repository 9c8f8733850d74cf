/**
 * The client end of the helper's socket, for the CLI and Electron main (Node
 * only: no Electron imports). Every frame from the helper is validated with
 * the same schemas the helper used, and calls are typed from the method map:
 *
 *   const client = await IpcClient.connect({ path, token });
 *   const rule = await client.call('rules.add', input); // Rule
 *   const off = client.on('prompts', (e) => ...);       // PromptsEvent
 *   await client.call('subscribe', { topics: ['prompts'] });
 *   await client.close();
 */
import { connect, type Socket } from 'node:net';
import * as v from 'valibot';
import { IpcError, type ErrorCode } from './errors.js';
import { FrameDecoder, FrameError, encodeFrame, parseFramePayload } from './framing.js';
import {
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  ServerFrame,
  isTopicName,
  methods,
  topics,
  type ClientHello,
  type MethodName,
  type ParamsInput,
  type Result,
  type ServerHello,
  type TopicData,
  type TopicName,
} from './messages.js';

export interface ConnectOptions {
  /** The helper's socket (DEFAULT_SOCKET_PATH in helper/server/paths.ts). */
  path: string;
  /** The per-launch token. */
  token: string;
  /** This client's build, sent in its Hello. */
  build?: string;
  /** For connect + Hello. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Default timeout of call(). Default 30000 ms. */
  callTimeoutMs?: number;
  maxFrameBytes?: number;
}

export interface CallOptions {
  timeoutMs?: number;
}

/** Methods whose params may be left out take them as an optional argument. */
export type CallArgs<M extends MethodName> =
  undefined extends ParamsInput<M>
    ? [params?: ParamsInput<M>, options?: CallOptions]
    : [params: ParamsInput<M>, options?: CallOptions];

type Listener<T> = (data: T) => void;

interface PendingCall {
  method: MethodName;
  resolve(value: unknown): void;
  reject(error: IpcError): void;
  timer: NodeJS.Timeout;
}

export class IpcClient {
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, PendingCall>();
  private readonly listeners = new Map<TopicName, Set<Listener<never>>>();
  private readonly closeListeners = new Set<(error: IpcError | null) => void>();
  private readonly errorListeners = new Set<(error: IpcError) => void>();
  private nextId = 1;
  private closeError: IpcError | null = null;
  private isClosed = false;
  private readonly callTimeoutMs: number;
  /** The helper's Hello: protocol version, build and pid. */
  server!: ServerHello;

  private constructor(
    private readonly socket: Socket,
    options: ConnectOptions,
  ) {
    this.decoder = new FrameDecoder(options.maxFrameBytes ?? MAX_FRAME_BYTES);
    this.callTimeoutMs = options.callTimeoutMs ?? 30_000;
  }

  /** Connects and completes the Hello; rejects with IpcError (e.g.
   * `forbidden`, `bad-token`, `protocol-mismatch`, `timeout`, `closed`). */
  static connect(options: ConnectOptions): Promise<IpcClient> {
    return new Promise<IpcClient>((resolve, reject) => {
      const socket = connect(options.path);
      const client = new IpcClient(socket, options);
      let settled = false;
      const settle = (error: IpcError | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) {
          client.shutdown(error);
          reject(error);
        } else resolve(client);
      };
      const timer = setTimeout(
        () => settle(new IpcError('timeout', `no Hello from ${options.path} in time`)),
        options.connectTimeoutMs ?? 5000,
      );
      socket.on('connect', () => {
        const hello: ClientHello = {
          type: 'hello',
          protocol: { ...PROTOCOL_VERSION },
          build: options.build ?? 'unknown',
          token: options.token,
        };
        socket.write(encodeFrame(hello));
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        const ipc = new IpcError('closed', `${options.path}: ${error.message}`);
        if (!settled) settle(ipc);
        else client.shutdown(ipc);
      });
      socket.on('close', () => {
        const ipc = client.closeError ?? new IpcError('closed', 'the helper closed the connection');
        if (!settled) settle(ipc);
        else client.shutdown(ipc);
      });
      socket.on('data', (chunk: Buffer) => {
        for (const frame of client.frames(chunk)) {
          if (settled) {
            client.handle(frame);
            continue;
          }
          if (frame.type === 'hello') {
            client.server = frame;
            settle(null);
          } else if (frame.type === 'error') {
            settle(new IpcError(frame.error.code, frame.error.message));
          } else {
            settle(new IpcError('bad-response', `expected the helper's Hello, got ${frame.type}`));
          }
        }
      });
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Calls a method; resolves with its validated result, rejects with IpcError. */
  call<M extends MethodName>(method: M, ...args: CallArgs<M>): Promise<Result<M>> {
    const [params, options] = args;
    if (this.isClosed) {
      return Promise.reject(this.closeError ?? new IpcError('closed', 'the connection is closed'));
    }
    const id = this.nextId++;
    let frame: Buffer;
    try {
      frame = encodeFrame({ type: 'request', id, method, params: params ?? {} });
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      return Promise.reject(new IpcError('invalid-params', `${method}: ${error.message}`));
    }
    return new Promise<Result<M>>((resolve, reject) => {
      const timeoutMs = options?.timeoutMs ?? this.callTimeoutMs;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new IpcError('timeout', `${method}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        method,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer,
      });
      this.socket.write(frame);
    });
  }

  /** Listens to a topic (subscribe with call('subscribe') to receive it). */
  on<T extends TopicName>(topic: T, listener: Listener<TopicData<T>>): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** The connection ended: null after close(), else why. */
  onClose(listener: (error: IpcError | null) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Non-fatal problems: an error frame, an event that failed validation. */
  onError(listener: (error: IpcError) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Closes the connection; pending calls reject with `closed`. */
  close(): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.shutdown(null);
    });
  }

  /** Decodes and validates frames; a helper that breaks the protocol is
   * disconnected (it is a bug or not our helper). */
  private frames(chunk: Buffer): v.InferOutput<typeof ServerFrame>[] {
    const out: v.InferOutput<typeof ServerFrame>[] = [];
    if (this.isClosed) return out;
    for (const item of this.decoder.push(chunk)) {
      let problem: IpcError | undefined;
      if (item.kind === 'oversized') {
        problem = new IpcError('bad-response', `frame of ${item.length} bytes is over the limit`);
      } else {
        try {
          const parsed = v.safeParse(ServerFrame, parseFramePayload(item.payload));
          if (parsed.success) out.push(parsed.output);
          else problem = new IpcError('bad-response', 'the helper sent an invalid frame');
        } catch (error) {
          if (!(error instanceof FrameError)) throw error;
          problem = new IpcError('bad-response', error.message);
        }
      }
      if (problem) {
        this.closeError = problem;
        this.socket.destroy();
        break;
      }
    }
    return out;
  }

  private handle(frame: v.InferOutput<typeof ServerFrame>): void {
    switch (frame.type) {
      case 'response': {
        const call = this.pending.get(frame.id);
        if (!call) return; // timed out already
        this.pending.delete(frame.id);
        clearTimeout(call.timer);
        if (!frame.ok) {
          call.reject(new IpcError(frame.error.code, frame.error.message));
          return;
        }
        const result = v.safeParse(methods[call.method].result, frame.result);
        if (result.success) call.resolve(result.output);
        else call.reject(new IpcError('bad-response', `${call.method}: invalid result`));
        return;
      }
      case 'event': {
        if (!isTopicName(frame.topic)) return; // a newer helper's topic
        const set = this.listeners.get(frame.topic);
        if (!set || set.size === 0) return;
        const data = v.safeParse(topics[frame.topic], frame.data);
        if (!data.success) {
          this.emitError(new IpcError('bad-response', `invalid ${frame.topic} event`));
          return;
        }
        for (const listener of set) (listener as Listener<unknown>)(data.output);
        return;
      }
      case 'error':
        if (frame.fatal) this.closeError = new IpcError(frame.error.code, frame.error.message);
        else this.emitError(new IpcError(frame.error.code, frame.error.message));
        return;
      case 'hello':
        this.emitError(new IpcError('bad-response', 'a second Hello from the helper'));
        return;
    }
  }

  private emitError(error: IpcError): void {
    for (const listener of this.errorListeners) listener(error);
  }

  private shutdown(error: IpcError | null): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeError ??= error;
    const reason = this.closeError ?? new IpcError('closed', 'the connection was closed');
    for (const call of this.pending.values()) {
      clearTimeout(call.timer);
      call.reject(reason);
    }
    this.pending.clear();
    this.socket.destroy();
    for (const listener of this.closeListeners) listener(error === null ? null : reason);
  }
}

/** Whether something accepts connections on the socket path (a helper, or another process). */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export type { ErrorCode };
