// `portcullis ui --web`: argument parsing, and startUi's link to a helper
// (a real IpcServer with the scripted service) that goes away and comes back.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { HelperStatus } from '../../../src-main/common/api.js';
import {
  openInBrowser,
  parseUiArgs,
  startUi,
  UiUsageError,
  type RunningUi,
} from '../../../src-main/node/web-cli.js';
import { startHarness, TOKEN, until, type Harness } from '../../support/ipc-harness.js';

describe('parseUiArgs', () => {
  it('reads the options and insists on --web', () => {
    expect(
      parseUiArgs(['--web', '--port', '8123', '--socket', '/s', '--token-file', '/t', '--open']),
    ).toEqual({
      web: true,
      link: false,
      port: 8123,
      socket: '/s',
      tokenFile: '/t',
      open: true,
      help: false,
    });
    expect(parseUiArgs(['link', '--port', '8123', '--open'])).toMatchObject({
      web: false,
      link: true,
      port: 8123,
      open: true,
    });
    expect(() => parseUiArgs(['link', '--web'])).toThrow(/leave out --web/);
    expect(parseUiArgs(['--web']).socket).toBe('/run/portcullis/helper.sock');
    expect(parseUiArgs(['--help']).help).toBe(true);
    expect(() => parseUiArgs([])).toThrow(UiUsageError);
    expect(() => parseUiArgs(['--web', '--port', '70000'])).toThrow(/bad port/);
    expect(() => parseUiArgs(['--web', '--port', '-1'])).toThrow(/bad port/);
    expect(() => parseUiArgs(['--web', '--socket'])).toThrow(/needs a value/);
    expect(() => parseUiArgs(['--web', '--frob'])).toThrow(/unknown option/);
  });
});

describe('startUi', () => {
  let h: Harness | undefined;
  let ui: RunningUi | undefined;
  afterEach(async () => {
    await ui?.stop();
    ui = undefined;
    await h?.stop();
    h = undefined;
  });

  it('connects with the token file, reports the link and reconnects after the helper restarts', async () => {
    h = await startHarness();
    const tokenFile = join(h.dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const saved = process.env['PORTCULLIS_TOKEN'];
    delete process.env['PORTCULLIS_TOKEN'];
    const lines: string[] = [];
    try {
      ui = await startUi(
        { web: true, port: 0, socket: h.path, tokenFile, open: false, help: false },
        (l) => lines.push(l),
      );
    } finally {
      if (saved !== undefined) process.env['PORTCULLIS_TOKEN'] = saved;
    }
    const url = ui.host.issueUrl(null);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#code=[\w-]{43}$/);
    const seen: HelperStatus[] = [];
    ui.bridge.api.onHelperStatus((s) => seen.push(s));
    await until(() => seen.at(-1)?.connection === 'connected', 5000, 'connected');
    expect(seen.at(-1)?.state?.version).toBe('0.1.0');
    // No log line carries a code, nor the helper's token.
    expect(lines.join('\n')).not.toContain(new URL(url).hash.slice('#code='.length));
    expect(lines.join('\n')).not.toContain(TOKEN);

    // The helper goes away: connecting, with the reason; then it is back.
    await h.server.close();
    await until(() => seen.at(-1)?.connection === 'connecting', 5000, 'connecting');
    expect(seen.at(-1)?.error).toBeTruthy();
    const again = await h.listenAgain();
    try {
      await until(() => seen.at(-1)?.connection === 'connected', 10_000, 'reconnected');
    } finally {
      await ui.stop();
      ui = undefined;
      await again.close();
    }
  });

  it('retryHelper skips the rest of a backoff wait', async () => {
    h = await startHarness();
    const path = h.path;
    const tokenFile = join(h.dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    await h.server.close(); // no helper yet: the loop backs off
    const saved = process.env['PORTCULLIS_TOKEN'];
    delete process.env['PORTCULLIS_TOKEN'];
    const waits: { ms: number; at: number }[] = [];
    try {
      ui = await startUi(
        { web: true, port: 0, socket: path, tokenFile, open: false, help: false },
        (l) => {
          const m = /retrying in (\d+) ms/u.exec(l);
          if (m) waits.push({ ms: Number(m[1]), at: Date.now() });
        },
      );
    } finally {
      if (saved !== undefined) process.env['PORTCULLIS_TOKEN'] = saved;
    }
    // Wait for a long wait (full jitter: the delays are random up to 5 s).
    await until(() => (waits.at(-1)?.ms ?? 0) >= 2000, 30_000, 'a wait of 2 s or more');
    const wait = waits.at(-1)!;
    const again = await h.listenAgain();
    try {
      await ui.bridge.api.retryHelper();
      await until(() => ui!.bridge.status.connection === 'connected', 5000, 'connected');
      // Connected before the backoff timer would have fired.
      expect(Date.now() - wait.at).toBeLessThan(wait.ms);
      expect(waits.at(-1)).toBe(wait);
      // Connected: nothing to retry, nothing happens.
      await ui.bridge.api.retryHelper();
      expect(ui.bridge.status.connection).toBe('connected');
    } finally {
      await ui.stop();
      ui = undefined;
      await again.close();
    }
  }, 40_000);
});

describe('openInBrowser', () => {
  it("hands xdg-open the URL, without the helper's token in its environment", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pcl-open-'));
    // A stub xdg-open on PATH: records its argv and environment.
    writeFileSync(
      join(dir, 'xdg-open'),
      `#!/bin/sh\nprintf '%s\\n' "$@" > '${dir}/argv'\nenv > '${dir}/env.part'\nmv '${dir}/env.part' '${dir}/env'\n`,
      { mode: 0o755 },
    );
    const saved = { PATH: process.env['PATH'], PORTCULLIS_TOKEN: process.env['PORTCULLIS_TOKEN'] };
    process.env['PATH'] = `${dir}:${saved.PATH ?? ''}`;
    process.env['PORTCULLIS_TOKEN'] = 'the-helpers-long-lived-token';
    const lines: string[] = [];
    try {
      openInBrowser('http://127.0.0.1:1/#code=abc', (l) => lines.push(l));
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    try {
      await until(() => existsSync(join(dir, 'env')), 10_000, 'the stub');
      expect(readFileSync(join(dir, 'argv'), 'utf8')).toBe('http://127.0.0.1:1/#code=abc\n');
      const env = readFileSync(join(dir, 'env'), 'utf8');
      expect(env).toContain(`PATH=${dir}:`);
      expect(env).not.toContain('the-helpers-long-lived-token');
      expect(lines).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
