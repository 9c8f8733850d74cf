#!/usr/bin/env node
// Writes dist/helper-package.json: the package.json of the packaged helper tree
// (resources/helper/package.json). It makes dist/helper/*.js ES modules and
// gives `portcullis --version` its version. A copy of the root package.json
// cannot be used: electron-builder then leaves package.json out of app.asar.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
