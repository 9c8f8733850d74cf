#!/usr/bin/env node
// Entry point of the `portcullis` command: runs the compiled CLI (npm run build:ts).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/helper/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('portcullis: not built yet; run `npm ci` (or `npm run build`) first\n');
  process.exit(1);
}
// A closed pipe (`portcullis conntrack events | head`): stop the way Ctrl-C
// does, so that long-running commands clean up (queued packets get their
// verdict, queues are unbound) instead of dying on an unhandled EPIPE.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.kill(process.pid, 'SIGTERM');
  else throw error;
});
// `portcullis ui` and `portcullis start` live in src-main/node (the helper's CLI must
// not import src-main).
if (process.argv[2] === 'ui') {
  const { runUi } = await import(new URL('../dist/src-main/node/web-cli.js', import.meta.url).href);
  process.exitCode = await runUi(process.argv.slice(3));
} else if (process.argv[2] === 'start') {
  const { runStart } = await import(
    new URL('../dist/src-main/node/start/start-cli.js', import.meta.url).href
  );
  process.exitCode = await runStart(process.argv.slice(3));
} else {
  const { main } = await import(cli.href);
  process.exitCode = await main(process.argv.slice(2));
}
