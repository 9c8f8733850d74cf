// One child process per socket role, inside a test's network namespace, so
// that each socket has a known owner pid: driven by argv, it reports over
// stdout (JSON lines) and lives until stopped.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestNetns } from './netns.js';

/** The child's program: argv = [role, ...parameters]. */
export const SOCKET_CHILD = `
const net = require('net');
const dgram = require('dgram');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const [role, a, b, c] = process.argv.slice(1);
const keep = [];
if (role === 'tcp-listen') {
  const srv = net.createServer((sock) => {
    keep.push(sock);
    out({ ev: 'accepted', port: sock.remotePort });
    sock.on('error', (e) => out({ ev: 'error', code: e.code }));
    sock.on('close', () => out({ ev: 'closed' }));
    sock.resume();
  });
  srv.listen(Number(b), a, () => out({ ev: 'ready', port: srv.address().port }));
} else if (role === 'tcp-connect') {
  const sock = net.connect(Number(b), a, () => out({ ev: 'ready', port: sock.localPort, address: sock.localAddress }));
  sock.on('error', (e) => out({ ev: 'error', code: e.code }));
  sock.on('close', () => out({ ev: 'closed' }));
  sock.resume();
  keep.push(sock);
} else if (role === 'udp-send') {
  // Unconnected: send() with an address, never connect().
  const s = dgram.createSocket(c === 'ipv6' ? 'udp6' : 'udp4');
  s.on('error', (e) => out({ ev: 'error', code: e.code }));
  s.send(Buffer.from('hello'), Number(b), a, (e) => {
    if (e) out({ ev: 'error', code: e.code });
    else out({ ev: 'ready', port: s.address().port, address: s.address().address });
  });
  keep.push(s);
}
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
`;

export interface ChildEvent {
  ev: string;
  port?: number;
  address?: string;
  code?: string;
}

export class SocketChild {
  readonly events: ChildEvent[] = [];
  readonly proc: ChildProcessWithoutNullStreams;
  /** The argv the child runs with (after any setpriv): for /proc assertions. */
  readonly argv: string[];
  readonly exited: Promise<number | null>;

  /** `asUser`: run as that uid/gid through setpriv (no supplementary groups). */
  constructor(ns: TestNetns, args: string[], asUser?: { uid: number; gid: number }) {
    this.argv = [process.execPath, '-e', SOCKET_CHILD, ...args];
    const prefix = asUser
      ? ['setpriv', `--reuid=${asUser.uid}`, `--regid=${asUser.gid}`, '--clear-groups']
      : [];
    // `ip netns exec` and setpriv exec the next program: the pid is node's.
    this.proc = spawn('ip', ['netns', 'exec', ns.name, ...prefix, ...this.argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
    createInterface({ input: this.proc.stdout }).on('line', (l) =>
      this.events.push(JSON.parse(l) as ChildEvent),
    );
    this.proc.stderr.on('data', (d) => console.error(`socket child: ${String(d)}`));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  async waitFor(pred: (e: ChildEvent) => boolean, ms = 5000): Promise<ChildEvent> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.events.find(pred);
      if (found) return found;
      if (this.proc.exitCode !== null) throw new Error(`socket child exited ${this.proc.exitCode}`);
      if (Date.now() > end) throw new Error('socket child: expected event did not come');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Resolves with the 'ready' event (the socket is set up). */
  ready(): Promise<ChildEvent> {
    return this.waitFor((e) => e.ev === 'ready', 10_000);
  }

  /** Ends the child (closing stdin, then SIGKILL by pid) and waits for its exit. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
    await this.exited;
    clearTimeout(timer);
  }
}
