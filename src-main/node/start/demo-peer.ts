/**
 * The far end of `portcullis start --demo`, run in the peer namespace: a DNS
 * server answering the demo's names (on an address of its own), a small HTTP
 * server, a TCP echo and a UDP echo on the peer's address. Run as a process of its own
 * (demo-peer-main.ts), so the namespace holds nothing of start's.
 */
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server } from 'node:net';

export const DEMO_NAMES = ['www.demo.test', 'api.demo.test', 'updates.demo.test'];
export const DEMO_PORTS = { http: 80, api: 8080, echo: 7, udp: 9999 } as const;

/** The A answer for a query (RFC 1035 4.1), NXDOMAIN for other names; null if malformed. */
export function dnsAnswer(query: Buffer, names: readonly string[], address: string): Buffer | null {
  if (query.length < 17) return null;
  let at = 12;
  const labels: string[] = [];
  while (at < query.length && query[at]! !== 0) {
    const len = query[at]!;
    if (len > 63 || at + 1 + len >= query.length) return null;
    labels.push(query.subarray(at + 1, at + 1 + len).toString('latin1'));
    at += len + 1;
  }
  const qend = at + 5;
  if (qend > query.length) return null;
  const qtype = query.readUInt16BE(at + 1);
  const known = names.includes(labels.join('.').toLowerCase());
  const answers = known && qtype === 1 ? 1 : 0;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  // QR, AA, RD copied, RA; NXDOMAIN for names the demo does not have.
  header.writeUInt16BE(0x8580 | (known ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers, 6);
  const question = query.subarray(12, qend);
  if (answers === 0) return Buffer.concat([header, question]);
  const rr = Buffer.from([
    0xc0,
    12,
    0,
    1,
    0,
    1,
    0,
    0,
    0,
    60,
    0,
    4,
    ...address.split('.').map(Number),
  ]);
  return Buffer.concat([header, question, rr]);
}

function listening(server: Server, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
}

/** Starts the servers on `address`, DNS on `dnsAddress`; resolves once all listen. */
export async function servePeer(address: string, dnsAddress: string): Promise<void> {
  const dns = createSocket('udp4');
  dns.on('message', (m, from) => {
    const reply = dnsAnswer(m, DEMO_NAMES, address);
    if (reply) dns.send(reply, from.port, from.address);
  });
  const udp = createSocket('udp4');
  udp.on('message', (m, from) => udp.send(m, from.port, from.address));
  const bind = (s: ReturnType<typeof createSocket>, port: number, on = address): Promise<void> =>
    new Promise((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, on, () => resolve());
    });
  const page = (name: string): string =>
    `<!doctype html><title>Portcullis demo</title><p>Hello from ${name}, the demo's peer.</p>\n`;
  const web = (port: number): Server =>
    createHttpServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', Connection: 'close' });
      res.end(page(`${req.headers.host ?? address}:${port}`));
    });
  const echo = createTcpServer((c) => {
    c.on('error', () => c.destroy());
    c.pipe(c);
  });
  await Promise.all([
    bind(dns, 53, dnsAddress),
    bind(udp, DEMO_PORTS.udp),
    listening(web(DEMO_PORTS.http), DEMO_PORTS.http, address),
    listening(web(DEMO_PORTS.api), DEMO_PORTS.api, address),
    listening(echo, DEMO_PORTS.echo, address),
  ]);
}
