/**
 * `portcullis helper --netns NS` as a child process (bin/portcullis.js, built by the test run's
 * global setup): verdicts by the no-GUI policy (no client), SIGTERM and
 * SIGINT clean-up, `kill -9` fail-open and the next start's reconcile, --fail-closed.
 * Only the children this file starts are signalled, by PID.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../helper/cli.js';
import { readQueueStats } from '../../helper/nfqueue/stats.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';
import { echoServer, tcpExchange, vethPair, type Peer } from '../support/tcp-peers.js';
import { helperArgs, HelperProcess, removeHelperRules } from '../support/helper-process.js';
import { InterceptionRules } from '../support/interception.js';

function missing(): string | undefined {
  const root = rootTestsUnavailable();
  if (root) return root;
  for (const bin of ['iptables-nft', 'conntrack']) {
    if (spawnSync(bin, ['-V']).error) return `${bin} is not installed`;
  }
  return undefined;
}
const skip = missing();
if (skip) console.warn(`skipping helper CLI root tests: ${skip}`);

const QUEUE = 13;
const PORT = 8080;

describe.skipIf(skip)('portcullis helper (child process, two namespaces)', () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string };
  let echo: Peer | undefined;
  let stateDir: string;
  const children: HelperProcess[] = [];

  function start(...extra: string[]): HelperProcess {
    const h = new HelperProcess([
      ...helperArgs({
        netns: client.name,
        queue: QUEUE,
        socket: join(stateDir, 'run', 'helper.sock'),
        stateDir,
      }),
      ...extra,
    ]);
    children.push(h);
    return h;
  }

  let rules: InterceptionRules;
  /** Our rules in the client namespace, as the backend's own tool lists them. */
  const ours = (): string[] => rules.lines();

  beforeAll(async () => {
    client = new TestNetns('pcl-hc');
    server = new TestNetns('pcl-hcs');
    addr = vethPair(client, server);
    rules = new InterceptionRules(client);
    console.info(`helper-cli: the helper must pick ${rules.backend} on this kernel`);
    echo = await echoServer(server, addr.b, PORT);
    stateDir = mkdtempSync(join(tmpdir(), 'pcl-helper-cli-'));
  }, 120_000);
  afterEach(async () => {
    for (const h of children.splice(0)) {
      h.signal('SIGKILL');
      await h.exited;
    }
    await removeHelperRules(client.name);
  });
  afterAll(() => {
    echo?.stop();
    client?.delete();
    server?.delete();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('default allow: connections work, one packet queued per connection; SIGTERM removes the rules, exit 0', async () => {
    const h = start();
    await h.ready(15_000, 'running');
    expect(rules.outboundHooks()).toBe(1);
    expect(h.lines.some((l) => l.includes(`backend=${rules.backend}`))).toBe(true);
    for (let n = 0; n < 3; n++) {
      expect(await tcpExchange(client, addr.b, PORT, { count: 4 })).toMatchObject({
        ok: true,
        replies: 4,
      });
    }
    const [q] = (await readQueueStats({ netns: client.name })).filter((s) => s.queue === QUEUE);
    expect(q?.lastId).toBe(3);
    expect(
      h.lines.filter((l) => / info interceptor: allow outbound tcp .*reason=no-gui/.test(l)),
    ).toHaveLength(3);
    h.signal('SIGTERM');
    expect(await h.exited).toEqual({ code: 0, signal: null });
    expect(ours()).toEqual([]);
    expect(await readQueueStats({ netns: client.name })).toEqual([]);
    expect(h.lines.some((l) => / info interceptor: rules removed changed=true/.test(l))).toBe(true);
  });

  it('--default-action deny: the connection fails; SIGINT exits 0 and cleans up', async () => {
    const h = start('--default-action', 'deny');
    await h.ready(15_000, 'running');
    expect((await tcpExchange(client, addr.b, PORT, { timeoutMs: 1500 })).ok).toBe(false);
    expect(
      h.lines.some((l) => / info interceptor: deny outbound tcp .*reason=no-gui/.test(l)),
    ).toBe(true);
    h.signal('SIGINT');
    expect((await h.exited).code).toBe(0);
    expect(ours()).toEqual([]);
  });

  it('--no-gui-policy overrides the default action for the fallback decider', async () => {
    const h = start('--default-action', 'allow', '--no-gui-policy', 'deny');
    await h.ready(15_000, 'running');
    expect((await tcpExchange(client, addr.b, PORT, { timeoutMs: 1500 })).ok).toBe(false);
    h.signal('SIGTERM');
    expect((await h.exited).code).toBe(0);
  });

  it('kill -9 leaves traffic flowing (queue-bypass); the next start reconciles without duplicates', async () => {
    const first = start();
    await first.ready(15_000, 'running');
    const installed = ours();
    first.signal('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    // The rules stay, nobody listens on the queue: bypass lets new connections through.
    expect(ours()).toEqual(installed);
    expect(await readQueueStats({ netns: client.name })).toEqual([]);
    expect((await tcpExchange(client, addr.b, PORT)).ok).toBe(true);
    // A second crashed run's leftover: a duplicated jump (iptables) or a stray rule (nft).
    rules.plantLeftover();
    expect(ours()).toHaveLength(installed.length + 1);
    const second = start();
    await second.ready(15_000, 'running');
    expect(ours()).toEqual(installed); // exactly what one install writes
    expect((await tcpExchange(client, addr.b, PORT)).ok).toBe(true);
    const [q] = (await readQueueStats({ netns: client.name })).filter((s) => s.queue === QUEUE);
    expect(q?.lastId).toBe(1);
    second.signal('SIGTERM');
    expect((await second.exited).code).toBe(0);
    expect(ours()).toEqual([]);
  });

  it('--fail-closed: new connections are blocked while the helper is gone; a fail-open start restores them', async () => {
    const h = start('--fail-closed');
    await h.ready(15_000, 'running');
    expect(rules.queueLines().length).toBeGreaterThan(0);
    expect(rules.queueLines().some((l) => InterceptionRules.bypasses(l))).toBe(false);
    expect(h.lines.some((l) => /failPolicy=closed/.test(l))).toBe(true);
    expect((await tcpExchange(client, addr.b, PORT)).ok).toBe(true);
    h.signal('SIGKILL');
    await h.exited;
    expect((await tcpExchange(client, addr.b, PORT, { timeoutMs: 1500 })).ok).toBe(false);
    const open = start();
    await open.ready(15_000, 'running');
    expect(rules.queueLines().length).toBeGreaterThan(0);
    expect(rules.queueLines().every((l) => InterceptionRules.bypasses(l))).toBe(true);
    expect((await tcpExchange(client, addr.b, PORT)).ok).toBe(true);
    open.signal('SIGTERM');
    expect((await open.exited).code).toBe(0);
  });

  it('a missing namespace: exit 1 with the reason; bad arguments: exit 2', async () => {
    const h = new HelperProcess([
      '--netns',
      'pcl-no-such-ns',
      '--state-dir',
      stateDir,
      '--socket',
      join(stateDir, 'run', 'helper.sock'),
    ]);
    children.push(h);
    expect((await h.exited).code).toBe(1);
    expect(h.lines.some((l) => / error helper: cannot start: /.test(l))).toBe(true);
    const err: string[] = [];
    const io = { stdout: () => undefined, stderr: (s: string) => void err.push(s) };
    expect(await main(['helper', '--queue', '70000'], io)).toBe(2);
    expect(err.join('')).toMatch(/queue/);
    const out: string[] = [];
    expect(
      await main(['helper', '--help'], {
        stdout: (s) => void out.push(s),
        stderr: () => undefined,
      }),
    ).toBe(0);
    expect(out.join('')).toMatch(/--fail-closed/);
  });
});
