/**
 * The parts `portcullis start` runs, each a child process: the helper, the UI (web
 * or Electron, as the invoking user) and, for --demo, the peer servers and the
 * programs. Each resolves once it is up or rejects with what went wrong.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Child } from './child.js';
import type { DemoNetwork } from './demo-network.js';
import { asUser, demoPrograms, haveBinary } from './demo-programs.js';
import type { UiPlan } from './ui-choice.js';
import type { UiUser } from './ui-user.js';

export interface Out {
  out(line: string): void;
  err(line: string): void;
}

/** Resolves when `ready` says so, rejects when the child exits first. */
function readyOrExit(child: Child, ready: Promise<void>, what: string): Promise<void> {
  return Promise.race([
    ready,
    child.exited.then((e) => {
      throw new Error(`${what} exited (${e.signal ?? `status ${e.code}`}) before it was ready`);
    }),
  ]);
}

export interface HelperSpec {
  root: string;
  socket: string;
  stateDir: string;
  netns?: string;
  user: UiUser | null;
  verbose: boolean;
  extra: readonly string[];
}

const LEVEL = / (warn|error) [a-z-]+: /u;

/** `portcullis helper`, stopped with us (--parent-pid); resolves once it serves. */
export async function startHelper(
  spec: HelperSpec,
  io: Out,
  keep: (c: Child) => void,
): Promise<Child> {
  // The lines not shown: printed when it fails to start.
  const quiet: string[] = [];
  let serving: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (serving = resolve));
  const args = [
    join(spec.root, 'bin', 'portcullis.js'),
    'helper',
    '--socket',
    spec.socket,
    '--state-dir',
    spec.stateDir,
    '--parent-pid',
    String(process.pid),
    ...(spec.netns !== undefined ? ['--netns', spec.netns] : []),
    ...(spec.user ? ['--allow-uid', String(spec.user.uid)] : []),
    ...spec.extra,
  ];
  const helper = new Child('helper', process.execPath, args, {
    onStderr: (line) => {
      if (/ info helper: serving /u.test(line)) serving();
      if (spec.verbose || LEVEL.test(line)) io.err(`helper: ${line}`);
      else {
        quiet.push(line);
        if (quiet.length > 40) quiet.shift();
      }
    },
  });
  keep(helper);
  try {
    await readyOrExit(helper, ready, 'the helper');
  } catch (error) {
    for (const l of quiet) io.err(`helper: ${l}`);
    throw error;
  }
  return helper;
}

export interface UiSpec {
  root: string;
  plan: UiPlan;
  user: UiUser | null;
  env: Record<string, string>;
  socket: string;
  port: number;
  open: boolean;
}

/** Whether `user` can read `path` (a clone in /root is not readable by them). */
export function userCanRead(user: UiUser, path: string): boolean {
  const r = spawnSync(
    process.execPath,
    ['-e', 'require("fs").accessSync(process.argv[1], 4)', path],
    {
      uid: user.uid,
      gid: user.gid,
      stdio: 'ignore',
    },
  );
  return r.status === 0;
}

/** The UI child; resolves once the web UI printed its link (Electron: once spawned). */
export async function startUiChild(spec: UiSpec, io: Out, keep: (c: Child) => void): Promise<void> {
  if (spec.plan.kind === 'none') return;
  const ids = spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {};
  if (spec.plan.kind === 'electron') {
    keep(
      new Child('Electron', spec.plan.binary, [spec.root], {
        ...ids,
        env: spec.env,
        cwd: spec.root,
        onStderr: (l) => io.err(`app: ${l}`),
      }),
    );
    return;
  }
  let linked: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (linked = resolve));
  const args = [
    join(spec.root, 'bin', 'portcullis.js'),
    'ui',
    '--web',
    '--socket',
    spec.socket,
    '--token-file',
    join(spec.socket, '..', 'token'),
    '--port',
    String(spec.port),
    ...(spec.open ? ['--open'] : []),
  ];
  const ui = new Child('web UI', process.execPath, args, {
    ...ids,
    env: spec.env,
    onStdout: (line) => {
      io.out(line);
      if (line.includes('http://')) linked();
    },
    onStderr: (line) => io.err(line),
  });
  keep(ui);
  await readyOrExit(ui, ready, 'the web UI');
}

/** The demo's peer servers (in the peer namespace), once they listen. */
export async function startPeer(
  root: string,
  net: DemoNetwork,
  io: Out,
  keep: (c: Child) => void,
): Promise<void> {
  let up: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (up = resolve));
  const main = join(root, 'dist', 'src-main', 'node', 'start', 'demo-peer-main.js');
  const [cmd, args] = net.exec(net.peer, [process.execPath, main, net.peerAddress, net.dnsAddress]);
  const peer = new Child('demo peer', cmd, args, {
    onStdout: (l) => l === 'ready' && up(),
    onStderr: (l) => io.err(l),
  });
  keep(peer);
  await readyOrExit(peer, ready, 'the demo peer');
}

/**
 * The programs' environment: the system's PATH (root's may name directories that
 * their user cannot enter, such as a version manager's shims in /root).
 */
const PROGRAM_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  HOME: '/',
};

/** The demo's programs in the guarded namespace, as `user` (nobody when run as root). */
export function startPrograms(net: DemoNetwork, user: UiUser | null, io: Out): Child[] {
  const [uid, gid] = user ? [user.uid, user.gid] : [65534, 65534];
  const out: Child[] = [];
  for (const p of demoPrograms(net.peerAddress, process.execPath)) {
    if (!haveBinary(p.needs, PROGRAM_ENV.PATH)) {
      io.err(`demo: ${p.needs} is not installed: no ${p.label}`);
      continue;
    }
    const [cmd, args] = net.exec(net.name, asUser(uid, gid, p.argv));
    out.push(new Child(p.label, cmd, args, { env: PROGRAM_ENV }));
  }
  return out;
}
