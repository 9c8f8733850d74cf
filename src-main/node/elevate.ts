/**
 * The process side of elevation: spawns the command lines of elevation.ts and
 * hands over the token through a private channel. Node only (no Electron).
 *
 * The helper's lifeline is this process: pkexec's helper reads stdin to its end
 * (the kernel closes our end of the pipe when we end, even by SIGKILL), and on
 * every path the helper watches our pid and start time (`--parent-pid`).
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEB_HELPER_WRAPPER,
  DEB_POLICY_FILE,
  PKEXEC,
  describePkexecExit,
  pkexecCommand,
  sudoPromptCommand,
  type ElevationContext,
  type ParentProcess,
} from './elevation.js';
import type { ElevatedHelper } from './launcher.js';
import type { AppPaths, RuntimeFacts } from './resources.js';

/** sudo-prompt's exec, typed here so the module can be injected in tests. */
export type SudoExec = (
  command: string,
  options: { name: string },
  callback: (error?: Error, stdout?: string | Buffer, stderr?: string | Buffer) => void,
) => void;

export interface ElevatorOptions {
  facts: RuntimeFacts;
  paths: AppPaths;
  socketPath: string;
  ownerUid?: number;
  /** Loads sudo-prompt lazily (only when pkexec is missing). */
  sudoExec?: () => Promise<SudoExec>;
  exists?: (path: string) => boolean;
  /** Where the private token directory goes: $XDG_RUNTIME_DIR (tmpfs, 0700). */
  runtimeDir?: string;
  /** The pkexec to run (default PKEXEC); tests put one there that asks no password. */
  pkexec?: string;
  /** More `portcullis helper` options (tests: --netns, --queue, --state-dir). */
  extraArgs?: readonly string[];
  /** The process the helper serves (default: this one, from /proc/self/stat). */
  parent?: ParentProcess;
}

/**
 * This process as the helper's parent: its pid and start time (field 22 of
 * /proc/self/stat, counted after the command name, which may hold spaces and ')').
 */
export function selfAsParent(stat = readFileSync('/proc/self/stat', 'utf8')): ParentProcess {
  const fields = stat
    .slice(stat.lastIndexOf(')') + 1)
    .trim()
    .split(/\s+/u);
  const pid = Number.parseInt(stat, 10);
  const startTime = fields[19];
  if (!Number.isInteger(pid) || startTime === undefined || !/^[0-9]+$/u.test(startTime)) {
    throw new Error('/proc/self/stat: unexpected format');
  }
  return { pid, startTime };
}

/** Starts the helper elevated; for HelperLauncher's `elevate`. */
export function makeElevator(o: ElevatorOptions): (token: string) => Promise<ElevatedHelper> {
  const exists = o.exists ?? existsSync;
  const ownerUid = o.ownerUid ?? process.getuid?.() ?? 0;
  const ctx: ElevationContext = {
    facts: o.facts,
    paths: o.paths,
    debWrapperInstalled: exists(DEB_HELPER_WRAPPER) && exists(DEB_POLICY_FILE),
  };
  const pkexec = o.pkexec ?? PKEXEC;
  return async (token) => {
    const mode = {
      ownerUid,
      socketPath: o.socketPath,
      parent: o.parent ?? selfAsParent(),
      ...(o.extraArgs ? { extra: o.extraArgs } : {}),
    };
    if (exists(pkexec)) {
      const cmd = pkexecCommand(ctx, mode);
      const child = spawn(pkexec, cmd.args, { stdio: ['pipe', 'ignore', 'inherit'] });
      // The token is the first line on stdin; stdin then stays open and its
      // EOF (we quit or crash) tells the helper that its owner is gone.
      child.stdin.on('error', () => undefined);
      child.stdin.write(`${token}\n`);
      const exited = new Promise<string>((resolve) => {
        child.once('error', (e) => resolve(`cannot run pkexec: ${e.message}`));
        child.once('exit', (code, signal) => resolve(describePkexecExit(code, signal)));
      });
      return {
        method: 'pkexec',
        actionId: cmd.actionId,
        exited,
        release: () => child.stdin.end(),
      };
    }
    if (!o.sudoExec) throw new Error('neither pkexec nor sudo-prompt is available');
    const exec = await o.sudoExec();
    const base = o.runtimeDir ?? process.env['XDG_RUNTIME_DIR'] ?? tmpdir();
    // A directory only this user can enter; the file is 0600 from creation.
    const dir = mkdtempSync(join(base, 'portcullis-'));
    chmodSync(dir, 0o700);
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600, flag: 'wx' });
    const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
    const cmd = sudoPromptCommand(ctx, { ...mode, tokenFile });
    const exited = new Promise<string>((resolve) => {
      exec(cmd.shell as string, { name: 'Portcullis' }, (error) => {
        cleanup();
        resolve(error ? error.message : 'the helper exited');
      });
    });
    return {
      method: 'sudo-prompt',
      actionId: cmd.actionId,
      exited,
      // No pipe reaches this helper: it stops when this process ends (--parent-pid).
      release: cleanup,
    };
  };
}
