/**
 * The helper's rules as a client sees them live, and what a helper restart keeps: a real
 * `portcullis helper` child in a namespace this file creates (a veth pair to a second
 * one with an echo server), a test IpcClient on its socket, real long-running programs.
 * Only the namespaces, temp dirs and children this file creates are touched; children
 * are stopped by PID.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpcClient } from '../../helper/protocol/client.js';
import type { RulesEvent } from '../../helper/protocol/messages.js';
import { parseStartTime } from '../../helper/decisions/liveness.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import { echoServer, tcpHold, vethPair, type Peer } from '../support/tcp-peers.js';
import { sleep } from '../support/udp-agent.js';
import {
  helperArgs,
  HelperProcess,
  promptingArgs,
  removeHelperRules,
} from '../support/helper-process.js';

const skip = firewallTestsUnavailable();
if (skip) console.warn(`skipping helper live-rules tests: ${skip}`);

const QUEUE = 23;
const PORT = 8090;

async function until<T>(what: string, get: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** (pid, start time) of a running child: what a "process" rule names. */
function processOf(peer: Peer): { pid: number; startTime: number } {
  const pid = peer.proc.pid!;
  const startTime = parseStartTime(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  if (startTime === undefined) throw new Error(`no start time for ${pid}`);
  return { pid, startTime };
}

describe.skipIf(skip)('portcullis helper: live rules, and what a restart keeps', () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string };
  let echo: Peer | undefined;
  const peers: Peer[] = [];
  const helpers: HelperProcess[] = [];
  const ipcClients: IpcClient[] = [];
  let dir: string;
  let socket: string;
  let stateDir: string;
  let helper: HelperProcess;

  function startHelper(extra: string[] = []): HelperProcess {
    const h = new HelperProcess([
      ...helperArgs({ netns: client.name, queue: QUEUE, socket, stateDir }),
      ...promptingArgs(2),
      ...extra,
    ]);
    helpers.push(h);
    return h;
  }

  async function connectClient(): Promise<IpcClient> {
    const token = readFileSync(join(dir, 'run', 'token'), 'utf8').trim();
    const c = await IpcClient.connect({ path: socket, token, build: 'rules-live-test' });
    ipcClients.push(c);
    return c;
  }

  async function restart(extra: string[] = []): Promise<void> {
    helper.signal('SIGTERM');
    expect(await helper.exited).toEqual({ code: 0, signal: null });
    helper = startHelper(extra);
    await helper.ready();
  }

  /** A program in the client namespace holding a TCP connection open (allowed: no GUI). */
  async function holder(): Promise<Peer> {
    const p = tcpHold(client, addr.b, PORT);
    peers.push(p);
    await p.next('echoed', 30_000);
    return p;
  }

  beforeAll(async () => {
    client = new TestNetns('pcl-rlc');
    server = new TestNetns('pcl-rls');
    addr = vethPair(client, server);
    echo = await echoServer(server, addr.b, PORT);
    dir = mkdtempSync(join(tmpdir(), 'pcl-rules-live-'));
    socket = join(dir, 'run', 'helper.sock');
    stateDir = join(dir, 'state');
    helper = startHelper();
    await helper.ready();
  }, 180_000);

  afterAll(async () => {
    for (const c of ipcClients.splice(0)) await c.close().catch(() => undefined);
    for (const h of helpers) await h.stop();
    for (const p of peers) p.stop();
    echo?.stop();
    if (client) await removeHelperRules(client.name);
    client?.delete();
    server?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('publishes every rule change on `rules`: add, update, remove, and a pruned process rule', async () => {
    const c = await connectClient();
    const events: RulesEvent[] = [];
    c.on('rules', (e) => events.push(e));
    expect(await c.call('subscribe', { topics: ['rules'] })).toEqual({ topics: ['rules'] });
    const rule = await c.call('rules.add', {
      action: 'deny',
      match: { host: 'blocked.test' },
      duration: { kind: 'forever' },
    });
    await c.call('rules.setEnabled', { id: rule.id, enabled: false });
    await c.call('rules.remove', { id: rule.id });
    await until('three events', () => events.length >= 3);
    expect(events.slice(0, 3)).toEqual([
      { kind: 'added', rule },
      { kind: 'updated', rule: expect.objectContaining({ id: rule.id, enabled: false }) },
      { kind: 'removed', id: rule.id, reason: 'removed' },
    ]);
    // Deleting it again: one plain answer, and no event.
    await expect(c.call('rules.remove', { id: rule.id })).rejects.toMatchObject({
      code: 'not-found',
    });

    // A process rule whose process exits is pruned by the helper, and said so.
    const p = await holder();
    const proc = await c.call('rules.add', {
      action: 'allow',
      match: { host: 'app.test' },
      duration: { kind: 'process', ...processOf(p) },
    });
    p.stop();
    const pruned = await until('the pruned rule', () =>
      events.find((e) => e.kind === 'removed' && e.id === proc.id),
    );
    expect(pruned).toEqual({ kind: 'removed', id: proc.id, reason: 'exited' });
    const { rules } = await c.call('rules.list', {});
    expect(rules.map((r) => r.id)).not.toContain(proc.id);
    await c.close();
  }, 90_000);

  it('keeps a process rule across a restart while its process runs, drops it once it exited; session rules end', async () => {
    let c = await connectClient();
    const p = await holder();
    const proc = await c.call('rules.add', {
      action: 'allow',
      match: { host: 'until-quit.test' },
      duration: { kind: 'process', ...processOf(p) },
    });
    const session = await c.call('rules.add', {
      action: 'allow',
      match: { host: 'until-restart.test' },
      duration: { kind: 'session' },
    });
    await c.close();
    await restart();
    c = await connectClient();
    let ids = (await c.call('rules.list', {})).rules.map((r) => r.id);
    expect(ids).toContain(proc.id);
    expect(ids).not.toContain(session.id);
    await c.close();

    // Its process ends while the helper is down: gone at the next start.
    helper.signal('SIGTERM');
    expect(await helper.exited).toEqual({ code: 0, signal: null });
    p.stop();
    await until(
      'the program to exit',
      () => p.proc.exitCode !== null || p.proc.signalCode !== null,
    );
    helper = startHelper();
    await helper.ready();
    c = await connectClient();
    ids = (await c.call('rules.list', {})).rules.map((r) => r.id);
    expect(ids).not.toContain(proc.id);
    await c.close();
  }, 120_000);

  it('names the flows already in the table after a restart', async () => {
    const p = await holder();
    const { sport } = await p.next('connected');
    await restart();
    // Naming them reads the table once: with nobody watching, the helper does not start
    // following every flow for it (that costs each new connection for the idle time).
    await until('the flows found at start named', () =>
      helper.lines.find((l) => l.includes('named the flows found at start')),
    );
    expect(helper.lines.filter((l) => l.includes('following the whole conntrack table'))).toEqual(
      [],
    );
    const c = await connectClient();
    const flows: { sport: number | null; process: { pid: number } | null }[] = [];
    c.on('flows', (e) => {
      if (e.kind === 'snapshot-chunk') flows.push(...e.flows);
      if (e.kind === 'delta') flows.push(...e.added, ...e.updated);
    });
    await c.call('subscribe', { topics: ['flows'] });
    const named = await until('the held flow with its process', () =>
      flows.find((f) => f.sport === sport && f.process !== null),
    );
    expect(named.process?.pid).toBe(p.proc.pid);
    await c.close();
    p.stop();
  }, 90_000);

  it('says when a command-line option overrides a saved setting', async () => {
    let c = await connectClient();
    await c.call('settings.set', { failOpen: true });
    await c.close();
    await restart(['--fail-closed']);
    expect(helper.lines.some((l) => / warn settings: --fail-closed overrides/u.test(l))).toBe(true);
    c = await connectClient();
    const state = await c.call('state.get', {});
    expect(state.settings.failOpen).toBe(false);
    expect(state.settingsOverridden).toEqual([
      { field: 'failOpen', flag: '--fail-closed', saved: true },
    ]);
    // Set again by a client: the override is over.
    await c.call('settings.set', { failOpen: false });
    expect((await c.call('state.get', {})).settingsOverridden).toBeUndefined();
    await c.close();
  }, 90_000);
});
