/**
 * Vitest global setup: compiles the TypeScript into dist/ and the renderer into
 * dist/renderer/ once, before any test file runs, each when a source is newer than it. Tests that run the CLI (bin/portcullis.js)
 * or a compiled module in a child node read dist/; a file that rebuilt it in its own
 * beforeAll rewrote dist/ under the feet of files running in parallel (a child node then
 * failed to find a module now and then). PORTCULLIS_PREBUILT=1 skips the check (test/vm/,
 * where dist/ was built on the host and the guest's view of the tree is read-only).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SOURCES = ['helper', 'src-main', 'bench', 'bin'];
const CONFIGS = [
  'tsconfig.base.json',
  'tsconfig.node.json',
  'tsconfig.preload.json',
  'package.json',
];

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

function built(): number {
  try {
    return statSync(join(ROOT, 'dist/helper/cli.js')).mtimeMs;
  } catch {
    return 0;
  }
}

export default function setup(): void {
  if (process.env['PORTCULLIS_PREBUILT'] === '1') return;
  const sources = Math.max(
    ...SOURCES.map((d) => newestMtime(join(ROOT, d))),
    ...CONFIGS.map((f) => statSync(join(ROOT, f)).mtimeMs),
  );
  if (built() >= sources) return;
  const build = spawnSync('npm', ['run', '--silent', 'build:ts'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0)
    throw new Error(`npm run build:ts failed:\n${build.stdout}${build.stderr}`);
}
