// UI benchmark: the built renderer (dist/renderer) in Debian's Chromium with a
// synthetic 100,000-flow source at 1,000 updates/s installed where the
// preload would put window.portcullis. Prints time to first render, scroll
// frame times and the JS heap. A benchmark, not a test: it asserts nothing.
//   npm run bench:ui        (builds the renderer and this script first)
//   FLOWS=100000 RATE=1000 node dist/bench/ui-render.js
import { createServer, type Server } from 'node:http';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { build } from 'vite';

/** What bench/ui-page/synthetic.ts records in the page (window.__bench). */
interface BenchState {
  synthStartAt: number;
  synthReadyAt: number;
  firstRowAt: number | null;
  updates: number;
}

const here = fileURLToPath(new URL('.', import.meta.url));
// Run from bench/ (source) or dist/bench/ (compiled): find the repository root.
const repo = resolve(here, here.includes(`${join('dist', 'bench')}`) ? '../..' : '..');
const rendererDir = join(repo, 'dist', 'renderer');
const flows = Number(process.env.FLOWS ?? 100_000);
const rate = Number(process.env.RATE ?? 1_000);
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
};

function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/'));
    const file = join(dir, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dir)) {
      res.writeHead(403).end();
      return;
    }
    readFile(file).then(
      (body) =>
        res
          .writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' })
          .end(body),
      () => res.writeHead(404).end(),
    );
  });
  return new Promise((ok) =>
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      ok({ server, url: `http://127.0.0.1:${port}/` });
    }),
  );
}

/** The synthetic source as one IIFE for page.addInitScript. */
async function bundleSynthetic(): Promise<string> {
  const result = await build({
    configFile: false,
    logLevel: 'warn',
    root: repo,
    build: {
      write: false,
      minify: true,
      target: 'es2022',
      lib: {
        entry: join(repo, 'bench', 'ui-page', 'synthetic.ts'),
        formats: ['iife'],
        name: 'PortcullisBench',
      },
    },
  });
  const outputs = Array.isArray(result) ? result : [result];
  for (const out of outputs) {
    if ('output' in out) {
      const chunk = out.output.find((o) => o.type === 'chunk');
      if (chunk && chunk.type === 'chunk') return chunk.code;
    }
  }
  throw new Error('bundleSynthetic: no chunk');
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

const round = (v: number) => Math.round(v * 100) / 100;

const code = await bundleSynthetic();
const { server, url } = await serve(rendererDir);
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--disable-sync',
    '--enable-precise-memory-info',
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.addInitScript({
    content: `globalThis.__benchConfig = ${JSON.stringify({ flows, updatesPerSecond: rate, ticksPerSecond: 10 })};\n${code}`,
  });

  await page.goto(`${url}#connections`);
  await page.waitForFunction('window.__bench && window.__bench.firstRowAt !== null', null, {
    timeout: 60_000,
  });
  const bench = (await page.evaluate('window.__bench')) as BenchState;
  const snap = (await page.evaluate('window.__benchProbe.snapshot()')) as {
    rows: number;
    rowcount: string | null;
    dcl: number;
  };

  // Let live updates run before measuring.
  await page.waitForTimeout(2000);
  // Scroll one step per frame with live updates on: a wheel (120 px, about 4
  // rows) and a fling (1,000 px, a new screenful every frame).
  const wheel = (await page.evaluate('window.__benchProbe.scrollFrames(300, 120)')) as number[];
  const fling = (await page.evaluate('window.__benchProbe.scrollFrames(300, 1000)')) as number[];
  const wheelCost = (await page.evaluate('window.__benchProbe.scrollWork(200, 120)')) as number[];
  const flingCost = (await page.evaluate('window.__benchProbe.scrollWork(200, 1000)')) as number[];
  const domRows = ((await page.evaluate('window.__benchProbe.snapshot()')) as { rows: number })
    .rows;
  const sortClick = (await page.evaluate('window.__benchProbe.sortClick()')) as {
    blockedMs: number;
    renderedMs: number;
  };

  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  const heap = await cdp.send('Runtime.getHeapUsage');
  const live = (await page.evaluate('window.__bench')) as BenchState;

  const stats = (values: number[]) => {
    const v = [...values].sort((a, b) => a - b);
    return {
      p50: round(quantile(v, 0.5)),
      p95: round(quantile(v, 0.95)),
      max: round(v[v.length - 1] ?? NaN),
      n: v.length,
    };
  };
  const result = {
    date: new Date().toISOString(),
    chromium: browser.version(),
    /** Frame times depend on what else the machine runs: report it. */
    cpus: cpus().length,
    loadAverage1m: round(loadavg()[0] ?? NaN),
    flows,
    updatesPerSecond: rate,
    timeToFirstRowMs: round(bench.firstRowAt ?? NaN),
    syntheticSourceMs: round(bench.synthReadyAt - bench.synthStartAt),
    timeToFirstRowExclSourceMs: round(
      (bench.firstRowAt ?? NaN) - (bench.synthReadyAt - bench.synthStartAt),
    ),
    domContentLoadedMs: round(snap.dcl),
    /** rAF-to-rAF interval while scrolling (16.7 ms = every frame made). */
    scrollFrameMs: { wheel120px: stats(wheel), fling1000px: stats(fling) },
    /** Scroll handler + Vue patch + style and layout, per step (no paint). */
    scrollUpdateCostMs: { wheel120px: stats(wheelCost), fling1000px: stats(flingCost) },
    sortClickMs: { blocked: round(sortClick.blockedMs), rendered: round(sortClick.renderedMs) },
    domFlowRows: domRows,
    ariaRowcount: snap.rowcount,
    flowRowsAtFirstRender: snap.rows,
    jsHeapUsedMB: round(heap.usedSize / 2 ** 20),
    jsHeapTotalMB: round(heap.totalSize / 2 ** 20),
    updatesApplied: live.updates,
    consoleProblems: problems,
  };
  await mkdir(join(repo, 'bench', 'results'), { recursive: true });
  await writeFile(
    join(repo, 'bench', 'results', 'ui-render.json'),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  await browser.close();
  server.close();
}
