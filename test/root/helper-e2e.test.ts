/**
 * End to end: a real `portcullis helper --netns NS --socket TMP/run/helper.sock` child
 * process and a test IpcClient on its socket. Programs in the client namespace (node
 * children) resolve a name with a DNS server in the peer namespace and connect over a
 * veth pair (198.18.0.0/24). Only the namespaces, temp dirs and children this file
 * creates are touched; children are stopped by PID.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IpcClient } from '../../helper/protocol/client.js';
import { encodeFrame } from '../../helper/protocol/framing.js';
import { PROTOCOL_VERSION } from '../../helper/protocol/messages.js';
import type { Prompt, PromptsEvent } from '../../helper/protocol/index.js';
import { readQueueStats } from '../../helper/nfqueue/stats.js';
import { DnsServer } from '../support/dns-server.js';
import { InterceptionRules } from '../support/interception.js';
import { firewallTestsUnavailable, TestNetns } from '../support/netns.js';
import type { Peer } from '../support/tcp-peers.js';
import { echoServer, tcpExchange, tcpHold, vethPair } from '../support/tcp-peers.js';
import { sleep } from '../support/udp-agent.js';
import { resolvingClient, type ResolvingClientOptions } from '../support/resolving-client.js';
import {
  helperArgs,
  HelperProcess,
  promptingArgs,
  removeHelperRules,
} from '../support/helper-process.js';

const skip = firewallTestsUnavailable();
if (skip) console.warn(`skipping helper end-to-end tests: ${skip}`);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const QUEUE = 17;
const PORTS = [8080, 8081, 8082, 8083, 8084, 8085];
/** Echo servers on the peer's IPv6 address. */
const PORTS6 = [8085, 8086];
const HOST = 'app.e2e.test';
const PROMPT_TIMEOUT_S = 2;

function program(
  ns: TestNetns,
  dnsServer: string,
  port: number,
  options: ResolvingClientOptions = {},
): Peer {
  return resolvingClient(ns, dnsServer, HOST, port, options);
}

/** Collects `prompts` events of a client. */
function promptLog(client: IpcClient): PromptsEvent[] {
  const events: PromptsEvent[] = [];
  client.on('prompts', (e) => events.push(e));
  return events;
}

