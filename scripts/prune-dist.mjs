#!/usr/bin/env node
// Removes what tsc once wrote to dist/helper, dist/src-main and dist/bench for a
// source that is gone (moved or deleted): tsc never deletes an output, and the
// packages take every .js under dist/src-main and dist/helper, so a module moved
// out of the product (a test double to test/support) would otherwise still ship.
// Run by `npm run build:ts` and by scripts/stage-linux.mjs before packing.
import { readdirSync, rmdirSync, rmSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const OUTPUT = /\.(js|js\.map|d\.ts|d\.ts\.map)$/u;

/** Deletes stale outputs below `dir` and then `dir` itself when it is left empty. */
function prune(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      prune(path);
      continue;
    }
    if (!OUTPUT.test(entry.name)) continue;
    const source = join(root, relative(dist, path).replace(OUTPUT, '.ts'));
    if (!existsSync(source)) rmSync(path);
  }
  if (readdirSync(dir).length === 0) rmdirSync(dir);
}

for (const tree of ['helper', 'src-main', 'bench']) {
  if (existsSync(join(dist, tree))) prune(join(dist, tree));
}
