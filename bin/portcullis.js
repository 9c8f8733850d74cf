#!/usr/bin/env node
// Entry point of the `portcullis` command: runs the compiled CLI (npm run build:ts).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/helper/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('portcullis: not built yet; run `npm ci` (or `npm run build`) first\n');
  process.exit(1);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
