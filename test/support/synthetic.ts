/**
 * Synthetic traffic for the in-memory API: deterministic flows, live updates
 * and verdicts, for the UI benchmark (100,000 flows, 1,000 updates/s) and for
 * tests that need volume. No timers here: the caller
 * drives `tick()` so tests and the benchmark own the clock.
 */
import type { Flow, HistoryEntry, ProcessInfo, Protocol } from '../../src-main/common/api.js';
import type { MemoryPortcullis } from './memory-api.js';

/** mulberry32: small, fast, seedable, good enough for test data. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const APPS: ReadonlyArray<readonly [comm: string, exe: string, user: string, uid: number]> = [
  ['firefox', '/usr/lib/firefox/firefox', 'alice', 1000],
  ['chromium', '/usr/lib/chromium/chromium', 'alice', 1000],
  ['curl', '/usr/bin/curl', 'alice', 1000],
  ['ssh', '/usr/bin/ssh', 'alice', 1000],
  ['systemd-resolve', '/usr/lib/systemd/systemd-resolved', 'systemd-resolve', 991],
  ['apt', '/usr/bin/apt', 'root', 0],
  ['thunderbird', '/usr/lib/thunderbird/thunderbird', 'alice', 1000],
  ['spotify', '/usr/share/spotify/spotify', 'bob', 1001],
  ['git-remote-http', '/usr/lib/git-core/git-remote-http', 'bob', 1001],
  ['node', '/usr/bin/node', 'bob', 1001],
  ['NetworkManager', '/usr/sbin/NetworkManager', 'root', 0],
  ['chronyd', '/usr/sbin/chronyd', '_chrony', 105],
];
const HOSTS = [
  'example.com',
  'www.debian.org',
  'deb.debian.org',
  'github.com',
  'api.github.com',
  'fonts.gstatic.com',
  'mail.example.org',
  'ntp.ubuntu.com',
  'open.spotify.com',
  'registry.npmjs.org',
  null,
];
const TCP_STATES = ['ESTABLISHED', 'SYN_SENT', 'TIME_WAIT', 'CLOSE_WAIT', 'FIN_WAIT'];
const PORTS = [443, 443, 443, 80, 22, 53, 123, 993, 8080, 5228];

function pick<T>(list: readonly T[], r: number): T {
  return list[Math.floor(r * list.length) % list.length] as T;
}

/** One synthetic flow; `id` fixes everything else for a given random stream. */
function syntheticFlow(id: number, random: () => number, now: number): Flow {
  const [comm, exe, user, uid] = pick(APPS, random());
  const protocol: Protocol = random() < 0.8 ? 'tcp' : random() < 0.9 ? 'udp' : 'icmp';
  const ipv6 = random() < 0.2;
  const hostIndex = Math.floor(random() * 250) + 1;
  const src = ipv6 ? `2001:db8::${(id % 65535).toString(16)}` : `192.168.1.${(id % 250) + 1}`;
  const dst = ipv6 ? `2606:4700::${hostIndex.toString(16)}` : `203.0.113.${hostIndex}`;
  const hasPorts = protocol !== 'icmp';
  const sport = hasPorts ? 32768 + (id % 28000) : null;
  const dport = hasPorts ? pick(PORTS, random()) : null;
  const process: ProcessInfo = {
    pid: 1000 + (id % 30000),
    ppid: 1,
    startTime: 12345,
    comm,
    exe,
    cmdline: [exe],
    uid,
    gid: uid,
    user,
    unit: null,
    container: null,
    appId: null,
  };
  const bytesOut = Math.floor(random() * 1e6);
  const bytesIn = Math.floor(random() * 1e7);
  return {
    id,
    family: ipv6 ? 'ipv6' : 'ipv4',
    protocol,
    protocolNumber: protocol === 'tcp' ? 6 : protocol === 'udp' ? 17 : 1,
    src,
    dst,
    sport,
    dport,
    replySrc: dst,
    replyDst: src,
    replySport: dport,
    replyDport: sport,
    state: protocol === 'tcp' ? pick(TCP_STATES, random()) : null,
    status: ['ASSURED', 'SEEN_REPLY'],
    mark: random() < 0.05 ? 7 : 0,
    zone: null,
    labels: [],
    timeout: 120 + Math.floor(random() * 432000),
    start: now - Math.floor(random() * 3_600_000),
    bytesOut,
    bytesIn,
    packetsOut: Math.ceil(bytesOut / 1200),
    packetsIn: Math.ceil(bytesIn / 1200),
    host: pick(HOSTS, random()),
    process: random() < 0.95 ? process : null,
  };
}

