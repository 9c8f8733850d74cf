// The app side of the helper's lifecycle: the launcher (src-main/node/launcher.ts) and
// the elevation (elevate.ts) of the compiled tree, as app-main.ts wires them, in a
// process the test can kill. test/root/launcher-lifeline.test.ts runs it as root with
// pkexec replaced by `config.pkexec` (a script that runs the program as pkexec does once
// authorized) and sudo-prompt by the same double shell wrapping with the password binary
// left out; test/system/package.test.ts runs it as a user with the real pkexec.
//
// argv[2]: JSON { socket, pkexec, extraArgs, runtimeDir, parent?, startOnLine? } (parent:
// the process the helper watches instead of this one, to test the stdin lifeline alone;
// startOnLine: start only at the line `start` on stdin, once a polkit agent is there).
// Prints each link state as a JSON line on stdout; the line `quit` on stdin quits the way
// the app does (before-quit: launcher.stop()), then exits 0.
import { exec } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const config = JSON.parse(process.argv[2]);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const load = (path) => import(new URL(`../../dist/src-main/${path}`, import.meta.url).href);
const { HelperLauncher } = await load('node/launcher.js');
const { makeElevator } = await load('node/elevate.js');
const { resolveAppPaths, runtimeFacts } = await load('node/resources.js');
const { connectHelper } = await load('node/helper-client.js');
const { Backoff } = await load('common/backoff.js');

/** sudo-prompt's Linux exec: `/bin/bash -c "echo SUDOPROMPT; <command>"` through exec. */
function sudoExec(command, _options, callback) {
  const wrapped = `/bin/bash -c "echo SUDOPROMPT; ${command.replace(/"/g, '\\"')}"`;
  exec(wrapped, { encoding: 'utf8' }, (error, stdout, stderr) =>
    callback(error ?? undefined, stdout, stderr),
  );
}

const facts = runtimeFacts({ appRoot: ROOT });
const launcher = new HelperLauncher({
  socketPath: config.socket,
  serviceTokenPath: `${config.socket}.service-token`,
  // The service's socket is the helper's own here: only the elevated path may run.
  socketExists: (path) => existsSync(path),
  readToken: () => {
    throw new Error('no service in this test');
  },
  connect: (path, token) => connectHelper(path, token, 'launcher-lifeline-test'),
  elevate: makeElevator({
    facts,
    paths: resolveAppPaths(facts),
    socketPath: config.socket,
    pkexec: config.pkexec,
    extraArgs: config.extraArgs,
    runtimeDir: config.runtimeDir,
    ...(config.parent ? { parent: config.parent } : {}),
    sudoExec: async () => sudoExec,
  }),
  generateToken: () => randomBytes(32).toString('base64url'),
  backoff: new Backoff(),
});
launcher.onState((state) => process.stdout.write(`${JSON.stringify(state)}\n`));
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'start' && config.startOnLine) launcher.start();
  if (line.trim() !== 'quit') return;
  void launcher.stop().then(() => process.exit(0));
});
if (!config.startOnLine) launcher.start();
