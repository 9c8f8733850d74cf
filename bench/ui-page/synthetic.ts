// Browser side of the UI benchmark, bundled into an init script that runs
// before the renderer (where the preload would run in Electron). It installs
// window.portcullis backed by the in-memory API and a synthetic source
// (100,000 flows, 1,000 updates/s by default) and a probe the bench drives.
// Never part of the product bundle.
import { MemoryPortcullis } from '../../test/support/memory-api.js';
import { SyntheticSource } from '../../test/support/synthetic.js';

interface BenchConfig {
  flows: number;
  updatesPerSecond: number;
  ticksPerSecond: number;
}

export interface BenchState {
  synthStartAt: number;
  synthReadyAt: number;
  firstRowAt: number | null;
  updates: number;
}

declare global {
  interface Window {
    __benchConfig?: BenchConfig;
    __bench?: BenchState;
    __benchProbe?: typeof probe;
  }
}

const config: BenchConfig = window.__benchConfig ?? {
  flows: 100_000,
  updatesPerSecond: 1_000,
  ticksPerSecond: 10,
};
const state: BenchState = {
  synthStartAt: performance.now(),
  synthReadyAt: 0,
  firstRowAt: null,
  updates: 0,
};
const api = new MemoryPortcullis();
const source = new SyntheticSource(api, { flows: config.flows, seed: 42 });
state.synthReadyAt = performance.now();
window.__bench = state;
window.portcullis = api;

const perTick = Math.round(config.updatesPerSecond / config.ticksPerSecond);
setInterval(() => {
  source.tick(perTick);
  state.updates += perTick;
}, 1000 / config.ticksPerSecond);

function poll(): void {
  if (document.querySelector('.grid-row.flow')) {
    state.firstRowAt = performance.now();
    return;
  }
  requestAnimationFrame(poll);
}
poll();

function grid(): HTMLElement {
  const el = document.querySelector<HTMLElement>('.flow-grid');
  if (!el) throw new Error('no .flow-grid');
  return el;
}

const probe = {
  /** rAF-to-rAF intervals while scrolling one step per frame (live updates on). */
  async scrollFrames(steps: number, step: number): Promise<number[]> {
    const el = grid();
    const deltas: number[] = [];
    await new Promise<void>((done) => {
      let last = 0;
      let i = 0;
      const frame = (t: number): void => {
        if (last !== 0) deltas.push(t - last);
        last = t;
        el.scrollTop = (el.scrollTop + step) % (el.scrollHeight - el.clientHeight);
        if (++i < steps) requestAnimationFrame(frame);
        else done();
      };
      requestAnimationFrame(frame);
    });
    return deltas;
  },

  /** The renderer's own cost per scroll step: handler, Vue patch, style and layout. */
  async scrollWork(steps: number, step: number): Promise<number[]> {
    const el = grid();
    const costs: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      el.scrollTop = (el.scrollTop + step) % (el.scrollHeight - el.clientHeight);
      el.dispatchEvent(new Event('scroll'));
      await Promise.resolve(); // Vue flushes its render queue in a microtask
      await Promise.resolve();
      void el.offsetHeight; // force style and layout
      costs.push(performance.now() - t0);
      await new Promise((r) => requestAnimationFrame(r));
    }
    return costs;
  },

  /**
   * Click a column header (re-sort all flows): how long the click blocks the
   * page, and how long until the re-sorted rows are on screen.
   */
  async sortClick(): Promise<{ blockedMs: number; renderedMs: number }> {
    const button = document.querySelector<HTMLButtonElement>('[role=columnheader] button');
    if (!button) throw new Error('no sort button');
    const firstId = () => document.querySelector('.grid-row.flow')?.id;
    const before = firstId();
    const t0 = performance.now();
    button.click();
    const blockedMs = performance.now() - t0;
    const deadline = t0 + 10_000;
    while (firstId() === before && performance.now() < deadline) {
      await new Promise((r) => requestAnimationFrame(r));
    }
    return { blockedMs, renderedMs: performance.now() - t0 };
  },

  snapshot(): { rows: number; rowcount: string | null; dcl: number } {
    const nav = performance.getEntriesByType('navigation')[0] as
      PerformanceNavigationTiming | undefined;
    return {
      rows: document.querySelectorAll('.grid-row.flow').length,
      rowcount: document.querySelector('[role=grid]')?.getAttribute('aria-rowcount') ?? null,
      dcl: nav?.domContentLoadedEventEnd ?? 0,
    };
  },
};
window.__benchProbe = probe;
