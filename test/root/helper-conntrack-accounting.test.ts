/**
 * `portcullis helper --netns NS` turns on conntrack accounting and timestamps in NS,
 * reports it in its state, keeps the flow table's bytes, packets and start time current,
 * and sets the sysctls back at SIGTERM (or, after a kill -9, at the next helper's SIGTERM);
 * `--no-conntrack-accounting` leaves them alone.
 *
 * Safety: the sysctls are per network namespace. The helper only ever gets `--netns` with
 * a namespace this file created (checked before each start), and the host's values are
 * read before and after each test and must not change. Children are stopped by PID.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IpcClient } from '../../helper/protocol/client.js';
import type { Flow } from '../../helper/protocol/index.js';
import { firewallTestsUnavailable, run, TestNetns } from '../support/netns.js';
import { echoServer, tcpHold, vethPair, type Peer } from '../support/tcp-peers.js';
import { sleep } from '../support/udp-agent.js';
import { helperArgs, HelperProcess, removeHelperRules } from '../support/helper-process.js';

const skip = firewallTestsUnavailable();
if (skip) console.warn(`skipping conntrack accounting root tests: ${skip}`);

const QUEUE = 23;
const PORT = 8090;
const KEYS = ['nf_conntrack_acct', 'nf_conntrack_timestamp'] as const;

/** The host's values: read from this process's own namespace, never written. */
function hostValues(): string[] {
  return KEYS.map((k) => readFileSync(`/proc/sys/net/netfilter/${k}`, 'utf8').trim());
}