/** `count` synthetic flows with ids 1..count. */
export function syntheticFlows(count: number, seed = 1, now = 1_700_000_000_000): Flow[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => syntheticFlow(i + 1, random, now));
}

export interface SyntheticOptions {
  flows: number;
  seed?: number;
  /** Share of updates that end a flow and start a new one (churn). */
  churn?: number;
  now?: () => number;
}

/** Feeds a MemoryPortcullis: a populated table, then `tick(n)` = n updates in one delta. */
export class SyntheticSource {
  private readonly random: () => number;
  private readonly ids: number[] = [];
  private nextId: number;
  private readonly churn: number;
  private readonly now: () => number;
  private verdictSeq = 0;

  constructor(
    private readonly api: MemoryPortcullis,
    options: SyntheticOptions,
  ) {
    this.random = seededRandom(options.seed ?? 1);
    this.churn = options.churn ?? 0.02;
    this.now = options.now ?? (() => Date.now());
    const now = this.now();
    const flows: Flow[] = [];
    for (let id = 1; id <= options.flows; id++) {
      flows.push(syntheticFlow(id, this.random, now));
      this.ids.push(id);
    }
    this.nextId = options.flows + 1;
    api.upsertFlows(flows);
  }

  /** Applies `updates` changes (counters grow, some flows end and new ones start). */
  tick(updates: number): void {
    const now = this.now();
    const upsert: Flow[] = [];
    const remove: number[] = [];
    for (let i = 0; i < updates; i++) {
      const slot = Math.floor(this.random() * this.ids.length);
      const id = this.ids[slot] as number;
      if (this.random() < this.churn) {
        const fresh = syntheticFlow(this.nextId++, this.random, now);
        fresh.start = now;
        this.ids[slot] = fresh.id;
        remove.push(id);
        upsert.push(fresh);
        this.verdict(fresh, now);
        continue;
      }
      const old = this.api.flows.get(id);
      if (!old) continue;
      const addOut = Math.floor(this.random() * 4000);
      const addIn = Math.floor(this.random() * 40000);
      upsert.push({
        ...old,
        bytesOut: (old.bytesOut ?? 0) + addOut,
        bytesIn: (old.bytesIn ?? 0) + addIn,
        packetsOut: (old.packetsOut ?? 0) + Math.ceil(addOut / 1200),
        packetsIn: (old.packetsIn ?? 0) + Math.ceil(addIn / 1200),
      });
    }
    this.api.upsertFlows(upsert, remove);
    this.api.pushStats({
      ...this.api.stats,
      time: now,
      conntrackCount: this.api.flows.size,
      queueTotal: this.api.stats.queueTotal + remove.length,
      allowed: this.api.stats.allowed + remove.length,
    });
  }

  private verdict(flow: Flow, now: number): void {
    // Keep the history bounded: the benchmark measures the table, not this array.
    if (this.api.history.length > 50_000) this.api.history.splice(0, 10_000);
    const entry: Omit<HistoryEntry, 'seq'> = {
      request: {
        time: now,
        direction: 'outbound',
        family: flow.family,
        protocol: flow.protocol,
        protocolNumber: flow.protocolNumber,
        src: flow.src,
        dst: flow.dst,
        sport: flow.sport,
        dport: flow.dport,
        icmpType: null,
        icmpCode: null,
        inIfindex: null,
        outIfindex: 2,
        host: flow.host,
        uid: flow.process?.uid ?? null,
        process: flow.process,
      },
      action: this.verdictSeq++ % 10 === 0 ? 'deny' : 'allow',
      reason: 'rule',
      ruleId: null,
      decidedAt: now,
      ended: null,
      bytesOut: null,
      bytesIn: null,
      packetsOut: null,
      packetsIn: null,
    };
    this.api.recordVerdict(entry);
  }
}
