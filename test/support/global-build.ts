/**
 * Vitest global setup: compiles the TypeScript into dist/ and the renderer into
 * dist/renderer/ once, before any test file runs, each only when a source is newer than
 * its output. Tests run the CLI (bin/portcullis.js) or a compiled module in a child node,
 * and the web UI tests serve the built renderer; files that rebuilt them in their own
 * beforeAll rewrote dist/ under the feet of files running in parallel (a child node then
 * failed to find a module now and then). PORTCULLIS_PREBUILT=1 skips the check (test/vm/,
 * where dist/ was built on the host and the guest's view of the tree is read-only).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const name of readdirSync(path)) {
    if (name === 'node_modules') continue;
    newest = Math.max(newest, newestMtime(join(path, name)));
  }
  return newest;
}

function mtime(path: string): number {
  try {
    return statSync(join(ROOT, path)).mtimeMs;
  } catch {
    return 0;
  }
}

/** Runs `npm run script` when `output` is older than the newest file of `inputs`. */
function buildIfStale(script: string, output: string, inputs: string[]): void {
  const newest = Math.max(...inputs.map((p) => newestMtime(join(ROOT, p))));
  if (mtime(output) >= newest) return;
  const build = spawnSync('npm', ['run', '--silent', script], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) {
    throw new Error(`npm run ${script} failed:\n${build.stdout}${build.stderr}`);
  }
}

export default function setup(): void {
  if (process.env['PORTCULLIS_PREBUILT'] === '1') return;
  buildIfStale('build:ts', 'dist/helper/cli.js', [
    'helper',
    'src-main',
    'bench',
    'bin',
    'tsconfig.base.json',
    'tsconfig.node.json',
    'tsconfig.preload.json',
    'package.json',
  ]);
  buildIfStale('build:renderer', 'dist/renderer/index.html', [
    'src-renderer',
    'src-main/common',
    'package.json',
  ]);
}
