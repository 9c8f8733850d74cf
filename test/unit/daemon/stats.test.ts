import { describe, expect, it, vi } from 'vitest';
import * as v from 'valibot';
import { parseQueueProcStats } from '../../../helper/nfqueue/stats.js';
import { buildStats, StatsCollector, sumCpuStats } from '../../../helper/daemon/stats.js';
import { silentLogger } from '../../../helper/daemon/log.js';
import { Stats } from '../../../helper/protocol/model.js';

// A /proc/net/netfilter/nfnetlink_queue line as the kernel prints it (queue 7, 3 waiting,
// 11 dropped because the queue was full, 2 lost to a full socket buffer, last id 1234).
const PROC = '    7 2941033010     3 2 65531    11     2     1234  1\n';

describe('stats', () => {
  it('sums the per-CPU counters; absent ones count 0', () => {
    expect(
      sumCpuStats([
        { cpu: 0, insertFailed: 1, drop: 2, earlyDrop: 3, found: 100 },
        { cpu: 1, drop: 5 },
      ]),
    ).toEqual({ insertFailed: 1, drop: 7, earlyDrop: 3 });
  });

  it('builds a schema-valid Stats from the /proc line, conntrack and decisions', () => {
    const [queue] = parseQueueProcStats(PROC);
    const s = buildStats(
      1000,
      { allowed: 4, denied: 1, prompted: 0 },
      queue,
      { entries: 12, maxEntries: 262144 },
      [
        { cpu: 0, insertFailed: 1, drop: 0, earlyDrop: 2 },
        { cpu: 1, insert: 40, found: 3, searchRestart: 5, error: 1, invalid: 2 },
      ],
    );
    expect(s).toEqual({
      time: 1000,
      allowed: 4,
      denied: 1,
      prompted: 0,
      queueDropped: 11,
      queueUserDropped: 2,
      queueTotal: 3,
      conntrackCount: 12,
      conntrackMax: 262144,
      conntrackInsertFailed: 1,
      conntrackDrop: 0,
      conntrackEarlyDrop: 2,
      conntrackCpus: [
        {
          cpu: 0,
          found: 0,
          insert: 0,
          insertFailed: 1,
          drop: 0,
          earlyDrop: 2,
          invalid: 0,
          error: 0,
          searchRestart: 0,
        },
        {
          cpu: 1,
          found: 3,
          insert: 40,
          insertFailed: 0,
          drop: 0,
          earlyDrop: 0,
          invalid: 2,
          error: 1,
          searchRestart: 5,
        },
      ],
    });
    expect(v.safeParse(Stats, s).success).toBe(true);
  });

  it('no bound queue and no max: zeros', () => {
    expect(
      buildStats(0, { allowed: 0, denied: 0, prompted: 0 }, undefined, { entries: 0 }, []),
    ).toMatchObject({ queueDropped: 0, queueTotal: 0, conntrackMax: 0 });
  });

  it('the collector samples its sources each time', async () => {
    let allowed = 0;
    const c = new StatsCollector(
      {
        decisions: () => ({ allowed, denied: 0, prompted: 0 }),
        queue: async () => parseQueueProcStats(PROC)[0],
        conntrackGlobal: async () => ({ entries: allowed * 2 }),
        conntrackCpus: async () => [],
      },
      { intervalMs: 1000, log: silentLogger },
    );
    allowed = 3;
    expect(await c.collect()).toMatchObject({ allowed: 3, conntrackCount: 6, queueDropped: 11 });
    allowed = 5;
    expect(await c.collect()).toMatchObject({ allowed: 5, conntrackCount: 10 });
    expect(c.latest?.allowed).toBe(5);
  });
});

describe('stats timer', () => {
  it('publishes a sample every interval on topic stats, and stops', async () => {
    vi.useFakeTimers();
    try {
      const published: unknown[] = [];
      let allowed = 0;
      const c = new StatsCollector(
        {
          decisions: () => ({ allowed: ++allowed, denied: 0, prompted: 0 }),
          queue: async () => undefined,
          conntrackGlobal: async () => ({ entries: 1, maxEntries: 2 }),
          conntrackCpus: async () => [],
        },
        {
          intervalMs: 500,
          log: silentLogger,
          publisher: { publish: (topic, data) => published.push([topic, data]) },
        },
      );
      c.start();
      await vi.advanceTimersByTimeAsync(1600);
      expect(published).toHaveLength(3);
      expect(published[2]).toEqual([
        'stats',
        expect.objectContaining({ allowed: 3, conntrackMax: 2 }),
      ]);
      c.stop();
      await vi.advanceTimersByTimeAsync(2000);
      expect(published).toHaveLength(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a failed sample is logged and the next one still runs', async () => {
    vi.useFakeTimers();
    try {
      const warnings: string[] = [];
      let fail = true;
      const published: unknown[] = [];
      const c = new StatsCollector(
        {
          decisions: () => ({ allowed: 0, denied: 0, prompted: 0 }),
          queue: async () => {
            if (fail) throw new Error('no proc');
            return undefined;
          },
          conntrackGlobal: async () => ({ entries: 0 }),
          conntrackCpus: async () => [],
        },
        {
          intervalMs: 100,
          log: { ...silentLogger, warn: (_c, m) => void warnings.push(m) },
          publisher: { publish: (_t, d) => published.push(d) },
        },
      );
      c.start();
      await vi.advanceTimersByTimeAsync(150);
      expect(warnings).toEqual(['sample failed: no proc']);
      fail = false;
      await vi.advanceTimersByTimeAsync(100);
      expect(published).toHaveLength(1);
      c.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
