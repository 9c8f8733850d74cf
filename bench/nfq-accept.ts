// NFQ_LOOP_CMD for ../shared/bench: binds NFQUEUE $NFQ_QUEUE in the current
// network namespace, sets the queue length from $NFQ_MAXLEN when given, and
// accepts every packet with the library's defaults (batched verdicts, 8 MiB
// receive buffer, copy mode packet 0xffff). On SIGTERM/SIGINT it closes the
// queue and prints one summary line to stderr (the harness keeps the last one).
//
//   node dist/bench/nfq-accept.js                 batched verdicts (NFQNL_MSG_VERDICT_BATCH)
//   node dist/bench/nfq-accept.js --per-packet    one NFQNL_MSG_VERDICT per packet
//
// With $NFQ_DIAG=FILE it also records, and writes to FILE as JSON on exit:
// packets received and queue_dropped per 100 ms, event-loop delay percentiles
// (perf_hooks.monitorEventLoopDelay), and every GC pause (kind, start, ms).
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { readFileSync, writeFileSync } from 'node:fs';
import { NfQueue } from '../helper/nfqueue/queue.js';

function envNumber(name: string, max: number, required: boolean): number | undefined {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') {
    if (!required) return undefined;
    process.stderr.write(`nfq-accept: ${name} is not set\n`);
    process.exit(2);
  }
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n > max || (name === 'NFQ_MAXLEN' && n < 1)) {
    process.stderr.write(`nfq-accept: ${name}=${text} is not a number in range\n`);
    process.exit(2);
  }
  return n;
}

const args = process.argv.slice(2);
for (const a of args) {
  if (a !== '--per-packet') {
    process.stderr.write(`nfq-accept: unknown argument ${a} (only --per-packet)\n`);
    process.exit(2);
  }
}
const perPacket = args.includes('--per-packet');
const queue = envNumber('NFQ_QUEUE', 0xffff, true)!;
const maxQueueLength = envNumber('NFQ_MAXLEN', 0xffffffff, false);
const slots = envNumber('NFQ_SLOTS', 1024, false);
const diagFile = process.env['NFQ_DIAG'];

const q = await NfQueue.open({
  queue,
  batchVerdicts: !perPacket,
  ...(maxQueueLength !== undefined ? { maxQueueLength } : {}),
  ...(slots !== undefined ? { slots } : {}),
});
q.onPacket((p) => p.accept());
let lost = 0;
q.onError((e) => {
  if (e.code === 'LOST') lost++;
  else process.stderr.write(`nfq-accept: ${e.code}: ${e.message}\n`);
});

// Diagnostics (off unless NFQ_DIAG is set).
const started = performance.now();
const perTick: number[] = [];
/** queue_dropped of this queue (this network namespace's /proc), per 100 ms. */
const droppedAt: number[] = [];
function queueDropped(): number {
  const lines = readFileSync('/proc/net/netfilter/nfnetlink_queue', 'utf8').split('\n');
  const fields = lines.map((l) => l.trim().split(/\s+/)).find((f) => Number(f[0]) === queue);
  return fields ? Number(fields[5]) : -1;
}
const gcs: { kind: string; at: number; ms: number }[] = [];
const delay = diagFile ? monitorEventLoopDelay({ resolution: 1 }) : undefined;
let gcObserver: PerformanceObserver | undefined;
let sampler: NodeJS.Timeout | undefined;
if (diagFile) {
  delay!.enable();
  let last = 0;
  sampler = setInterval(() => {
    perTick.push(q.counters.received - last);
    last = q.counters.received;
    droppedAt.push(queueDropped());
  }, 100);
  const kinds: Record<number, string> = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
  };
  gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1;
      gcs.push({
        kind: kinds[kind] ?? String(kind),
        at: Math.round(e.startTime - started),
        ms: +e.duration.toFixed(3),
      });
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
}

let stopping = false;
async function finish(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await q.close();
  const c = q.counters;
  process.stderr.write(
    `summary mode=${perPacket ? 'per-packet' : 'batch'} received=${c.received} accepted=${c.accepted} ` +
      `messages=${c.verdictMessages} batch_messages=${c.batchMessages} datagrams=${c.datagramsSent} ` +
      `enobufs=${c.enobufs} lost_reports=${lost}\n`,
  );
  if (diagFile) {
    clearInterval(sampler);
    gcObserver?.disconnect();
    delay!.disable();
    const pct = (p: number) => +(delay!.percentile(p) / 1e6).toFixed(3);
    const gcMs = gcs.reduce((s, g) => s + g.ms, 0);
    writeFileSync(
      diagFile,
      JSON.stringify({
        mode: perPacket ? 'per-packet' : 'batch',
        counters: c,
        loopDelayMs: { p50: pct(50), p99: pct(99), p999: pct(99.9), max: pct(100) },
        gc: { count: gcs.length, totalMs: +gcMs.toFixed(3), events: gcs },
        receivedPer100ms: perTick,
        queueDroppedPer100ms: droppedAt,
      }),
    );
  }
  process.exit(0);
}
process.on('SIGTERM', () => void finish());
process.on('SIGINT', () => void finish());
