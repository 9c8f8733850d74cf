#!/usr/bin/env node
// Writes what the packages take as the helper tree (resources/helper/):
// - dist/helper-package.json, its package.json: it makes dist/helper/*.js ES modules
//   and gives `portcullis --version` its version. A copy of the root package.json
//   cannot be used: electron-builder then leaves package.json out of app.asar.
// - dist/helper-tree/, a copy of dist/helper's modules: electron-builder leaves every
//   file an extraResources entry names out of app.asar, and main needs some of
//   dist/helper (the wire protocol) inside it, so the helper tree is taken from here.
// Run after scripts/prune-dist.mjs, so that no stale module is copied.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const helper = {
  name: `${pkg.name}-helper`,
  version: pkg.version,
  description: 'The root helper of Portcullis (run as `portcullis helper`)',
  license: pkg.license,
  private: true,
  type: 'module',
};
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', 'helper-package.json'), JSON.stringify(helper, null, 2) + '\n');

const tree = join(root, 'dist', 'helper-tree');
rmSync(tree, { recursive: true, force: true });
if (existsSync(join(root, 'dist', 'helper'))) {
  cpSync(join(root, 'dist', 'helper'), tree, {
    recursive: true,
    filter: (source) => !/\.(d\.ts|map)$/u.test(source),
  });
}