async function until<T>(what: string, get: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function promptFor(events: PromptsEvent[], port: number): Prompt | undefined {
  for (const e of events) {
    if (e.kind === 'added' && e.prompt.request.dport === port) return e.prompt;
  }
  return undefined;
}

describe.skipIf(skip)('portcullis helper end to end', () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string; b6?: string };
  const echoes: Peer[] = [];
  const programs: Peer[] = [];
  const helpers: HelperProcess[] = [];
  const ipcClients: IpcClient[] = [];
  let dns: DnsServer | undefined;
  let dir: string;
  let socket: string;
  let tokenFile: string;
  let stateDir: string;
  let helper: HelperProcess;
  let rules: InterceptionRules;

  function startHelper(extra: string[] = [], stdin?: string): HelperProcess {
    const h = new HelperProcess(
      [
        ...helperArgs({ netns: client.name, queue: QUEUE, socket, stateDir }),
        ...promptingArgs(PROMPT_TIMEOUT_S),
        ...extra,
      ],
      stdin,
    );
    helpers.push(h);
    return h;
  }

  async function connectClient(): Promise<IpcClient> {
    const { readFileSync } = await import('node:fs');
    const token = readFileSync(tokenFile, 'utf8').trim();
    const c = await IpcClient.connect({ path: socket, token, build: 'e2e-test' });
    ipcClients.push(c);
    return c;
  }

  function run(port: number, options: Parameters<typeof program>[3] = {}): Peer {
    const p = program(client, addr.b, port, options);
    programs.push(p);
    return p;
  }

  async function queued(): Promise<number> {
    const [q] = (await readQueueStats({ netns: client.name })).filter((s) => s.queue === QUEUE);
    return q?.lastId ?? 0;
  }

  beforeAll(async () => {
    client = new TestNetns('pcl-e2c');
    server = new TestNetns('pcl-e2s');
    addr = vethPair(client, server, { v6: '2001:db8:e2e::' });
    rules = new InterceptionRules(client);
    for (const port of PORTS) echoes.push(await echoServer(server, addr.b, port));
    for (const port of PORTS6) echoes.push(await echoServer(server, addr.b6!, port));
    dns = new DnsServer(server, [addr.b], { [HOST]: { A: [[addr.b, 300]] } });
    await dns.ready();
    dir = mkdtempSync(join(tmpdir(), 'pcl-e2e-'));
    socket = join(dir, 'run', 'helper.sock');
    tokenFile = join(dir, 'run', 'token');
    stateDir = join(dir, 'state');
    helper = startHelper();
    await helper.ready();
  }, 180_000);

  afterEach(() => {
    for (const p of programs.splice(0)) p.stop();
  });

  afterAll(async () => {
    for (const c of ipcClients.splice(0)) await c.close().catch(() => undefined);
    for (const h of helpers) await h.stop();
    for (const p of programs) p.stop();
    for (const e of echoes) e.stop();
    dns?.stop();
    if (client) await removeHelperRules(client.name);
    client?.delete();
    server?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('serves the socket with a token file; no client subscribed: the no-GUI policy at once', async () => {
    expect(existsSync(socket)).toBe(true);
    expect(existsSync(tokenFile)).toBe(true);
    const c = await connectClient();
    const state = await c.call('state.get', {});
    expect(state).toMatchObject({ netns: client.name, queue: QUEUE, pendingPrompts: 0 });
    // The version of the package the helper runs from, not "unknown".
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(state.version).toBe(pkg.version);
    const p = run(8080);
    const end = await p.next('end', 30_000);
    expect(end).toMatchObject({ ok: true, replies: 3 });
    const { entries } = await c.call('history.query', { limit: 50, text: addr.b });
    const tcp = entries.find((e) => e.request.dport === 8080);
    expect(tcp).toMatchObject({ action: 'allow', reason: 'no-gui' });
    await c.close();
  }, 60_000);

  it('a prompt with pid, exe, uid, destination and the DNS name; allow lets it connect; later packets are not queued', async () => {
    const c = await connectClient();
    // DNS itself is decided too: a remembered rule lets the lookups through.
    await c.call('rules.add', {
      action: 'allow',
      match: { protocol: 'udp', port: { from: 53, to: 53 } },
      duration: { kind: 'forever' },
    });
    const events = promptLog(c);
    await c.call('subscribe', { topics: ['prompts'] });
    const p = run(8080, { count: 5 });
    const resolved = await p.next('resolved', 30_000);
    const prompt = await until('the prompt', () => promptFor(events, 8080));
    expect(prompt.request).toMatchObject({
      direction: 'outbound',
      protocol: 'tcp',
      dst: addr.b,
      dport: 8080,
      host: HOST,
      uid: 0,
    });
    expect(prompt.request.process).toMatchObject({
      pid: resolved['pid' as keyof typeof resolved],
      exe: realpathSync(process.execPath),
      uid: 0,
    });
    expect(prompt.defaultAction).toBe('deny');
    await expect(c.call('prompts.list', {})).resolves.toEqual([
      expect.objectContaining({ id: prompt.id }),
    ]);
    const answer = await c.call('prompts.answer', {
      promptId: prompt.id,
      action: 'allow',
      duration: { kind: 'once' },
      scope: 'destination',
    });
    expect(answer).toEqual({ decided: 1, rule: null });
    // The first answer wins.
    await expect(
      c.call('prompts.answer', {
        promptId: prompt.id,
        action: 'deny',
        duration: { kind: 'once' },
        scope: 'destination',
      }),
    ).rejects.toMatchObject({ code: 'not-found' });
    await p.next('connected', 30_000);
    const atConnect = await queued();
    const end = await p.next('end', 30_000);
    expect(end).toMatchObject({ ok: true, replies: 5 });
    expect(await queued()).toBe(atConnect);
    await until('the resolved event', () =>
      events.find((e) => e.kind === 'resolved' && e.id === prompt.id && e.action === 'allow'),
    );
    await c.close();
  }, 90_000);

  it('deny makes the connection fail', async () => {
    const c = await connectClient();
    const events = promptLog(c);
    await c.call('subscribe', { topics: ['prompts'] });
    const p = run(8081, { timeoutMs: 4000 });
    const prompt = await until('the prompt', () => promptFor(events, 8081));
    await c.call('prompts.answer', {
      promptId: prompt.id,
      action: 'deny',
      duration: { kind: 'once' },
      scope: 'destination',
    });
    const end = await p.next('end', 30_000);
    expect(end.ok).toBe(false);
    expect(p.events.some((e) => e.ev === 'connected')).toBe(false);
    await c.close();
  }, 60_000);

  it('IPv6: allow lets the connection through and its later packets are not queued; deny fails it', async () => {
    const c = await connectClient();
    const events = promptLog(c);
    await c.call('subscribe', { topics: ['prompts'] });
    const allowed = tcpHold(client, addr.b6!, PORTS6[0]!, 3);
    programs.push(allowed);
    const prompt = await until('the IPv6 prompt', () => promptFor(events, PORTS6[0]!));
    expect(prompt.request).toMatchObject({
      direction: 'outbound',
      family: 'ipv6',
      protocol: 'tcp',
      dst: addr.b6,
      dport: PORTS6[0],
      uid: 0,
    });
    expect(prompt.request.process?.exe).toBe(realpathSync(process.execPath));
    await c.call('prompts.answer', {
      promptId: prompt.id,
      action: 'allow',
      duration: { kind: 'once' },
      scope: 'destination',
    });
    await allowed.next('connected', 30_000);
    const atConnect = await queued();
    await expect(allowed.next('echoed', 30_000)).resolves.toMatchObject({ replies: 3 });
    expect(await queued()).toBe(atConnect);

    const denied = tcpExchange(client, addr.b6!, PORTS6[1]!, { timeoutMs: 4000 });
    const second = await until('the second IPv6 prompt', () => promptFor(events, PORTS6[1]!));
    await c.call('prompts.answer', {
      promptId: second.id,
      action: 'deny',
      duration: { kind: 'once' },
      scope: 'destination',
    });
    expect((await denied).ok).toBe(false);
    await c.close();
  }, 90_000);

  it('no answer: the default action (deny) after the prompt timeout', async () => {
    const c = await connectClient();
    const events = promptLog(c);
    await c.call('subscribe', { topics: ['prompts'] });
    const p = run(8082, { timeoutMs: PROMPT_TIMEOUT_S * 1000 + 4000 });
    const prompt = await until('the prompt', () => promptFor(events, 8082));
    const resolved = await until('the resolution', () =>
      events.find((e) => e.kind === 'resolved' && e.id === prompt.id),
    );
    expect(resolved).toMatchObject({ action: 'deny', reason: 'default' });
    const end = await p.next('end', 30_000);
    expect(end.ok).toBe(false);
    expect(p.events.some((e) => e.ev === 'connected')).toBe(false);
    await c.close();
  }, 60_000);

  it('the last prompts subscriber leaving: open prompts get the no-GUI policy at once', async () => {
    const c = await connectClient();
    const events = promptLog(c);
    await c.call('subscribe', { topics: ['prompts'] });
    // Not 8081: its deny-once above still answers that app and destination for 30 s.
    const p = run(8085);
    const prompt = await until('the prompt', () => promptFor(events, 8085));
    await c.call('unsubscribe', { topics: ['prompts'] });
    expect(await p.next('end', 30_000)).toMatchObject({ ok: true });
    const { entries } = await c.call('history.query', { limit: 20, text: addr.b });
    expect(
      entries.find((e) => e.request.dport === 8085 && e.request.time >= prompt.request.time),
    ).toMatchObject({ action: 'allow', reason: 'no-gui' });
    await c.close();
  }, 60_000);

  it('a forever rule applies to the next connection without a prompt and survives a restart', async () => {
    let c = await connectClient();
    let events = promptLog(c);
    await c.call('subscribe', { topics: ['prompts'] });
    const first = run(8083);
    const prompt = await until('the prompt', () => promptFor(events, 8083));
    const { rule } = await c.call('prompts.answer', {
      promptId: prompt.id,
      action: 'allow',
      duration: { kind: 'forever' },
      scope: 'destination',
    });
    expect(rule).toMatchObject({ action: 'allow', match: { host: HOST, port: { from: 8083 } } });
    expect(await first.next('end', 30_000)).toMatchObject({ ok: true });
    const second = run(8083);
    expect(await second.next('end', 30_000)).toMatchObject({ ok: true });
    expect(
      events.filter((e) => e.kind === 'added' && e.prompt.request.dport === 8083),
    ).toHaveLength(1);
    await c.close();

    // Restart: SIGTERM removes the socket and the token; the rule is on disk.
    helper.signal('SIGTERM');
    expect(await helper.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(tokenFile)).toBe(false);
    helper = startHelper();
    await helper.ready();

    const list = spawnSync(
      process.execPath,
      [
        join(ROOT, 'bin/portcullis.js'),
        'rules',
        'list',
        '--json',
        '--socket',
        socket,
        '--token-file',
        tokenFile,
      ],
      { encoding: 'utf8' },
    );
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout).toContain(rule!.id);

    c = await connectClient();
    events = promptLog(c);
    await c.call('subscribe', { topics: ['prompts'] });
    const third = run(8083);
    expect(await third.next('end', 30_000)).toMatchObject({ ok: true });
    expect(events.filter((e) => e.kind === 'added')).toHaveLength(0);
    const { entries } = await c.call('history.query', { limit: 20, text: addr.b });
    expect(entries.find((e) => e.request.dport === 8083)).toMatchObject({
      action: 'allow',
      reason: 'rule',
      ruleId: rule!.id,
    });
    // Export and import (merge) over the wire: RuleInputs; the same rules are
    // duplicates, skipped and counted.
    const exported = await c.call('rules.export', {});
    expect(exported.rules).toContainEqual(expect.objectContaining({ match: rule!.match }));
    const imported = await c.call('rules.import', { rules: exported.rules, mode: 'merge' });
    expect(imported).toEqual({ added: 0, removed: 0, skipped: exported.total });
    expect((await c.call('rules.list', {})).total).toBe(exported.total);
    await c.close();
  }, 120_000);

  it('kill ends a live TCP connection; history lists the decisions', async () => {
    const c = await connectClient();
    await c.call('rules.add', {
      action: 'allow',
      match: { address: addr.b, port: { from: 8084, to: 8084 }, protocol: 'tcp' },
      duration: { kind: 'session' },
    });
    const p = run(8084, { hold: true, count: 2 });
    const connected = await p.next('connected', 30_000);
    await p.next('echoed', 30_000);
    const flows = new Map<number, { sport: number | null; dport: number | null }>();
    c.on('flows', (e) => {
      if (e.kind === 'snapshot-chunk') for (const f of e.flows) flows.set(f.id, f);
      if (e.kind === 'delta') for (const f of [...e.added, ...e.updated]) flows.set(f.id, f);
    });
    await c.call('subscribe', { topics: ['flows'] });
    const id = await until('the flow', () => {
      for (const [fid, f] of flows) if (f.sport === connected.sport && f.dport === 8084) return fid;
      return undefined;
    });
    await c.call('flows.kill', { id });
    const end = await p.next('end', 30_000);
    expect(end).toMatchObject({ ok: false });
    // The flow's end reaches the history with conntrack's counters.
    for (let i = 0; ; i++) {
      const page = await c.call('history.query', { limit: 50, text: addr.b });
      const e = page.entries.find(
        (x) => x.request.dport === 8084 && x.request.sport === connected.sport,
      );
      if (e?.ended != null) {
        expect(e.ended).toBeGreaterThanOrEqual(e.decidedAt);
        break;
      }
      if (i > 500) throw new Error(`no end recorded: ${JSON.stringify(e)}`);
      await sleep(20);
    }
    await expect(c.call('flows.kill', { id: 0xfffffff0 })).rejects.toMatchObject({
      code: 'not-found',
    });
    const { entries } = await c.call('history.query', { limit: 100, text: addr.b });
    const ports = new Set(entries.map((e) => e.request.dport));
    for (const port of [8080, 8081, 8082, 8083, 8084]) expect(ports).toContain(port);
    // (A timed-out SYN is retried as a new connection, so later 8082 decisions may exist.)
    expect(
      entries.some(
        (e) => e.request.dport === 8082 && e.action === 'deny' && e.reason === 'default',
      ),
    ).toBe(true);
    const now = Date.now();
    const series = await c.call('history.series', {
      since: now - 600_000,
      until: now + 60_000,
      bucketMs: 60_000,
    });
    const sum = series.buckets.reduce((n, b) => n + b.allowed + b.denied, 0);
    const all = await c.call('history.query', { limit: 1000 });
    expect(sum).toBe(all.entries.length);
    expect(series.buckets.reduce((n, b) => n + b.prompted, 0)).toBeGreaterThanOrEqual(4);
    const stats = await c.call('stats.get', {});
    // Decisions since this helper started (the restart above): 8083 by rule at least.
    expect(stats.allowed).toBeGreaterThan(0);
    expect(stats.conntrackMax).toBeGreaterThan(0);
    await expect(c.call('rules.remove', { id: 'no-such-rule' })).rejects.toMatchObject({
      code: 'not-found',
    });
    await expect(
      c.call('prompts.answer', {
        promptId: 'no-such-prompt',
        action: 'allow',
        duration: { kind: 'once' },
        scope: 'any',
      }),
    ).rejects.toMatchObject({ code: 'not-found' });
    const dry = await c.call('rules.dryRun', { match: { port: { from: 8081, to: 8081 } } });
    expect(dry.total).toBeGreaterThan(0);
    expect(dry.entries.every((e) => e.request.dport === 8081)).toBe(true);
    await c.close();
  }, 90_000);

  it('a stuck client (subscribes, never reads) does not stop verdicts by rule', async () => {
    const token = (await import('node:fs')).readFileSync(tokenFile, 'utf8').trim();
    const stuck = netConnect(socket);
    await new Promise<void>((resolve, reject) => {
      stuck.once('connect', resolve);
      stuck.once('error', reject);
    });
    stuck.write(
      encodeFrame({ type: 'hello', protocol: { ...PROTOCOL_VERSION }, build: 'stuck', token }),
    );
    stuck.write(
      encodeFrame({
        type: 'request',
        id: 1,
        method: 'subscribe',
        params: { topics: ['flows', 'prompts', 'verdicts', 'stats', 'state'] },
      }),
    );
    stuck.pause(); // never reads
    try {
      const c = await connectClient();
      // Both clients authenticated (the stuck one's subscribe is in its first frames).
      for (let i = 0; (await c.call('state.get', {})).clients < 2; i++) {
        if (i > 500) throw new Error('the stuck client never authenticated');
        await sleep(20);
      }
      for (let i = 0; i < 4; i++) {
        const p = run(8083);
        expect(await p.next('end', 30_000)).toMatchObject({ ok: true });
      }
      await expect(c.call('state.get', {})).resolves.toMatchObject({ queue: QUEUE });
      await c.close();
    } finally {
      stuck.destroy();
    }
  }, 120_000);

  it('a wrong token and garbage frames are refused; the helper stays up', async () => {
    await expect(
      IpcClient.connect({ path: socket, token: 'not-the-token', build: 'e2e-test' }),
    ).rejects.toMatchObject({ code: 'bad-token' });
    const raw = netConnect(socket);
    const got: Buffer[] = [];
    raw.on('data', (d: Buffer) => got.push(d));
    const closed = new Promise<void>((resolve) => raw.on('close', () => resolve()));
    raw.on('error', () => undefined);
    await new Promise<void>((resolve) => raw.once('connect', resolve));
    const junk = Buffer.from([0, 0, 0, 5, 0xff, 0xfe, 0x00, 0x7b, 0x22]);
    for (let i = 0; i < 10; i++) raw.write(junk);
    raw.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    await closed;
    const text = Buffer.concat(got).toString('utf8');
    expect(text).toMatch(/bad-frame|too-many-errors|frame-too-large/);
    expect(helper.running).toBe(true);
    const c = await connectClient();
    await expect(c.call('state.get', {})).resolves.toMatchObject({ queue: QUEUE });
    await c.close();
  }, 60_000);

  it('settings: saved atomically in the state dir; fail-closed and inbound reinstall the rules', async () => {
    const c = await connectClient();
    const before = await c.call('settings.get', {});
    expect(before).toMatchObject({
      failOpen: true,
      interceptInbound: false,
      defaultAction: 'deny',
    });
    const bypass = (): boolean[] => rules.queueLines().map((l) => InterceptionRules.bypasses(l));
    expect(bypass().length).toBeGreaterThan(0);
    expect(bypass().every(Boolean)).toBe(true);
    expect(rules.inboundQueued()).toBe(false);
    const after = await c.call('settings.set', { failOpen: false, interceptInbound: true });
    expect(after).toMatchObject({ failOpen: false, interceptInbound: true });
    expect(bypass().some(Boolean)).toBe(false);
    expect(rules.inboundQueued()).toBe(true);
    const { readFileSync, statSync } = await import('node:fs');
    const file = join(stateDir, 'settings.json');
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({
      version: 1,
      settings: { failOpen: false, interceptInbound: true },
    });
    await expect(c.call('settings.set', { interceptOutbound: false })).rejects.toMatchObject({
      code: 'invalid-params',
    });
    // A rule still decides while fail-closed.
    const p = run(8083);
    expect(await p.next('end', 30_000)).toMatchObject({ ok: true });
    // The no-GUI policy set here is the one the next connection without a rule gets
    // (nobody listens for prompts now).
    await c.call('settings.set', { noGuiPolicy: 'deny' });
    const denied = run(8082, { timeoutMs: 4000 });
    expect((await denied.next('end', 30_000)).ok).toBe(false);
    const { entries } = await c.call('history.query', { limit: 50, text: addr.b });
    expect(entries.find((e) => e.request.dport === 8082)).toMatchObject({
      action: 'deny',
      reason: 'no-gui',
    });
    await c.call('settings.set', { failOpen: true, interceptInbound: false, noGuiPolicy: 'allow' });
    expect(bypass().every(Boolean)).toBe(true);
    expect(rules.inboundQueued()).toBe(false);
    await c.close();
  }, 60_000);

  it('kill -9: traffic keeps flowing (fail-open); the next start takes over the stale socket', async () => {
    helper.signal('SIGKILL');
    expect(await helper.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(existsSync(socket)).toBe(true); // left behind by the crash
    const before = await queued();
    // Nobody decides now: a new connection passes by queue-bypass.
    const p = run(8082, { timeoutMs: 10_000 });
    expect(await p.next('end', 30_000)).toMatchObject({ ok: true });
    expect(await queued()).toBe(before);
    // The launcher's way: the token on stdin, no token file without --allow-uid.
    const token = 'e2e-stdin-token-0123456789abcdef';
    rmSync(tokenFile, { force: true });
    helper = startHelper(['--token-stdin'], token);
    await helper.ready();
    expect(existsSync(tokenFile)).toBe(false);
    const c = await IpcClient.connect({ path: socket, token, build: 'e2e-test' });
    ipcClients.push(c);
    await expect(c.call('state.get', {})).resolves.toMatchObject({ queue: QUEUE });
    const again = run(8083);
    expect(await again.next('end', 30_000)).toMatchObject({ ok: true });
    const { entries } = await c.call('history.query', { limit: 5, text: addr.b });
    expect(entries[0]).toMatchObject({ reason: 'rule' });
    await c.close();
  }, 90_000);

  it('SIGTERM removes the rules, the socket and the token', async () => {
    helper.signal('SIGTERM');
    expect(await helper.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(socket)).toBe(false);
    expect(rules.lines()).toEqual([]);
  }, 60_000);
});
