// A real IpcServer on a Unix socket in a temp dir, with the fake service, and
// a raw client that speaks bytes (for the frames a well-behaved client never
// sends). Every test stops what it started: stop() closes the server and
// removes the directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameDecoder, encodeFrame, parseFramePayload } from '../../helper/protocol/framing.js';
import { IpcClient } from '../../helper/protocol/client.js';
import { PROTOCOL_VERSION } from '../../helper/protocol/messages.js';
import { IpcServer } from '../../helper/server/server.js';
import type { IpcServerOptions, ServerLogEntry } from '../../helper/server/options.js';
import { FakeHelperService } from './fake-helper-service.js';

export const TOKEN = 'test-token-0123456789';

export interface Harness {
  server: IpcServer;
  service: FakeHelperService;
  dir: string;
  path: string;
  logs: ServerLogEntry[];
  client(token?: string): Promise<IpcClient>;
  raw(): Promise<RawClient>;
  /** After `server.close()`: the helper comes back, a new server on the same socket and service. */
  listenAgain(): Promise<IpcServer>;
  stop(): Promise<void>;
}

export async function startHarness(overrides: Partial<IpcServerOptions> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-ipc-'));
  const path = join(dir, 'run', 'helper.sock');
  const service = new FakeHelperService();
  const logs: ServerLogEntry[] = [];
  const clients: IpcClient[] = [];
  const raws: RawClient[] = [];
  const listen = (): Promise<IpcServer> =>
    IpcServer.listen({
      path,
      service,
      token: TOKEN,
      allowedUids: [process.getuid!()],
      socketGroup: process.getgid!(),
      build: 'test',
      log: (e) => void logs.push(e),
      ...overrides,
    });
  let server: IpcServer;
  try {
    server = await listen();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    server,
    service,
    dir,
    path,
    logs,
    async client(token = TOKEN) {
      const c = await IpcClient.connect({ path, token, build: 'test-client' });
      clients.push(c);
      return c;
    },
    async raw() {
      const r = await RawClient.connect(path);
      raws.push(r);
      return r;
    },
    listenAgain: listen,
    async stop() {
      for (const c of clients) await c.close();
      for (const r of raws) r.socket.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A client that sends whatever bytes it is given and records what comes back. */
export class RawClient {
  readonly frames: unknown[] = [];
  /** Payload size of each frame, in order. */
  readonly sizes: number[] = [];
  private readonly decoder = new FrameDecoder();
  private waiters: (() => void)[] = [];
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const item of this.decoder.push(chunk)) {
        if (item.kind !== 'frame') continue;
        this.sizes.push(item.payload.length);
        this.frames.push(parseFramePayload(item.payload));
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  send(value: unknown): void {
    this.socket.write(encodeFrame(value));
  }

  sendBytes(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  hello(token = TOKEN, protocol: { major: number; minor: number } = PROTOCOL_VERSION): void {
    this.send({ type: 'hello', protocol, build: 'raw', token });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until a received frame matches (scanning from `from`); returns it. */
  async waitFor(
    match: (frame: Record<string, unknown>) => boolean,
    timeoutMs = 5000,
    from = 0,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames
        .slice(from)
        .find((f) => typeof f === 'object' && f !== null && match(f as Record<string, unknown>));
      if (found) return found as Record<string, unknown>;
      if (this.closed)
        throw new Error(
          `closed before a matching frame: ${JSON.stringify(this.frames).slice(0, 500)}`,
        );
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got ${JSON.stringify(this.frames).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** An error frame or error response with this code. */
export function errorCode(code: string) {
  return (f: Record<string, unknown>): boolean =>
    (f['type'] === 'error' || f['type'] === 'response') &&
    (f['error'] as { code?: string } | undefined)?.code === code;
}

/** Resolves on the next turn after pending I/O (lets the server pump). */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export async function until(
  check: () => boolean,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
