// A UDP/TCP traffic agent that runs inside a test's network namespace and is
// driven over stdin/stdout (JSON lines): real sockets, real traffic.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestNetns } from './netns.js';

/** A UDP sender/receiver inside the namespace, driven over stdin/stdout (JSON lines). */
const AGENT = `
const dgram = require('dgram');
const net = require('net');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const host = (c) => c.host || (c.family === 'ipv6' ? '::1' : '127.0.0.1');
require('readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  if (c.op === 'listen') {
    const s = dgram.createSocket(c.family === 'ipv6' ? 'udp6' : 'udp4');
    s.on('message', (m) => out({ ev: 'recv', family: c.family, port: c.port, data: m.toString('hex') }));
    s.bind(c.port, host(c), () => out({ ev: 'bound', family: c.family, port: c.port }));
  } else if (c.op === 'send') {
    const s = dgram.createSocket(c.family === 'ipv6' ? 'udp6' : 'udp4');
    let n = 0;
    const next = () => {
      if (n === c.data.length) { const sport = s.address().port; s.close(); out({ ev: 'sent', tag: c.tag, sport }); return; }
      s.send(Buffer.from(c.data[n++], 'hex'), c.port, host(c), (e) => {
        if (e) out({ ev: 'error', tag: c.tag, code: e.code });
        next();
      });
    };
    next();
  } else if (c.op === 'tcplisten') {
    const srv = net.createServer((sock) => {
      let data = '';
      sock.on('data', (d) => (data += d));
      sock.on('end', () => { out({ ev: 'tcprecv', family: c.family, port: c.port, data: Buffer.from(data).toString('hex') }); sock.end(); });
    });
    srv.listen(c.port, host(c), () => out({ ev: 'bound', family: c.family, port: c.port, tcp: true }));
  } else if (c.op === 'tcpsend') {
    const sock = net.connect(c.port, host(c), () => sock.end(Buffer.from(c.data[0], 'hex')));
    sock.on('error', (e) => out({ ev: 'error', tag: c.tag, code: e.code }));
    sock.on('close', () => out({ ev: 'sent', tag: c.tag }));
    sock.resume();
  }
});
out({ ev: 'ready' });
`;

export interface AgentEvent {
  ev: string;
  family?: string;
  port?: number;
  data?: string;
  tag?: number;
  code?: string;
  sport?: number;
}

export class Agent {
  readonly events: AgentEvent[] = [];
  private readonly proc: ChildProcessWithoutNullStreams;
  private tag = 0;

  constructor(ns: TestNetns) {
    this.proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', AGENT], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    createInterface({ input: this.proc.stdout }).on('line', (l) =>
      this.events.push(JSON.parse(l) as AgentEvent),
    );
    this.proc.stderr.on('data', (d) => console.error(`agent: ${String(d)}`));
  }

  private command(c: object): void {
    this.proc.stdin.write(`${JSON.stringify(c)}\n`);
  }

  async waitFor(pred: (e: AgentEvent) => boolean, ms = 3000): Promise<AgentEvent> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.events.find(pred);
      if (found) return found;
      if (Date.now() > end) throw new Error('agent: expected event did not come');
      await sleep(5);
    }
  }

  async ready(): Promise<void> {
    await this.waitFor((e) => e.ev === 'ready', 10_000);
  }

  async listen(family: 'ipv4' | 'ipv6', port: number, host?: string): Promise<void> {
    this.command({ op: 'listen', family, port, host });
    await this.waitFor((e) => e.ev === 'bound' && e.family === family && e.port === port);
  }

  async tcpListen(family: 'ipv4' | 'ipv6', port: number, host?: string): Promise<void> {
    this.command({ op: 'tcplisten', family, port, host });
    await this.waitFor((e) => e.ev === 'bound' && e.family === family && e.port === port);
  }

  /** Connects, sends the text, closes; resolves when the connection is closed. */
  async tcpSend(family: 'ipv4' | 'ipv6', port: number, text: string, host?: string): Promise<void> {
    const tag = ++this.tag;
    this.command({
      op: 'tcpsend',
      family,
      port,
      host,
      tag,
      data: [Buffer.from(text).toString('hex')],
    });
    await this.waitFor((e) => e.ev === 'sent' && e.tag === tag, 10_000);
  }

  tcpReceived(family: 'ipv4' | 'ipv6', port: number): string[] {
    return this.events
      .filter((e) => e.ev === 'tcprecv' && e.family === family && e.port === port)
      .map((e) => Buffer.from(e.data!, 'hex').toString());
  }

  /** Sends to a given address. */
  async sendTo(
    family: 'ipv4' | 'ipv6',
    host: string,
    port: number,
    ...texts: string[]
  ): Promise<void> {
    const tag = ++this.tag;
    this.command({
      op: 'send',
      family,
      host,
      port,
      tag,
      data: texts.map((t) => Buffer.from(t).toString('hex')),
    });
    await this.waitFor((e) => e.ev === 'sent' && e.tag === tag);
  }

  /** Sends datagrams (texts) from one socket and waits until they are passed to the
   * kernel; resolves with the sender's source port. */
  async send(family: 'ipv4' | 'ipv6', port: number, ...texts: string[]): Promise<number> {
    const tag = ++this.tag;
    this.command({
      op: 'send',
      family,
      port,
      tag,
      data: texts.map((t) => Buffer.from(t).toString('hex')),
    });
    const sent = await this.waitFor((e) => e.ev === 'sent' && e.tag === tag);
    return sent.sport!;
  }

  received(family: 'ipv4' | 'ipv6', port: number): string[] {
    return this.events
      .filter((e) => e.ev === 'recv' && e.family === family && e.port === port)
      .map((e) => Buffer.from(e.data!, 'hex').toString());
  }

  stop(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
