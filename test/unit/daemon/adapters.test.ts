import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import * as v from 'valibot';
import { afterEach, describe, expect, it } from 'vitest';
import type {
  KernelFirstAttributor,
  ProcessInfo as ProcProcess,
} from '../../../helper/attribution/index.js';
import { readTokenLine } from '../../../helper/cli/helper.js';
import {
  AttributorAdapter,
  DnsHostNames,
  HistorySink,
  ServerPublisher,
  toModelProcess,
  type TopicServer,
} from '../../../helper/daemon/adapters.js';
import { silentLogger } from '../../../helper/daemon/log.js';
import { requestTuple, tupleKey } from '../../../helper/daemon/request.js';
import { DnsCache } from '../../../helper/dns/index.js';
import { HistoryStore } from '../../../helper/history/index.js';
import {
  MAX_ANCESTORS,
  ProcessInfo,
  type Flow,
  type HelperState,
  type HistoryEntry,
  type Stats,
} from '../../../helper/protocol/model.js';
import { req } from '../decisions/fixtures.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pcl-adapters-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const PROC: ProcProcess = {
  pid: 4242,
  ppid: 1,
  comm: 'curl',
  exe: '/usr/bin/curl',
  exeDeleted: false,
  cmdline: ['curl', 'x'.repeat(5000), ...Array.from({ length: 300 }, (_, i) => `a${i}`)],
  uid: 1000,
  gid: 1000,
  euid: 1000,
  egid: 1000,
  user: 'me',
  startTime: 123,
  systemdUnit: 'user@1000.service',
  systemdUserUnit: 'app-curl-1.scope',
  container: { runtime: 'podman', id: 'c'.repeat(64) },
  app: { kind: 'flatpak', id: 'org.example.App' },
};

describe('AttributorAdapter', () => {
  it('maps the tuple to sock_diag and the process to the model (bounded, schema-valid)', async () => {
    const seen: unknown[] = [];
    const fake = {
      attribute: (r: unknown) => {
        seen.push(r);
        return Promise.resolve({ uid: 1000, process: PROC, via: 'procfs' as const });
      },
    };
    const a = new AttributorAdapter(fake);
    const got = await a.attribute({
      family: 'ipv4',
      protocol: 6,
      src: '198.18.0.1',
      sport: 40000,
      dst: '198.18.0.2',
      dport: 80,
      inbound: true,
    });
    expect(seen).toEqual([
      {
        family: 'ipv4',
        protocol: 'tcp',
        src: '198.18.0.1',
        sport: 40000,
        dst: '198.18.0.2',
        dport: 80,
        inbound: true,
      },
    ]);
    expect(got.uid).toBe(1000);
    expect(v.safeParse(ProcessInfo, got.process).success).toBe(true);
    expect(got.process).toMatchObject({
      pid: 4242,
      exe: '/usr/bin/curl',
      unit: 'app-curl-1.scope',
      container: 'c'.repeat(64),
      appId: 'org.example.App',
    });
    expect(got.process!.cmdline).toHaveLength(256);
    expect(got.process!.cmdline[1]).toHaveLength(4096);
  });

  it('no ports or no socket protocol (ICMP): nobody, without asking', async () => {
    const fake = {
      attribute: () => Promise.reject(new Error('must not be called')),
    } satisfies Pick<KernelFirstAttributor, 'attribute'>;
    await expect(
      new AttributorAdapter(fake).attribute({
        family: 'ipv4',
        protocol: 1,
        src: '198.18.0.1',
        dst: '198.18.0.2',
        sport: null,
        dport: null,
      }),
    ).resolves.toEqual({ uid: null, process: null });
  });

  it('the parent chain: pid, exe and comm of each ancestor, nearest first, at most MAX_ANCESTORS', () => {
    const chain = Array.from({ length: 40 }, (_, i) => ({
      pid: 100 + i,
      startTime: 50 - i,
      exe: i === 1 ? null : `/usr/bin/p${i}`,
      comm: `p${i}`,
    }));
    const m = toModelProcess({ ...PROC, ancestors: chain });
    expect(v.safeParse(ProcessInfo, m).success).toBe(true);
    expect(m.ancestors).toHaveLength(MAX_ANCESTORS);
    expect(m.ancestors!.slice(0, 2)).toEqual([
      { pid: 100, exe: '/usr/bin/p0', comm: 'p0' },
      { pid: 101, exe: null, comm: 'p1' },
    ]);
    // Not looked up: no field (a 1.3 peer's model, and the schema's optional).
    expect(toModelProcess({ ...PROC })).not.toHaveProperty('ancestors');
  });

  it('the system unit when there is no user unit', () => {
    expect(toModelProcess({ ...PROC, systemdUserUnit: null }).unit).toBe('user@1000.service');
  });

  it('one model per attribution process: its connections share it, another process has its own', () => {
    const a = { ...PROC };
    const first = toModelProcess(a);
    expect(toModelProcess(a)).toBe(first);
    const b = { ...PROC, pid: PROC.pid + 1 };
    expect(toModelProcess(b)).not.toBe(first);
    expect(toModelProcess(b)).toEqual({ ...first, pid: PROC.pid + 1 });
  });
});

