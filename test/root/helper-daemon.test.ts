/**
 * The daemon in-process (Interceptor, FlowTable, Interception) against real traffic: a client
 * namespace (where the helper works) and a server namespace joined by a veth pair.
 * Everything runs inside namespaces this file creates and deletes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startKernelSide } from '../../helper/daemon/daemon.js';
import type { Interception, InterceptionOptions } from '../../helper/daemon/interception.js';
import { Interceptor } from '../../helper/daemon/interceptor.js';
import { LiveSettings } from '../../helper/daemon/live-settings.js';
import { silentLogger, createLogger } from '../../helper/daemon/log.js';
import type { FlowDelta } from '../../helper/daemon/ports.js';
import type { Flow } from '../../helper/protocol/model.js';
import type { Decider, DecisionRecord } from '../../helper/daemon/ports.js';
import { InterceptionRules } from '../support/interception.js';
import { rootTestsUnavailable, TestNetns } from '../support/netns.js';
import { echoServer, tcpExchange, tcpHold, vethPair, type Peer } from '../support/tcp-peers.js';

function missing(): string | undefined {
  const root = rootTestsUnavailable();
  if (root) return root;
  for (const bin of ['iptables-nft', 'conntrack', 'ss']) {
    if (spawnSync(bin, ['-V']).error) return `${bin} is not installed`;
  }
  return undefined;
}
const skip = missing();
if (skip) console.warn(`skipping helper daemon root tests: ${skip}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

const QUEUE = 11;
const PORT = 8080;
const SLOW_PORT = 8081;
const HELPER_SETTINGS = {
  defaultAction: 'allow',
  promptTimeoutSeconds: 5,
  noGuiPolicy: 'allow',
  failOpen: true,
  interceptOutbound: true,
  interceptInbound: false,
} as const;

describe.skipIf(skip)('helper daemon in-process (two namespaces, veth)', () => {
  let client: TestNetns;
  let server: TestNetns;
  let addr: { a: string; b: string };
  const servers: Peer[] = [];
  let stateDir: string;
  const running: { stop(): Promise<void> }[] = [];

  let clientRules: InterceptionRules;
  let serverRules: InterceptionRules;

  beforeAll(async () => {
    client = new TestNetns('pcl-hd');
    server = new TestNetns('pcl-hds');
    addr = vethPair(client, server);
    clientRules = new InterceptionRules(client);
    serverRules = new InterceptionRules(server);
    servers.push(
      await echoServer(server, addr.b, PORT),
      await echoServer(server, addr.b, SLOW_PORT),
    );
    stateDir = mkdtempSync(join(tmpdir(), 'pcl-helper-'));
  });
  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop();
    client.exec('conntrack', ['-F']);
  });
  afterAll(() => {
    for (const s of servers) s.stop();
    client?.delete();
    server?.delete();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  /** An Interception in the client namespace (allow by default, stopped after the test). */
  async function startHelper(
    options: Omit<InterceptionOptions, 'netns' | 'queue' | 'stateDir' | 'settings'>,
  ): Promise<Interception> {
    const helper = await startKernelSide({
      netns: client.name,
      queue: QUEUE,
      stateDir,
      settings: new LiveSettings(HELPER_SETTINGS),
      ...options,
    });
    running.push(helper);
    return helper;
  }

  function interceptor(
    decider: Decider,
    records: DecisionRecord[],
    decisionTimeoutMs = 2000,
  ): Interceptor {
    const i = new Interceptor({
      netns: client.name,
      queue: QUEUE,
      policy: { defaultAction: 'allow', decisionTimeoutMs, failClosed: false, inbound: false },
      decider,
      log: silentLogger,
      sinks: [{ record: (e) => records.push(e) }],
    });
    running.push(i);
    return i;
  }

  it('allow: the connection works; only its first packet is queued, the rest pass by connmark', async () => {
    const records: DecisionRecord[] = [];
    const i = interceptor(
      { decide: async () => ({ action: 'allow', reason: 'rule', ruleId: 'r1' }) },
      records,
    );
    await i.start();
    const results = [];
    for (let n = 0; n < 3; n++) results.push(await tcpExchange(client, addr.b, PORT, { count: 5 }));
    expect(results.map((r) => [r.ok, r.replies])).toEqual([
      [true, 5],
      [true, 5],
      [true, 5],
    ]);
    // Three connections of ~8 outgoing packets each: three packets reached user space.
    expect(i.nfqueue!.counters.received).toBe(3);
    expect(i.nfqueue!.counters.repeated).toBe(3);
    expect((await i.nfqueue!.procStats())?.lastId).toBe(3);
    expect(records.map((r) => [r.action, r.reason, r.ruleId, r.request.dport])).toEqual([
      ['allow', 'rule', 'r1', PORT],
      ['allow', 'rule', 'r1', PORT],
      ['allow', 'rule', 'r1', PORT],
    ]);
    expect(records.map((r) => r.request.sport)).toEqual(results.map((r) => r.sport));
    // The decision is cached in the connmark.
    const ct = client.exec('conntrack', ['-L', '-p', 'tcp', '--dport', String(PORT)]);
    expect(ct.split('\n').filter((l) => l.includes('mark=1')).length).toBe(3);
    // UDP without a reply stays NEW in conntrack: only the connmark keeps its later
    // datagrams out of the queue. Four datagrams of one flow, one queued.
    const send = spawn('ip', [
      'netns',
      'exec',
      client.name,
      process.execPath,
      '-e',
      `const s=require('dgram').createSocket('udp4');let n=0;s.bind(40500,()=>{const f=()=>n++<4?s.send('x',9999,'${addr.b}',()=>setTimeout(f,20)):s.close();f();})`,
    ]);
    await new Promise((resolve) => send.on('exit', resolve));
    expect(send.exitCode).toBe(0);
    await until(() => records.length === 4);
    expect(i.nfqueue!.counters.received).toBe(4);
    expect(records[3]?.request).toMatchObject({ protocol: 'udp', sport: 40500, dport: 9999 });
  });

  it('a second interceptor on the same queue fails to start and leaves the rules of the first', async () => {
    const records: DecisionRecord[] = [];
    const first = interceptor(
      { decide: async () => ({ action: 'allow', reason: 'rule', ruleId: null }) },
      records,
    );
    await first.start();
    const before = clientRules.lines();
    expect(before.length).toBeGreaterThan(0);
    const second = interceptor(
      { decide: async () => ({ action: 'deny', reason: 'rule', ruleId: null }) },
      [],
    );
    await expect(second.start()).rejects.toMatchObject({
      name: 'NfQueueError',
      details: expect.objectContaining({ errnoName: 'EPERM' }),
    });
    expect(clientRules.lines()).toEqual(before);
    expect((await tcpExchange(client, addr.b, PORT)).ok).toBe(true);
    expect(records).toHaveLength(1);
  });

  it('deny: the connection fails and the decision is recorded', async () => {
    const records: DecisionRecord[] = [];
    const i = interceptor(
      { decide: async () => ({ action: 'deny', reason: 'rule', ruleId: 'block' }) },
      records,
    );
    await i.start();
    const r = await tcpExchange(client, addr.b, PORT, { timeoutMs: 1500 });
    expect(r.ok).toBe(false);
    expect(r.sport).toBeUndefined();
    expect(records[0]).toMatchObject({ action: 'deny', reason: 'rule', ruleId: 'block' });
    expect(i.counters.denied).toBeGreaterThanOrEqual(1);
    expect(i.counters.allowed).toBe(0);
  });

  it('one attempt, one decision: SYN retransmits and later datagrams of a denied attempt are denied again without asking', async () => {
    const records: DecisionRecord[] = [];
    const asked: string[] = [];
    const i = interceptor(
      {
        // Dropped silently: a refused attempt (TCP reset, ICMP) is not retransmitted.
        decide: async (r) => {
          asked.push(`${r.protocol}:${r.sport}`);
          return { action: 'deny', reason: 'rule', ruleId: 'block', denyWith: 'drop' };
        },
      },
      records,
    );
    await i.start();
    // The kernel retransmits an unanswered SYN after 1 s and 3 s.
    const r = await tcpExchange(client, addr.b, PORT, { timeoutMs: 4500 });
    expect(r.ok).toBe(false);
    expect(asked.filter((a) => a.startsWith('tcp'))).toHaveLength(1);
    expect(i.counters.repeated).toBeGreaterThanOrEqual(1);
    // Three datagrams of one socket, 300 ms apart: one decision.
    const send = spawn('ip', [
      'netns',
      'exec',
      client.name,
      process.execPath,
      '-e',
      `const s=require('dgram').createSocket('udp4');let n=0;s.bind(40700,()=>{const f=()=>n++<3?s.send('x',9997,'${addr.b}',()=>setTimeout(f,300)):s.close();f();})`,
    ]);
    await new Promise((resolve) => send.on('exit', resolve));
    expect(send.exitCode).toBe(0);
    await until(() => i.counters.repeated >= 3);
    expect(asked.filter((a) => a === 'udp:40700')).toHaveLength(1);
    expect(records).toHaveLength(2);
    // A new attempt (another source port) is decided anew.
    await tcpExchange(client, addr.b, PORT, { timeoutMs: 500 });
    expect(asked.filter((a) => a.startsWith('tcp'))).toHaveLength(2);
  });

  it('a decider that never answers: the default verdict at the deadline, the decider told to let go; others pass meanwhile', async () => {
    const records: DecisionRecord[] = [];
    const abandoned: number[] = [];
    const slow: Decider = {
      decide: (request) =>
        request.dport === SLOW_PORT
          ? new Promise(() => undefined) // holds this flow forever, like an unanswered prompt
          : Promise.resolve({ action: 'allow', reason: 'rule', ruleId: null }),
      abandon: (request) => abandoned.push(request.dport ?? -1),
    };
    const i = interceptor(slow, records, 1500);
    await i.start();
    const held = tcpExchange(client, addr.b, SLOW_PORT, { count: 1, timeoutMs: 8000 });
    await until(() => i.counters.inFlight === 1);
    const fast = await tcpExchange(client, addr.b, PORT, { count: 1 });
    expect(fast.ok).toBe(true);
    expect(fast.ms).toBeLessThan(1000);
    expect(i.counters.inFlight).toBe(1); // the slow one is still held
    const r = await held;
    expect(r.ok).toBe(true); // default action allow, given by the daemon at its deadline
    expect(r.ms).toBeGreaterThanOrEqual(1400);
    const slowRecord = records.find((x) => x.request.dport === SLOW_PORT);
    expect(slowRecord).toMatchObject({ action: 'allow', reason: 'deadline' });
    expect(abandoned).toEqual([SLOW_PORT]); // a prompt would release the packet's place
    expect(i.nfqueue!.counters.deadline).toBe(0); // the queue's backstop never fired
  });

  it('--inbound: new inbound connections are decided on the server side', async () => {
    const records: DecisionRecord[] = [];
    let action: 'allow' | 'deny' = 'allow';
    const i = new Interceptor({
      netns: server.name,
      queue: QUEUE,
      policy: { defaultAction: 'allow', decisionTimeoutMs: 2000, failClosed: false, inbound: true },
      decider: { decide: async () => ({ action, reason: 'rule', ruleId: null }) },
      log: silentLogger,
      sinks: [{ record: (e) => records.push(e) }],
    });
    running.push(i);
    await i.start();
    try {
      expect(serverRules.inboundQueued()).toBe(true);
      const ok = await tcpExchange(client, addr.b, PORT, { count: 3 });
      expect(ok).toMatchObject({ ok: true, replies: 3 });
      expect(records[0]?.request).toMatchObject({
        direction: 'inbound',
        src: addr.a,
        sport: ok.sport,
        dst: addr.b,
        dport: PORT,
        outIfindex: null,
      });
      expect(records[0]?.request.inIfindex).toBeGreaterThan(1);
      // Only the SYN came up: the replies left by connmark.
      expect(i.nfqueue!.counters.received).toBe(1);
      action = 'deny';
      expect((await tcpExchange(client, addr.b, PORT, { timeoutMs: 1500 })).ok).toBe(false);
      expect(records.at(-1)).toMatchObject({ action: 'deny' });
    } finally {
      server.exec('conntrack', ['-F']);
    }
  });

  it('a burst of one flow before its verdict is decided once; every packet gets the verdict', async () => {
    const records: DecisionRecord[] = [];
    let asked = 0;
    const i = interceptor(
      {
        decide: async () => {
          asked++;
          await sleep(300); // a slow answer: the whole burst is queued meanwhile
          return { action: 'allow', reason: 'rule', ruleId: null };
        },
      },
      records,
    );
    await i.start();
    const receiver = spawn(
      'ip',
      [
        'netns',
        'exec',
        server.name,
        process.execPath,
        '-e',
        `const s=require('dgram').createSocket('udp4');let n=0;s.on('message',()=>{if(++n===4){console.log('4');process.exit(0);}});s.bind(9998,'${addr.b}',()=>console.log('ready'));setTimeout(()=>{console.log(String(n));process.exit(0);},5000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const received = new Promise((resolve) => receiver.on('exit', resolve));
    const output: string[] = [];
    receiver.stdout.on('data', (d: Buffer) => output.push(...d.toString().trim().split('\n')));
    await until(() => output.includes('ready'));
    const send = spawn('ip', [
      'netns',
      'exec',
      client.name,
      process.execPath,
      '-e',
      `const s=require('dgram').createSocket('udp4');s.bind(40600,()=>{let n=0;for(let k=0;k<4;k++)s.send('x',9998,'${addr.b}',()=>{if(++n===4)s.close();});})`,
    ]);
    await new Promise((resolve) => send.on('exit', resolve));
    await until(() => i.nfqueue!.counters.repeated === 4);
    expect(i.nfqueue!.counters.received).toBe(4);
    expect(asked).toBe(1);
    expect(i.counters.coalesced).toBe(3);
    expect(records).toHaveLength(1);
    // The followers were let through too: the receiver got all four datagrams.
    await received;
    expect(output.at(-1)).toBe('4');
  });

  it('a decider that throws: the default action with reason error', async () => {
    const records: DecisionRecord[] = [];
    const i = interceptor({ decide: () => Promise.reject(new Error('boom')) }, records);
    await i.start();
    expect((await tcpExchange(client, addr.b, PORT)).ok).toBe(true);
    expect(records[0]).toMatchObject({ action: 'allow', reason: 'error' });
  });

  it('Interception: the flow table sees the flow with its tuple and process, kill ends it, stats count it', async () => {
    const events: FlowDelta[] = [];
    const lines: string[] = [];
    const helper = await startHelper({
      log: createLogger({ write: (l) => lines.push(l) }),
      attributor: {
        attribute: async () => ({
          uid: 1234,
          process: {
            pid: 4321,
            ppid: 1,
            startTime: 1,
            comm: 'client',
            exe: '/usr/bin/client',
            cmdline: ['client'],
            uid: 1234,
            gid: null,
            user: null,
            unit: null,
            container: null,
            appId: null,
          },
        }),
      },
      hostNames: { lookup: (ip) => (ip === addr.b ? 'server.test' : null) },
      publisher: { publish: (topic, data) => topic === 'flows' && events.push(data as FlowDelta) },
    });
    // Nobody watches yet: only flow ends are read. A watcher makes it follow the table.
    expect(helper.flows.following).toBe('ends');
    helper.flows.setWatched(true);
    await helper.flows.follow();
    expect(helper.flows.following).toBe('all');
    const hold = tcpHold(client, addr.b, PORT, 2);
    try {
      const { sport } = await hold.next('connected');
      await hold.next('echoed');
      let id: number | undefined;
      await until(() => {
        const f = helper.flows.snapshot().find((x) => x.sport === sport && x.dport === PORT);
        id = f?.id;
        return f !== undefined && f.state === 'ESTABLISHED';
      });
      const flow = helper.flows.get(id!)!;
      expect(flow).toMatchObject({
        family: 'ipv4',
        protocol: 'tcp',
        src: addr.a,
        dst: addr.b,
        sport,
        dport: PORT,
        replySrc: addr.b,
        replyDst: addr.a,
        replySport: PORT,
        replyDport: sport,
        mark: 1,
        host: 'server.test',
        process: expect.objectContaining({ pid: 4321, exe: '/usr/bin/client' }),
      });
      expect(events.some((e) => e.kind === 'added' && e.flow.id === id)).toBe(true);

      // Revoking sets a denied connmark (other bits kept); the table follows. The silent
      // one (0x3), so that the socket is still there for kill (0x2 resets the connection
      // at its next packet).
      await helper.flows.setMark(id!, 0x3, 0x3);
      await until(() =>
        events.some((e) => e.kind === 'updated' && e.flow.id === id && e.flow.mark === 3),
      );
      expect(client.exec('conntrack', ['-L', '-p', 'tcp', '--sport', String(sport)])).toMatch(
        /mark=3 /,
      );

      const result = await helper.flows.kill(id!);
      expect(result).toEqual({ conntrackDeleted: true, socketsDestroyed: 1 });
      const end = await hold.next('end');
      expect(end.ok).toBe(false);
      expect(end.error).toBe('ECONNABORTED');
      await until(() => events.some((e) => e.kind === 'removed' && e.id === id));

      const stats = await helper.stats.collect();
      expect(stats.allowed).toBe(1);
      expect(stats.denied).toBe(0);
      expect(stats.conntrackMax).toBeGreaterThan(0);
      expect(helper.state()).toMatchObject({
        netns: client.name,
        firewallBackend: clientRules.stateName,
        queue: QUEUE,
      });
      expect(
        lines.some((l) =>
          / info interceptor: allow outbound tcp .*host=server.test .*pid=4321/.test(l),
        ),
      ).toBe(true);
    } finally {
      hold.stop();
    }
    await helper.stop();
    expect(clientRules.lines()).toEqual([]);
  });

  it('the flow table reports a UDP flow and its removal by somebody else', async () => {
    const events: FlowDelta[] = [];
    const helper = await startHelper({
      log: silentLogger,
      socketDestroyer: null,
      publisher: { publish: (topic, data) => topic === 'flows' && events.push(data as FlowDelta) },
    });
    helper.flows.setWatched(true);
    await helper.flows.follow();
    const send = spawnSync('ip', [
      'netns',
      'exec',
      client.name,
      process.execPath,
      '-e',
      `const s=require('dgram').createSocket('udp4');s.bind(40404,()=>s.send('x',9999,'${addr.b}',()=>s.close()))`,
    ]);
    expect(send.status).toBe(0);
    await until(() =>
      events.some(
        (e) =>
          e.kind === 'added' &&
          e.flow.protocol === 'udp' &&
          e.flow.sport === 40404 &&
          e.flow.dport === 9999 &&
          e.flow.dst === addr.b,
      ),
    );
    const added = events.find((e) => e.kind === 'added' && e.flow.sport === 40404);
    const id = added?.kind === 'added' ? added.flow.id : -1;
    client.exec('conntrack', ['-D', '-p', 'udp', '--sport', '40404']);
    await until(() => events.some((e) => e.kind === 'removed' && e.id === id));
    expect(helper.flows.get(id)).toBeUndefined();
  });
  it('unwatched, the flow table reads only ends (with counters for the history); watching follows every flow, and stops after the idle time', async () => {
    client.exec('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1']);
    const ended: Flow[] = [];
    const events: FlowDelta[] = [];
    const helper = await startHelper({
      log: silentLogger,
      socketDestroyer: null,
      flowIdleMs: 200,
      hostNames: { lookup: (ip) => (ip === addr.b ? 'server.test' : null) },
      onFlowEnded: (f) => ended.push(f),
      publisher: { publish: (topic, data) => topic === 'flows' && events.push(data as FlowDelta) },
    });
    try {
      expect(helper.flows.following).toBe('ends');
      // A flow that starts and ends unwatched: no deltas, but its end with counters and name.
      const first = await tcpExchange(client, addr.b, PORT, { count: 3 });
      expect(first.ok).toBe(true);
      client.exec('conntrack', ['-D', '-p', 'tcp', '--sport', String(first.sport)]);
      await until(() => ended.some((f) => f.sport === first.sport));
      const end = ended.find((f) => f.sport === first.sport)!;
      expect(end).toMatchObject({ dst: addr.b, dport: PORT, host: 'server.test' });
      expect(end.bytesOut).toBeGreaterThan(0);
      expect(end.packetsIn).toBeGreaterThan(0);
      expect(events).toEqual([]);
      expect(helper.flows.snapshot()).toEqual([]);

      // A flow that opened unwatched is named once somebody watches.
      const hold = tcpHold(client, addr.b, PORT, 2);
      try {
        const { sport } = await hold.next('connected');
        await hold.next('echoed');
        helper.flows.setWatched(true);
        await helper.flows.follow();
        expect(helper.flows.following).toBe('all');
        const live = helper.flows.snapshot().find((f) => f.sport === sport);
        expect(live).toMatchObject({ dst: addr.b, host: 'server.test' });
        // Watched: the table does not go back, however long it waits.
        await sleep(400);
        expect(helper.flows.following).toBe('all');
        helper.flows.setWatched(false);
        await until(() => helper.flows.following === 'ends');
        // Its end is still reported with its name after the mirror went away.
        client.exec('conntrack', ['-D', '-p', 'tcp', '--sport', String(sport)]);
        await until(() => ended.some((f) => f.sport === sport));
        expect(ended.find((f) => f.sport === sport)?.host).toBe('server.test');
      } finally {
        hold.stop();
      }
      // kill by id with nobody watching follows the table for the call, then idles back.
      const again = tcpHold(client, addr.b, PORT, 2);
      try {
        const { sport } = await again.next('connected');
        await helper.flows.follow();
        const id = helper.flows.snapshot().find((f) => f.sport === sport)?.id;
        expect(id).toBeDefined();
        await until(() => helper.flows.following === 'ends');
        await expect(helper.flows.kill(id!)).resolves.toMatchObject({ conntrackDeleted: true });
        await until(() => helper.flows.following === 'ends');
      } finally {
        again.stop();
      }
    } finally {
      client.exec('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=0']);
    }
  });
});