describe.skipIf(skip)('conntrack accounting in the helper namespace', () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string };
  let echo: Peer | undefined;
  let dir: string;
  let host: string[];
  const children: HelperProcess[] = [];
  const peers: Peer[] = [];

  /** The values inside our namespace (a short-lived `ip netns exec` child reads them). */
  function nsValues(): string[] {
    return KEYS.map((k) => client.exec('cat', [`/proc/sys/net/netfilter/${k}`]).trim());
  }

  function start(...extra: string[]): HelperProcess & { socket: string } {
    // Only ever a namespace this file created, and one that exists.
    expect(client.name).toMatch(/^pcl-acct-\d+-[0-9a-f]{6}$/u);
    expect(run('ip', ['netns', 'list'])).toContain(client.name);
    const socket = join(dir, `run-${children.length}`, 'helper.sock');
    const h = new HelperProcess([
      ...helperArgs({ netns: client.name, queue: QUEUE, socket, stateDir: join(dir, 'state') }),
      ...extra,
    ]);
    children.push(h);
    return Object.assign(h, { socket });
  }

  /** SIGTERM and the exit status (no SIGKILL: the test checks a clean stop). */
  async function stop(h: HelperProcess): Promise<{ code: number | null }> {
    h.signal('SIGTERM');
    return { code: (await h.exited).code };
  }

  beforeAll(async () => {
    client = new TestNetns('pcl-acct');
    server = new TestNetns('pcl-accts');
    addr = vethPair(client, server);
    echo = await echoServer(server, addr.b, PORT);
    dir = mkdtempSync(join(tmpdir(), 'pcl-acct-'));
  }, 120_000);

  beforeEach(() => {
    host = hostValues();
  });

  afterEach(async () => {
    for (const p of peers.splice(0)) p.stop();
    for (const c of children.splice(0)) {
      c.signal('SIGKILL');
      await c.exited;
    }
    // A helper killed by a failed test leaves them on: the next test starts from off.
    for (const k of KEYS) client.exec('tee', [`/proc/sys/net/netfilter/${k}`], '0\n');
    // Whatever happened in the namespace, the host's values are what they were.
    expect(hostValues()).toEqual(host);
  });

  afterAll(async () => {
    echo?.stop();
    if (client) await removeHelperRules(client.name);
    client?.delete();
    server?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('turns both on in the namespace, reports it, counts a flow, and restores them at SIGTERM', async () => {
    expect(nsValues()).toEqual(['0', '0']); // a new namespace starts with both off
    const h = start();
    await h.ready();
    expect(nsValues()).toEqual(['1', '1']);
    expect(hostValues()).toEqual(host);

    const token = readFileSync(join(h.socket, '..', 'token'), 'utf8').trim();
    const c = await IpcClient.connect({ path: h.socket, token, build: 'acct-test' });
    try {
      expect((await c.call('state.get')).conntrack).toEqual({
        accounting: true,
        timestamps: true,
        enabledByHelper: true,
        optOut: false,
      });
      const flows = new Map<number, Flow>();
      c.on('flows', (e) => {
        if (e.kind === 'snapshot-chunk') for (const f of e.flows) flows.set(f.id, f);
        if (e.kind === 'delta') {
          for (const f of [...e.added, ...e.updated]) flows.set(f.id, f);
          for (const id of e.removed) flows.delete(id);
        }
      });
      await c.call('subscribe', { topics: ['flows'] });
      // No GUI: the no-GUI policy (allow) lets it through; it stays open.
      const p = tcpHold(client, addr.b, PORT, 4);
      peers.push(p);
      await p.next('echoed', 10_000);
      // Events carry no counters: they come with the helper's periodic dump.
      const end = Date.now() + 15_000;
      let flow: Flow | undefined;
      for (;;) {
        flow = [...flows.values()].find((f) => f.dport === PORT && f.protocol === 'tcp');
        if (flow && (flow.packetsOut ?? 0) >= 4 && (flow.bytesIn ?? 0) > 0) break;
        if (Date.now() > end) throw new Error(`no counters: ${JSON.stringify(flow)}`);
        await sleep(100);
      }
      expect(flow.bytesOut).toBeGreaterThan(0);
      expect(flow.packetsIn).toBeGreaterThan(0);
      // The start time comes from the conntrack timestamp (epoch ms, this minute).
      expect(flow.start).not.toBeNull();
      expect(Math.abs(flow.start! - Date.now())).toBeLessThan(60_000);
    } finally {
      await c.close();
    }

    expect(await stop(h)).toEqual({ code: 0 });
    expect(nsValues()).toEqual(['0', '0']);
    expect(
      h.lines.some((l) => / info conntrack: restored .*nf_conntrack_acct value=0/.test(l)),
    ).toBe(true);
  }, 60_000);

  it('after kill -9 they stay on, and the next helper sets them back at its SIGTERM', async () => {
    expect(nsValues()).toEqual(['0', '0']);
    const first = start();
    await first.ready();
    expect(nsValues()).toEqual(['1', '1']);
    first.signal('SIGKILL');
    await first.exited;
    expect(nsValues()).toEqual(['1', '1']); // nobody restored them
    const next = start();
    await next.ready();
    expect(next.lines.join('\n')).toMatch(
      /a previous run left net\/netfilter\/nf_conntrack_acct changed/,
    );
    expect(await stop(next)).toEqual({ code: 0 });
    expect(nsValues()).toEqual(['0', '0']);
  }, 60_000);

  it('--no-conntrack-accounting leaves them off and says so', async () => {
    expect(nsValues()).toEqual(['0', '0']);
    const h = start('--no-conntrack-accounting');
    await h.ready();
    expect(nsValues()).toEqual(['0', '0']);
    const token = readFileSync(join(h.socket, '..', 'token'), 'utf8').trim();
    const c = await IpcClient.connect({ path: h.socket, token, build: 'acct-test' });
    try {
      expect((await c.call('state.get')).conntrack).toEqual({
        accounting: false,
        timestamps: false,
        enabledByHelper: false,
        optOut: true,
      });
    } finally {
      await c.close();
    }
    expect(await stop(h)).toEqual({ code: 0 });
    expect(nsValues()).toEqual(['0', '0']);
  }, 60_000);

  it('values already on stay on after the helper stops', async () => {
    client.exec('tee', ['/proc/sys/net/netfilter/nf_conntrack_timestamp'], '1\n');
    try {
      const h = start();
      await h.ready();
      expect(nsValues()).toEqual(['1', '1']);
      expect(await stop(h)).toEqual({ code: 0 });
      expect(nsValues()).toEqual(['0', '1']);
    } finally {
      client.exec('tee', ['/proc/sys/net/netfilter/nf_conntrack_timestamp'], '0\n');
    }
  }, 60_000);
});
