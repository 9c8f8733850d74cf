/**
 * `portcullis start`: the firewall with its UI in one command (as root, or via
 * sudo). Starts `portcullis helper` guarding this machine (or, with --demo, a
 * throw-away network namespace with programs in it) and the UI as the user who
 * ran sudo: Electron where its binary is installed, otherwise the web UI, its
 * one-time link printed and opened in their browser. SIGINT, SIGTERM or SIGHUP
 * stop everything in order; the helper removes its rules. bin/portcullis.js
 * sends `start` here (helper/ must not import src-main/).
 */
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { socketAnswers } from '../../../helper/protocol/index.js';
import { defaultRendererDir } from '../renderer-files.js';
import { rendererMissing } from '../renderer-built.js';
import type { Child } from './child.js';
import { DemoNetwork } from './demo-network.js';
import { DEMO_NAMES } from './demo-peer.js';
import {
  GUARD_SOCKET,
  GUARD_STATE_DIR,
  parseStartArgs,
  StartUsageError,
  type StartArgs,
} from './start-args.js';
import { START_USAGE } from './start-usage.js';
import {
  startHelper,
  startPeer,
  startPrograms,
  startUiChild,
  userCanRead,
  type Out,
} from './start-parts.js';
import { chooseUi, electronBinary, type UiPlan } from './ui-choice.js';
import { hasDesktop, invokingUser, userEnv, type UiUser } from './ui-user.js';

const io: Out = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
};

/** The project's root: bin/, dist/ and node_modules/ are under it. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/**
 * Whatever a program started and left behind is inside our namespaces: killed by
 * pid, and waited for (a little) so that nothing of ours outlives them.
 */
