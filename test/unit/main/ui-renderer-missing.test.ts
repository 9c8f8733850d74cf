// `portcullis ui --web` without a built renderer: every URL would answer 404, so it
// refuses to start and names the command that builds it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { rendererMissing } from '../../../src-main/node/renderer-built.js';
import { parseUiArgs, runUi } from '../../../src-main/node/web-cli.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'pcl-renderer-'));
  dirs.push(d);
  return d;
}

afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('ui --web without dist/renderer', () => {
  it('exits 1 before serving anything, with the build command', async () => {
    const empty = tmp();
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    // No helper, no socket: it must stop at the renderer check.
    const code = await runUi(['--web', '--renderer-dir', empty, '--socket', join(empty, 's')]);
    expect(code).toBe(1);
    expect(written.join('')).toContain(`${join(empty, 'index.html')} is missing`);
    expect(written.join('')).toContain('npm run build:renderer');
  });

  it('--renderer-dir is read; a built one passes the check', () => {
    const built = tmp();
    expect(parseUiArgs(['--web', '--renderer-dir', built]).rendererDir).toBe(built);
    expect(rendererMissing(built)).toMatch(/npm run build:renderer/);
    mkdirSync(built, { recursive: true });
    writeFileSync(join(built, 'index.html'), '<!doctype html>');
    expect(rendererMissing(built)).toBeNull();
  });
});
