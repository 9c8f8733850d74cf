// Micro-benchmark of rule lookup: 10,000 random rules in a RuleSet, then
// random requests; prints p50/p99 per lookup (and the linear scan for scale).
//   npm run build:ts && node dist/bench/decisions-match.js [rules] [lookups]
// Figures are for reports only; no test asserts them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuleSet, RuleStore, linearLookup } from '../helper/decisions/index.js';
import type { ConnectionRequest, Rule, RuleMatch } from '../helper/protocol/model.js';

const ruleCount = Number(process.argv[2] ?? 10_000);
const lookups = Number(process.argv[3] ?? 200_000);

// A deterministic PRNG so that runs are comparable (mulberry32).
let seed = 0x5eed;
function rand(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const chance = (p: number): boolean => rand() < p;

const exes = Array.from({ length: 400 }, (_, i) => `/usr/bin/app${i}`);
const appIds = Array.from({ length: 60 }, (_, i) => `org.example.App${i}`);
const domains = Array.from({ length: 300 }, (_, i) => `site${i}.example.com`);
const hosts = domains.flatMap((d) => [d, `www.${d}`, `api.${d}`]);
const ports = [22, 53, 80, 123, 443, 993, 8080, 8443];

function randomMatch(): RuleMatch {
  const m: RuleMatch = {};
  const kind = rand();
  if (kind < 0.45) m.exe = pick(exes);
  else if (kind < 0.55) m.appId = pick(appIds);
  if (chance(0.5)) m.host = chance(0.6) ? pick(hosts) : `*.${pick(domains)}`;
  else if (chance(0.4)) {
    m.address = chance(0.5)
      ? `10.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.0/24`
      : `10.${Math.floor(rand() * 256)}.0.0/16`;
  }
  if (chance(0.5)) {
    const p = pick(ports);
    m.port = chance(0.8) ? { from: p, to: p } : { from: 1024, to: 65535 };
  }
  if (chance(0.4)) m.protocol = chance(0.7) ? 'tcp' : 'udp';
  if (chance(0.2)) m.uid = chance(0.5) ? 0 : 1000;
  if (chance(0.3)) m.direction = 'outbound';
  return m;
}

const rules: Rule[] = Array.from({ length: ruleCount }, (_, i) => ({
  id: `r${i}`,
  enabled: chance(0.95),
  action: chance(0.5) ? 'allow' : 'deny',
  match: randomMatch(),
  duration: { kind: 'forever' },
  created: i,
  expires: null,
  hits: 0,
  lastHit: null,
}));

function randomRequest(): ConnectionRequest {
  const sandboxed = chance(0.1);
  return {
    time: 0,
    direction: 'outbound',
    family: 'ipv4',
    protocol: chance(0.8) ? 'tcp' : 'udp',
    protocolNumber: 6,
    src: '192.168.1.2',
    dst: `10.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}`,
    sport: 40000,
    dport: chance(0.9) ? pick(ports) : 1024 + Math.floor(rand() * 60000),
    icmpType: null,
    icmpCode: null,
    inIfindex: null,
    outIfindex: 2,
    host: chance(0.8) ? pick(hosts) : null,
    uid: chance(0.8) ? 1000 : 0,
    process: {
      pid: 1234,
      ppid: 1,
      startTime: 1,
      comm: 'app',
      exe: sandboxed ? '/usr/bin/bwrap' : pick(exes),
      cmdline: [],
      uid: 1000,
      gid: 1000,
      user: 'alice',
      unit: null,
      container: null,
      appId: sandboxed ? pick(appIds) : null,
    },
  };
}

const alive = (): boolean => true;
const t0 = process.hrtime.bigint();
const set = new RuleSet({ isAlive: alive });
for (const r of rules) set.add(r);
const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;

const requests = Array.from({ length: 4096 }, randomRequest);

function measure(
  n: number,
  fn: (r: ConnectionRequest) => Rule | undefined,
): {
  p50: number;
  p99: number;
  mean: number;
  hitRate: number;
} {
  for (let i = 0; i < Math.min(n, 20_000); i++) fn(requests[i % requests.length]!); // warm-up
  const samples = new Float64Array(n);
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const r = requests[i % requests.length]!;
    const a = process.hrtime.bigint();
    if (fn(r)) hits++;
    samples[i] = Number(process.hrtime.bigint() - a);
  }
  const sorted = samples.slice().sort();
  const q = (p: number): number => sorted[Math.min(n - 1, Math.floor(p * n))]! / 1000;
  return {
    p50: q(0.5),
    p99: q(0.99),
    mean: samples.reduce((s, x) => s + x, 0) / n / 1000,
    hitRate: hits / n,
  };
}

const now = 1;
const indexed = measure(lookups, (r) => set.lookup(r, now));

// The same through the store: hit counting and the copy handed to the caller.
const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
const store = await RuleStore.open({ dir, isAlive: alive, hitFlushDelayMs: 3_600_000 });
await store.import({ version: 1, rules }, { mode: 'replace' });
const viaStore = measure(lookups, (r) => store.match(r, now));
await store.close();
rmSync(dir, { recursive: true, force: true });
const linear = measure(Math.max(200, Math.floor(lookups / 500)), (r) =>
  linearLookup(rules, r, now, alive),
);

const fmt = (x: number): string => x.toFixed(2);
console.log(
  `decisions-match: ${ruleCount} rules (index built in ${buildMs.toFixed(1)} ms), ${lookups} lookups`,
);
console.log(
  `indexed RuleSet.lookup: p50 ${fmt(indexed.p50)} us, p99 ${fmt(indexed.p99)} us, mean ${fmt(indexed.mean)} us, matched ${(indexed.hitRate * 100).toFixed(1)}%`,
);
console.log(
  `RuleStore.match (hits + copy): p50 ${fmt(viaStore.p50)} us, p99 ${fmt(viaStore.p99)} us, mean ${fmt(viaStore.mean)} us`,
);
console.log(
  `linear scan (reference, compiles every rule per call): p50 ${fmt(linear.p50)} us, p99 ${fmt(linear.p99)} us, mean ${fmt(linear.mean)} us`,
);