async function killLeftovers(net: DemoNetwork): Promise<void> {
  const end = Date.now() + 3000;
  for (let pids = net.pids(); pids.length > 0 && Date.now() < end; pids = net.pids()) {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone between the listing and the kill.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What runs, and where; stop() undoes it in order. */
class Session {
  helper: Child | null = null;
  ui: Child | null = null;
  peer: Child | null = null;
  programs: Child[] = [];
  net: DemoNetwork | null = null;
  tmp: string | null = null;
  stopping = false;

  /** Stops everything; resolves with the helper's exit status (0: clean, rules removed). */
  async stop(): Promise<number> {
    this.stopping = true;
    await Promise.all(this.programs.map((p) => p.stop('SIGTERM', 3000)));
    await this.ui?.stop('SIGTERM', 5000, false);
    const exit = await this.helper?.stop('SIGTERM', 20_000, false);
    await this.peer?.stop('SIGTERM', 3000);
    let failed = exit !== undefined && exit.code !== 0;
    if (this.net) {
      await killLeftovers(this.net);
      for (const e of this.net.delete()) {
        io.err(`portcullis start: ${e}`);
        failed = true;
      }
    }
    if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
    return failed ? 1 : 0;
  }
}

interface Plan {
  args: StartArgs;
  root: string;
  user: UiUser | null;
  ui: UiPlan;
  socket: string;
}

/** The checks made before anything starts; a message, or the plan. */
async function makePlan(args: StartArgs): Promise<Plan | string> {
  if (process.getuid?.() !== 0) {
    return 'run as root: `sudo npx portcullis start` (the UI still runs as you)';
  }
  const root = packageRoot();
  const user = invokingUser(process.env);
  const socket = args.socket ?? GUARD_SOCKET;
  const ui = chooseUi(args.ui, {
    electron: electronBinary(root),
    desktop: hasDesktop(process.env),
    asRoot: user === null,
    defaultSocket: !args.demo && socket === GUARD_SOCKET,
  });
  if ('error' in ui) return ui.error;
  if (ui.kind === 'web') {
    const missing = rendererMissing(defaultRendererDir());
    if (missing) return missing;
  }
  if (user && ui.kind !== 'none' && !userCanRead(user, join(root, 'bin', 'portcullis.js'))) {
    return `the UI runs as ${user.name}, who cannot read ${root}: clone the project where they can (their home)`;
  }
  if (!args.demo && (await socketAnswers(socket))) {
    return `a helper already serves ${socket} (the portcullis-helper service?): open its UI with \`portcullis ui --web --open\``;
  }
  return { args, root, user, ui, socket };
}

function banner(p: Plan, s: Session): string[] {
  const stop = `Stop with Ctrl-C (or \`kill ${process.pid}\`)`;
  const ui =
    p.ui.kind === 'electron'
      ? 'Answer in the Portcullis window.'
      : p.ui.kind === 'web'
        ? 'Answer in the UI: the link above (one-time; `portcullis ui link` prints a new one).'
        : 'No UI (--ui none): answer with a client of the socket.';
  if (s.net) {
    return [
      `Portcullis demo: guarding only the network namespace ${s.net.name}, where curl, python3,`,
      `bash and node connect every few seconds to a test peer (${s.net.peerAddress}: ${DEMO_NAMES.join(', ')}).`,
      "This machine's own network is untouched. " + ui,
      `helper socket: ${p.socket}`,
      `${stop}: the programs, the helper and both namespaces are removed.`,
    ];
  }
  const where =
    p.args.netns !== undefined ? `the network namespace ${p.args.netns}` : 'this machine';
  return [
    `Portcullis is guarding ${where}: while the UI is open, every new outbound connection`,
    'waits for your answer (unanswered: the default action of Settings); while no UI is open,',
    `the no-GUI policy answers at once. ${ui}`,
    `helper socket: ${p.socket}`,
    `${stop}: the helper removes its rules and connections pass unasked again.`,
  ];
}

/** Starts the parts in order; throws with what failed. */
async function bringUp(p: Plan, s: Session): Promise<void> {
  let stateDir = p.args.stateDir ?? GUARD_STATE_DIR;
  let netns = p.args.netns;
  if (p.args.demo) {
    s.net = new DemoNetwork();
    netns = s.net.name;
    s.tmp = mkdtempSync(join(tmpdir(), 'portcullis-demo-'));
    // The UI's user reaches the socket inside it.
    chmodSync(s.tmp, 0o711);
    p.socket = p.args.socket ?? join(s.tmp, 'run', 'helper.sock');
    stateDir = p.args.stateDir ?? join(s.tmp, 'state');
    await startPeer(p.root, s.net, io, (c) => (s.peer = c));
    // A stop signal came while it started: stop() has run, start nothing more.
    if (s.stopping) return;
  }
  await startHelper(
    {
      root: p.root,
      socket: p.socket,
      stateDir,
      ...(netns !== undefined ? { netns } : {}),
      user: p.user,
      verbose: p.args.verbose,
      extra: p.args.helperArgs,
    },
    io,
    (c) => (s.helper = c),
  );
  if (s.stopping) return;
  if (s.net) s.programs = startPrograms(s.net, p.user, io);
  const env = p.user ? userEnv(p.user, process.env) : rootEnv();
  await startUiChild(
    {
      root: p.root,
      plan: p.ui,
      user: p.user,
      env,
      socket: p.socket,
      port: p.args.port,
      open: !p.args.noOpen && hasDesktop(env),
    },
    io,
    (c) => (s.ui = c),
  );
}

function rootEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  delete env['PORTCULLIS_TOKEN'];
  return env;
}

/** Resolves at the first stop signal, or when the helper ends on its own. */
function untilStopped(p: Plan, s: Session, stopSignal: Promise<string>): Promise<string> {
  void s.ui?.exited.then(() => {
    if (s.stopping) return;
    io.err(
      `portcullis start: the UI ended; still guarding. Reopen it with \`portcullis ui --web --socket ${p.socket} --open\` (as yourself), or stop with Ctrl-C.`,
    );
  });
  return Promise.race([
    stopSignal,
    s.helper!.exited.then((e) => `the helper stopped (${e.signal ?? `status ${e.code}`})`),
  ]);
}

export async function runStart(argv: readonly string[]): Promise<number> {
  let args: StartArgs;
  try {
    args = parseStartArgs(argv);
  } catch (error) {
    if (!(error instanceof StartUsageError)) throw error;
    io.err(`portcullis start: ${error.message}\n\n${START_USAGE}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(START_USAGE);
    return 0;
  }
  const plan = await makePlan(args);
  if (typeof plan === 'string') {
    io.err(`portcullis start: ${plan}`);
    return 1;
  }
  let signalled: (why: string) => void = () => undefined;
  const stopSignal = new Promise<string>((resolve) => (signalled = resolve));
  const onSignal = (sig: NodeJS.Signals): void => signalled(sig);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  const s = new Session();
  let code = 0;
  try {
    await Promise.race([
      bringUp(plan, s),
      stopSignal.then((why) => Promise.reject(new Error(why))),
    ]);
    for (const line of banner(plan, s)) io.out(line);
    const why = await untilStopped(plan, s, stopSignal);
    io.err(`portcullis start: ${why}: stopping`);
    if (!why.startsWith('SIG')) code = 1;
  } catch (error) {
    io.err(`portcullis start: ${(error as Error).message}: stopping`);
    code = 1;
  } finally {
    const stopped = await s.stop();
    io.err(
      stopped === 0
        ? `portcullis start: stopped${s.net ? '; the demo namespaces are removed' : '; the firewall rules are removed'}`
        : 'portcullis start: stopped, with the errors above',
    );
    code ||= stopped;
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal);
  }
  return code;
}
