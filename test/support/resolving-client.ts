import { spawn } from 'node:child_process';
import type { TestNetns } from './netns.js';
import { Peer } from './tcp-peers.js';

/**
 * A program in a namespace: resolves a name with the given DNS server (c-ares), then
 * connects to the address and port, exchanges `count` messages and ends (or holds).
 * Its events ('resolved', 'connected', 'echoed', 'end') are JSON lines on stdout.
 */
const PROGRAM = `
const dns = require('dns');
const net = require('net');
const [server, name, port, count, hold, timeout] = process.argv.slice(1);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const r = new dns.promises.Resolver({ timeout: 2000, tries: 3 });
r.setServers([server]);
r.resolve4(name).then(([address]) => {
  out({ ev: 'resolved', address, pid: process.pid });
  const s = net.connect({ host: address, port: Number(port) });
  s.setTimeout(Number(timeout));
  s.on('timeout', () => { out({ ev: 'end', ok: false, error: 'ETIMEDOUT' }); process.exit(0); });
  s.on('error', (e) => { out({ ev: 'end', ok: false, error: e.code }); process.exit(0); });
  let n = 0;
  s.on('connect', () => { s.setTimeout(0); out({ ev: 'connected', sport: s.localPort }); s.write('m'); });
  s.on('data', () => {
    n++;
    if (n < Number(count)) setTimeout(() => s.write('m'), 20);
    else if (hold !== '1') { out({ ev: 'end', ok: true, replies: n }); s.end(); }
    else out({ ev: 'echoed', replies: n });
  });
  s.on('close', () => { out({ ev: 'end', ok: hold !== '1', closed: true, replies: n }); process.exit(0); });
}, (e) => { out({ ev: 'end', ok: false, error: 'DNS ' + e.code }); process.exit(0); });
`;

export interface ResolvingClientOptions {
  /** Messages to exchange (default 3). */
  count?: number;
  /** Keep the connection open after the exchange. */
  hold?: boolean;
  /** Connect timeout (default 20 s). */
  timeoutMs?: number;
}

/** Starts the program in `ns`: resolve `host` with `dnsServer`, then talk to it on `port`. */
export function resolvingClient(
  ns: TestNetns,
  dnsServer: string,
  host: string,
  port: number,
  options: ResolvingClientOptions = {},
): Peer {
  const proc = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns.name,
      process.execPath,
      '-e',
      PROGRAM,
      dnsServer,
      host,
      String(port),
      String(options.count ?? 3),
      options.hold ? '1' : '0',
      String(options.timeoutMs ?? 20_000),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Peer(proc);
}
