// TCP peers for the helper's root tests: an echo server and clients, each a child
// `node` process inside a test namespace (asynchronous, so an in-process helper's
// verdict loop keeps running while they wait), driven by JSON lines on stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestNetns } from './netns.js';

const SERVER = `
const net = require('net');
const [host, port] = process.argv.slice(1);
const srv = net.createServer((s) => { s.on('data', (d) => s.write(d)); s.on('error', () => {}); });
srv.listen(Number(port), host, () => process.stdout.write(JSON.stringify({ ev: 'ready' }) + '\\n'));
`;

// Connects, sends \`count\` messages one after another (each echoed), then either closes
// or (hold) keeps the connection open until the peer or the kernel ends it.
const CLIENT = `
const net = require('net');
const [host, port, count, hold, timeout] = process.argv.slice(1);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const t0 = Date.now();
const s = net.connect({ host, port: Number(port) });
s.setTimeout(Number(timeout));
s.on('timeout', () => { out({ ev: 'end', ok: false, error: 'ETIMEDOUT', ms: Date.now() - t0 }); process.exit(0); });
s.on('error', (e) => { out({ ev: 'end', ok: false, error: e.code, ms: Date.now() - t0 }); process.exit(0); });
let n = 0;
s.on('connect', () => {
  s.setTimeout(0);
  out({ ev: 'connected', sport: s.localPort, ms: Date.now() - t0 });
  s.write('m' + n);
});
s.on('data', () => {
  n++;
  if (n < Number(count)) s.write('m' + n);
  else if (hold !== '1') { out({ ev: 'end', ok: true, replies: n, ms: Date.now() - t0 }); s.end(); }
  else out({ ev: 'echoed', replies: n });
});
s.on('close', () => { out({ ev: 'end', ok: hold !== '1', closed: true, replies: n, ms: Date.now() - t0 }); process.exit(0); });
`;

export interface PeerEvent {
  ev: string;
  ok?: boolean;
  error?: string;
  sport?: number;
  replies?: number;
  ms?: number;
}

/** A child process in a namespace whose stdout is JSON lines. */
export class Peer {
  readonly events: PeerEvent[] = [];
  private waiters: (() => void)[] = [];
  /** Every line the child wrote has been read. Not the child's 'exit': a client
   * writes its last event and exits at once, and 'exit' can come before that line. */
  private outputEnded = false;

  constructor(readonly proc: ChildProcess) {
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      this.events.push(JSON.parse(line) as PeerEvent);
      for (const w of this.waiters.splice(0)) w();
    });
    lines.on('close', () => {
      this.outputEnded = true;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** The first event named `ev` (waits for it; rejects after `ms`). */
  async next(ev: string, ms = 10_000): Promise<PeerEvent> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.events.find((e) => e.ev === ev);
      if (found) return found;
      if (this.outputEnded || Date.now() > end) {
        throw new Error(`no '${ev}' event (got ${JSON.stringify(this.events)})`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, end - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Stops this child (by its PID, never by name). */
  stop(): void {
    if (this.proc.exitCode === null && this.proc.pid !== undefined) this.proc.kill('SIGKILL');
  }
}

function spawnIn(ns: TestNetns, script: string, args: string[]): Peer {
  const proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Peer(proc);
}

/** A TCP echo server on host:port in `ns`; resolves once it listens. */
export async function echoServer(ns: TestNetns, host: string, port: number): Promise<Peer> {
  const p = spawnIn(ns, SERVER, [host, String(port)]);
  await p.next('ready');
  return p;
}

/** One TCP client; `count` messages echoed; resolves with its 'end' event. */
export async function tcpExchange(
  ns: TestNetns,
  host: string,
  port: number,
  options: { count?: number; timeoutMs?: number } = {},
): Promise<PeerEvent & { sport?: number }> {
  const p = spawnIn(ns, CLIENT, [
    host,
    String(port),
    String(options.count ?? 3),
    '0',
    String(options.timeoutMs ?? 5000),
  ]);
  try {
    const end = await p.next('end', (options.timeoutMs ?? 5000) + 5000);
    const connected = p.events.find((e) => e.ev === 'connected');
    return { ...end, ...(connected?.sport !== undefined ? { sport: connected.sport } : {}) };
  } finally {
    p.stop();
  }
}

/** A client that connects, exchanges `count` messages and keeps the connection open. */
export function tcpHold(ns: TestNetns, host: string, port: number, count = 2): Peer {
  return spawnIn(ns, CLIENT, [host, String(port), String(count), '1', '5000']);
}

export { vethPair } from './veth.js';