describe('DnsHostNames', () => {
  it('a hit at once; a miss looks again after one event-loop turn', async () => {
    const cache = new DnsCache();
    cache.add({ ip: '198.18.0.10', name: 'a.test', ttl: 300, queried: true });
    const names = new DnsHostNames(cache);
    expect(names.lookup('198.18.0.10')).toBe('a.test');
    const pending = names.lookup('198.18.0.11');
    expect(pending).toBeInstanceOf(Promise);
    // The snooper's answer lands before the next turn.
    cache.add({ ip: '198.18.0.11', name: 'b.test', ttl: 300, queried: true });
    await expect(pending).resolves.toBe('b.test');
    await expect(names.lookup('198.18.0.12')).resolves.toBeNull();
  });

  it('with pollNow, a miss reads the logged answers at once and answers without waiting', () => {
    const cache = new DnsCache();
    let polls = 0;
    const names = new DnsHostNames(cache, () => {
      polls++;
      cache.add({ ip: '198.18.0.21', name: 'polled.test', ttl: 300, queried: true });
      return true;
    });
    expect(names.lookup('198.18.0.21')).toBe('polled.test');
    expect(names.lookup('198.18.0.21')).toBe('polled.test');
    expect(polls).toBe(1);
    expect(names.lookup('198.18.0.22')).toBeNull();
    // A log that cannot be read now: the one-turn wait again.
    const unreadable = new DnsHostNames(cache, () => false);
    expect(unreadable.lookup('198.18.0.23')).toBeInstanceOf(Promise);
  });
});

describe('HistorySink', () => {
  it('appends, publishes with seq, and adds the end counters when the flow ends', async () => {
    const store = await HistoryStore.open({ dir: tempDir() });
    const published: HistoryEntry[] = [];
    const sink = new HistorySink(store, { log: silentLogger, publish: (e) => published.push(e) });
    const request = req({ sport: 40000, dport: 443 });
    sink.record({ request, action: 'allow', reason: 'rule', ruleId: null, decidedAt: 1000 });
    sink.record({
      request: req({ sport: 40001 }),
      action: 'deny',
      reason: 'no-gui',
      ruleId: null,
      decidedAt: 1001,
    });
    expect(published.map((e) => e.seq)).toEqual([published[0]!.seq, published[0]!.seq + 1]);
    const flow = {
      family: request.family,
      protocolNumber: request.protocolNumber,
      src: request.src,
      dst: request.dst,
      sport: request.sport,
      dport: request.dport,
      bytesOut: 10,
      bytesIn: 20,
      packetsOut: 1,
      packetsIn: 2,
    } as Flow;
    sink.flowEnded(flow);
    sink.flowEnded(flow); // once only
    const [entry] = store
      .queryMemory({ limit: 10 })
      .entries.filter((e) => e.request.sport === 40000);
    expect(entry).toMatchObject({ bytesOut: 10, bytesIn: 20, packetsOut: 1, packetsIn: 2 });
    expect(entry!.ended).not.toBeNull();
    await store.close();
  });

  it('keys an open flow by the tuple key the caller passes (the interceptor made it already)', async () => {
    const store = await HistoryStore.open({ dir: tempDir() });
    const sink = new HistorySink(store, { log: silentLogger });
    const request = req({ sport: 40002, dport: 443 });
    const given = tupleKey(requestTuple(request));
    sink.record({ request, action: 'allow', reason: 'rule', ruleId: null, decidedAt: 1000 }, given);
    const ended = { bytesOut: 1, bytesIn: 2, packetsOut: 3, packetsIn: 4 } as Flow;
    sink.flowEnded(ended, 'some/other/key');
    expect(store.queryMemory({ limit: 10 }).entries[0]!.ended).toBeNull();
    sink.flowEnded(ended, given);
    expect(store.queryMemory({ limit: 10 }).entries[0]).toMatchObject({
      bytesOut: 1,
      packetsIn: 4,
    });
    // A key that is not the request's own is used as given, not rebuilt.
    sink.record(
      {
        request: req({ sport: 40003 }),
        action: 'allow',
        reason: 'rule',
        ruleId: null,
        decidedAt: 1001,
      },
      'k',
    );
    sink.flowEnded(ended, 'k');
    expect(
      store.queryMemory({ limit: 10 }).entries.find((e) => e.request.sport === 40003)!.ended,
    ).not.toBeNull();
    await store.close();
  });
});

describe('ServerPublisher', () => {
  it('flow deltas become FlowsDelta, stats/state pass, the start snapshot is left out', () => {
    const got: [string, unknown][] = [];
    const server: TopicServer = { publish: (topic, data) => got.push([topic, data]) };
    const p = new ServerPublisher();
    p.publish('stats', { x: 0 } as unknown as Stats); // before attach: nobody
    p.attach(server);
    const flow = { id: 7 } as Flow;
    p.publish('flows', { kind: 'snapshot', flows: [flow] });
    p.publish('flows', { kind: 'added', flow });
    p.publish('flows', { kind: 'updated', flow });
    p.publish('flows', { kind: 'removed', id: 7 });
    p.publish('stats', { x: 1 } as unknown as Stats);
    p.publish('state', { y: 1 } as unknown as HelperState);
    expect(got).toEqual([
      ['flows', { added: [flow], updated: [], removed: [] }],
      ['flows', { added: [], updated: [flow], removed: [] }],
      ['flows', { added: [], updated: [], removed: [7] }],
      ['stats', { x: 1 }],
      ['state', { y: 1 }],
    ]);
  });
});

describe('--token-stdin', () => {
  it('reads the first line, even if the stream stays open', async () => {
    const s = new PassThrough();
    const token = readTokenLine(s);
    s.write('abc');
    s.write('def\nrest');
    await expect(token).resolves.toBe('abcdef');
  });

  it('an empty stdin is an error', async () => {
    const s = new PassThrough();
    const token = readTokenLine(s);
    s.end('\n');
    await expect(token).rejects.toThrow(/no token/);
  });
});
