/**
 * How a denial reaches the program, with real sockets: the Interceptor (whichever backend
 * `auto` picks: iptables here, nft under the VM kernels) in a client namespace joined to a
 * server namespace by a veth pair. A deny refuses: TCP gets a reset (connect() fails with
 * ECONNREFUSED at once), UDP an ICMP administratively prohibited (the connected socket's
 * next recv fails); a deny with `denyWith: 'drop'` is silent (connect() times out).
 */
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Interceptor } from '../../helper/daemon/interceptor.js';
import { silentLogger } from '../../helper/daemon/log.js';
import type { Decision, DecisionRecord } from '../../helper/daemon/ports.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';
import { echoServer, vethPair, type Peer } from '../support/tcp-peers.js';

function missing(): string | undefined {
  const root = rootTestsUnavailable();
  if (root) return root;
  for (const bin of ['iptables-nft', 'conntrack', 'python3']) {
    const args = bin === 'python3' ? ['--version'] : ['-V'];
    if (spawnSync(bin, args).error) return `${bin} is not installed`;
  }
  return undefined;
}
const skip = missing();
if (skip) console.warn(`skipping deny/reject root tests: ${skip}`);

const QUEUE = 23;
const OPEN_PORT = 8090; // an echo server listens: allowed connects succeed
const CLOSED_UDP_PORT = 8091; // nothing listens: an allowed datagram gets port unreachable

/**
 * One probe in the client namespace, printing what the program saw: "connected", "data",
 * "timeout" or the errno name. TCP: connect; UDP: a connected socket sends, then recv.
 */
const PROBE = `
import errno, socket, sys
proto, family, host, port, wait = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
af = socket.AF_INET6 if family == '6' else socket.AF_INET
s = socket.socket(af, socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM)
s.settimeout(wait)
try:
    s.connect((host, port))
    if proto == 'tcp':
        print('connected')
    else:
        s.send(b'ping')
        s.recv(100)
        print('data')
except socket.timeout:
    print('timeout')
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
`;

/** Runs the probe without blocking this process's event loop (the Interceptor runs here). */
function probe(
  ns: TestNetns,
  proto: 'tcp' | 'udp',
  host: string,
  port: number,
  waitSeconds = 5,
): Promise<string> {
  const family = host.includes(':') ? '6' : '4';
  const child = spawn('ip', [
    ...['netns', 'exec', ns.name, 'python3', '-c', PROBE],
    ...[proto, family, host, String(port), String(waitSeconds)],
  ]);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`probe exited ${code}: ${err}`));
      else resolve(out.trim());
    });
  });
}

describe.skipIf(skip)('denials as the program sees them (two namespaces, veth)', () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string; b6?: string };
  let echo: Peer;
  const running: Interceptor[] = [];

  beforeAll(async () => {
    client = new TestNetns('pcl-dr');
    server = new TestNetns('pcl-drs');
    addr = vethPair(client, server, { v6: '2001:db8:18::' });
    echo = await echoServer(server, addr.b, OPEN_PORT);
  });
  afterEach(async () => {
    for (const i of running.splice(0)) await i.stop();
    client.exec('conntrack', ['-F']);
  });
  afterAll(() => {
    echo?.stop();
    client?.delete();
    server?.delete();
  });

  async function start(decide: () => Decision, records: DecisionRecord[]): Promise<Interceptor> {
    const i = new Interceptor({
      netns: client.name,
      queue: QUEUE,
      policy: {
        defaultAction: 'allow',
        decisionTimeoutMs: 5000,
        failClosed: false,
        inbound: false,
      },
      decider: { decide: () => Promise.resolve(decide()) },
      log: silentLogger,
      sinks: [{ record: (e) => records.push(e) }],
    });
    running.push(i);
    await i.start();
    return i;
  }

  it('the probes work while everything is allowed (the server answers)', async () => {
    const records: DecisionRecord[] = [];
    await start(() => ({ action: 'allow', reason: 'rule', ruleId: 'r' }), records);
    expect(await probe(client, 'tcp', addr.b, OPEN_PORT)).toBe('connected');
    // An allowed datagram to a closed port: the server's port unreachable, not ours.
    expect(await probe(client, 'udp', addr.b, CLOSED_UDP_PORT)).toBe('ECONNREFUSED');
    expect(records.map((r) => r.action)).toEqual(['allow', 'allow']);
  });

  it('deny (default reject): TCP connect is refused at once, UDP gets ICMP admin prohibited', async () => {
    const records: DecisionRecord[] = [];
    const i = await start(() => ({ action: 'deny', reason: 'rule', ruleId: 'r' }), records);
    // A reset from our rule, although the server listens and would have accepted.
    expect(await probe(client, 'tcp', addr.b, OPEN_PORT, 20)).toBe('ECONNREFUSED');
    // ICMP administratively prohibited: EHOSTUNREACH (the server would say ECONNREFUSED).
    expect(await probe(client, 'udp', addr.b, CLOSED_UDP_PORT, 20)).toBe('EHOSTUNREACH');
    // IPv6: icmp6 adm-prohibited, which Linux reports as EACCES.
    expect(await probe(client, 'tcp', addr.b6!, OPEN_PORT, 20)).toBe('ECONNREFUSED');
    expect(await probe(client, 'udp', addr.b6!, CLOSED_UDP_PORT, 20)).toBe('EACCES');
    // One decision per attempt: a refused SYN is not retransmitted.
    expect(records.map((r) => [r.action, r.request.protocol])).toEqual([
      ['deny', 'tcp'],
      ['deny', 'udp'],
      ['deny', 'tcp'],
      ['deny', 'udp'],
    ]);
    expect(i.counters.denied).toBe(4);
  });

  it('deny with denyWith drop: silent, the connect waits for its own timeout', async () => {
    const records: DecisionRecord[] = [];
    const i = await start(
      () => ({ action: 'deny', denyWith: 'drop', reason: 'rule', ruleId: 'quiet' }),
      records,
    );
    expect(await probe(client, 'tcp', addr.b, OPEN_PORT, 3)).toBe('timeout');
    expect(await probe(client, 'udp', addr.b, CLOSED_UDP_PORT, 2)).toBe('timeout');
    // The SYN's retransmits were dropped again without a second decision.
    expect(records.map((r) => [r.action, r.ruleId])).toEqual([
      ['deny', 'quiet'],
      ['deny', 'quiet'],
    ]);
    expect(i.counters.repeated).toBeGreaterThanOrEqual(1);
  });
});
