// A tiny authoritative DNS server (UDP and TCP, Node dgram/net) and a resolver
// client (Node's c-ares), each run inside a test's network namespace.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestNetns } from './netns.js';
import { sleep } from './udp-agent.js';

/** name -> records. `tcpOnly`: over UDP the answer is TC=1 with no records, so a
 * resolver retries over TCP. Addresses are text; TTLs seconds. */
export interface ZoneEntry {
  A?: [string, number][];
  AAAA?: [string, number][];
  CNAME?: [string, number];
  tcpOnly?: boolean;
}
export type Zone = Record<string, ZoneEntry>;

const SERVER = `
const dgram = require('dgram');
const net = require('net');
const [binds, zone] = JSON.parse(process.argv[1]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const u16 = (n) => [n >> 8, n & 0xff];
const u32 = (n) => [n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const encodeName = (name) => [...name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]), 0];
function v6bytes(text) {
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => u16(parseInt(g, 16)));
}
function answer(buf, tcp) {
  const id = buf.readUInt16BE(0);
  let at = 12;
  const labels = [];
  while (buf[at]) { labels.push(buf.subarray(at + 1, at + 1 + buf[at]).toString()); at += buf[at] + 1; }
  at++;
  const qtype = buf.readUInt16BE(at);
  const qend = at + 4;
  const name = labels.join('.').toLowerCase();
  out({ ev: 'query', name, qtype, tcp });
  const question = [...buf.subarray(12, qend)];
  const body = [];
  let count = 0;
  let rcode = 0;
  let tc = 0;
  // Owners are compression pointers to where each name was written.
  const where = { [name]: 12 };
  const entry = zone[name];
  if (!entry) rcode = 3;
  else if (entry.tcpOnly && !tcp) tc = 0x0200;
  else {
    let cur = name;
    while (zone[cur] && zone[cur].CNAME) {
      const [target, ttl] = zone[cur].CNAME;
      const rdata = encodeName(target);
      const start = 12 + question.length + body.length;
      body.push(0xc0 | (where[cur] >> 8), where[cur] & 0xff, ...u16(5), ...u16(1), ...u32(ttl), ...u16(rdata.length));
      where[target] = start + 12;
      body.push(...rdata);
      count++;
      cur = target;
    }
    const want = qtype === 28 ? 'AAAA' : qtype === 1 ? 'A' : undefined;
    for (const [addr, ttl] of (zone[cur] && want && zone[cur][want]) || []) {
      const rdata = want === 'A' ? addr.split('.').map(Number) : v6bytes(addr);
      body.push(0xc0 | (where[cur] >> 8), where[cur] & 0xff, ...u16(qtype), ...u16(1), ...u32(ttl), ...u16(rdata.length), ...rdata);
      count++;
    }
  }
  return Buffer.from([...u16(id), ...u16(0x8580 | tc | rcode), ...u16(1), ...u16(count), 0, 0, 0, 0, ...question, ...body]);
}
let pending = binds.length * 2;
const ready = () => { if (--pending === 0) out({ ev: 'ready' }); };
const sockets = {};
for (const host of binds) {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (m, rinfo) => s.send(answer(m, false), rinfo.port, rinfo.address));
  s.bind(53, host, ready);
  sockets[host] = s;
  net.createServer((c) => {
    let data = Buffer.alloc(0);
    c.on('data', (d) => {
      data = Buffer.concat([data, d]);
      while (data.length >= 2 && data.length >= 2 + data.readUInt16BE(0)) {
        const msg = answer(data.subarray(2, 2 + data.readUInt16BE(0)), true);
        data = data.subarray(2 + data.readUInt16BE(0));
        c.write(Buffer.concat([Buffer.from(u16(msg.length)), msg]));
      }
    });
    c.on('error', () => {});
  }).listen(53, host, ready);
}
// Unsolicited "responses" from port 53, to test that only replies are logged.
require('readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  const fake = Buffer.from(c.hex, 'hex');
  sockets[c.from].send(fake, c.port, c.to, () => out({ ev: 'spoofed' }));
});
`;

export class DnsServer {
  readonly lines: { ev: string; name?: string; qtype?: number; tcp?: boolean }[] = [];
  private readonly proc: ChildProcessWithoutNullStreams;

  constructor(ns: TestNetns, binds: string[], zone: Zone) {
    this.proc = spawn(
      'ip',
      ['netns', 'exec', ns.name, process.execPath, '-e', SERVER, JSON.stringify([binds, zone])],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    createInterface({ input: this.proc.stdout }).on('line', (l) =>
      this.lines.push(JSON.parse(l) as DnsServer['lines'][number]),
    );
    this.proc.stderr.on('data', (d) => console.error(`dns server: ${String(d)}`));
  }

  async ready(): Promise<void> {
    const end = Date.now() + 10_000;
    while (!this.lines.some((l) => l.ev === 'ready')) {
      if (Date.now() > end || this.proc.exitCode !== null)
        throw new Error('dns server did not start');
      await sleep(10);
    }
  }

  queries(): { name?: string; qtype?: number; tcp?: boolean }[] {
    return this.lines.filter((l) => l.ev === 'query');
  }

  /** Sends `hex` from the server's port-53 UDP socket bound to `from`, unasked. */
  async spoof(from: string, to: string, port: number, hex: string): Promise<void> {
    const before = this.lines.filter((l) => l.ev === 'spoofed').length;
    this.proc.stdin.write(`${JSON.stringify({ from, to, port, hex })}\n`);
    const end = Date.now() + 5000;
    while (this.lines.filter((l) => l.ev === 'spoofed').length === before) {
      if (Date.now() > end) throw new Error('spoofed packet not sent');
      await sleep(10);
    }
  }

  stop(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
  }
}

export interface ResolveResult {
  kind: 'A' | 'AAAA';
  name: string;
  res?: { address: string; ttl: number }[];
  error?: string;
}

/** Resolves names with Node's resolver (c-ares: UDP, TCP after TC=1) against `server`,
 * from inside the namespace; returns what the resolver got. */
export function resolveIn(
  ns: TestNetns,
  server: string,
  queries: ['A' | 'AAAA', string][],
): ResolveResult[] {
  const script = `
    const dns = require('dns');
    const [server, queries] = JSON.parse(process.argv[1]);
    const r = new dns.promises.Resolver({ timeout: 2000, tries: 2 });
    r.setServers([server]);
    (async () => {
      const out = [];
      for (const [kind, name] of queries) {
        try {
          const res = kind === 'A' ? await r.resolve4(name, { ttl: true }) : await r.resolve6(name, { ttl: true });
          out.push({ kind, name, res });
        } catch (e) {
          out.push({ kind, name, error: e.code });
        }
      }
      console.log(JSON.stringify(out));
    })();`;
  const r = spawnSync(
    'ip',
    ['netns', 'exec', ns.name, process.execPath, '-e', script, JSON.stringify([server, queries])],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (r.status !== 0) throw new Error(`resolver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ResolveResult[];
}
