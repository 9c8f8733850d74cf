/**
 * Command lines that start the root helper (pure, unit-tested).
 *
 * Three facts shape them:
 * - pkexec clears the environment, so ELECTRON_RUN_AS_NODE=1 (which turns the
 *   app binary into Node) has to go through `/usr/bin/env`;
 * - pkexec picks the polkit action by the program it runs: our action
 *   org.portcullis.helper (packaging/org.portcullis.helper.policy) names the
 *   .deb's wrapper /usr/lib/portcullis/portcullis-helper as its exec.path.
 *   Anything else (AppImage, unpacked dir, dev tree) runs under polkit's
 *   generic org.freedesktop.policykit.exec action (admin password, no keep);
 * - root cannot read a user's FUSE mount, so in an AppImage the helper is
 *   started by re-running `$APPIMAGE` (root mounts its own copy) in Node mode,
 *   with a tiny bootstrap that finds the helper under the new mount ($APPDIR).
 *
 * The per-launch token never appears in argv or env (both readable by other
 * users through /proc while the command runs): pkexec keeps stdin, so it is the
 * first line there (`--token-stdin`; not `--token-file /dev/stdin`, which
 * cannot open the socket that Node's stdin pipe is); sudo-prompt has no stdin,
 * so it goes through a 0600 file in a 0700 directory of the user's runtime dir.
 *
 * The helper stops when the app ends, however it ends: under pkexec stdin
 * stays open and its EOF says so; on every path `--parent-pid` with the app's
 * start time lets the helper see the app's process end (helper/cli/lifeline.ts).
 */
import type { AppPaths, RuntimeFacts } from './resources.js';

const POLKIT_ACTION_ID = 'org.portcullis.helper';
const GENERIC_PKEXEC_ACTION_ID = 'org.freedesktop.policykit.exec';
/** Installed by the .deb; named by the polkit policy's exec.path annotation. */
export const DEB_HELPER_WRAPPER = '/usr/lib/portcullis/portcullis-helper';
export const DEB_POLICY_FILE = `/usr/share/polkit-1/actions/${POLKIT_ACTION_ID}.policy`;
export const PKEXEC = '/usr/bin/pkexec';
const ENV = '/usr/bin/env';

/** How to run `portcullis <args>` without elevation. */
export interface HelperCommand {
  program: string;
  args: string[];
  /** Variables the program needs (only ELECTRON_RUN_AS_NODE; never secrets). */
  env: Record<string, string>;
}

/** The app process a helper serves: it stops when this process ends. */
export interface ParentProcess {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks after boot): a reused pid has another. */
  startTime: string;
}

/**
 * The helper-mode arguments: `helper --token-stdin|--token-file FILE --owner-uid UID
 * --socket PATH [--parent-pid PID --parent-start-time T]`.
 */
export interface HelperModeOptions {
  /** Where the helper reads the token: 'stdin' (pkexec) or a private file. */
  token: 'stdin' | { file: string };
  /** The desktop user the helper serves (SO_PEERCRED check); not secret. */
  ownerUid: number;
  socketPath: string;
  /** The app: the helper stops when it ends. */
  parent?: ParentProcess;
  extra?: readonly string[];
}

export function helperModeArgs(o: HelperModeOptions): string[] {
  if (!Number.isInteger(o.ownerUid) || o.ownerUid < 0) {
    throw new RangeError(`owner uid ${o.ownerUid} is not a uid`);
  }
  const parent: string[] = [];
  if (o.parent) {
    const { pid, startTime } = o.parent;
    if (!Number.isInteger(pid) || pid <= 0) throw new RangeError(`pid ${pid} is not a process`);
    if (!/^[0-9]+$/u.test(startTime)) {
      throw new RangeError(`start time ${JSON.stringify(startTime)} is not a number`);
    }
    parent.push('--parent-pid', String(pid), '--parent-start-time', startTime);
  }
  return [
    'helper',
    ...(o.token === 'stdin' ? ['--token-stdin'] : ['--token-file', o.token.file]),
    '--owner-uid',
    String(o.ownerUid),
    '--socket',
    o.socketPath,
    ...parent,
    ...(o.extra ?? []),
  ];
}

/**
 * The AppImage bootstrap, run by the re-executed AppImage in Node mode with
 * `-e`: loads the helper CLI from the mount root just created for root
 * ($APPDIR, set by the AppImage runtime) and runs it with the remaining argv.
 * No quote characters other than `"` and no `$`, so it survives the shell
 * quoting of sudo-prompt unchanged (tested).
 */
export const APPIMAGE_BOOTSTRAP =
  'const p=require("node:path"),u=require("node:url");' +
  'import(u.pathToFileURL(p.join(process.env.APPDIR,"resources","helper","dist","helper","cli.js")).href)' +
  '.then(async(m)=>{process.exitCode=await m.main(process.argv.slice(1))})' +
  '.catch((e)=>{console.error(e);process.exitCode=1})';

/** `portcullis <args>` for this layout, unelevated. */
export function helperCommand(facts: RuntimeFacts, paths: AppPaths, args: string[]): HelperCommand {
  const asNode: Record<string, string> = facts.isElectron ? { ELECTRON_RUN_AS_NODE: '1' } : {};
  if (paths.layout === 'appimage' && facts.appImage !== null) {
    return { program: facts.appImage, args: ['-e', APPIMAGE_BOOTSTRAP, ...args], env: asNode };
  }
  return { program: facts.execPath, args: [paths.helperScript, ...args], env: asNode };
}

export interface ElevatedCommand {
  method: 'pkexec' | 'sudo-prompt';
  /** The polkit action the request is checked against (for the UI and logs). */
  actionId: string;
  /** pkexec: spawned directly (no shell). */
  file: string;
  args: string[];
  /** sudo-prompt: the shell command it runs as root. */
  shell?: string;
}

export interface ElevationContext {
  facts: RuntimeFacts;
  paths: AppPaths;
  /** Whether the .deb's wrapper and policy are installed (fs check by the caller). */
  debWrapperInstalled: boolean;
}

function withEnv(c: HelperCommand): string[] {
  const vars = Object.entries(c.env).map(([k, v]) => `${k}=${v}`);
  return vars.length > 0 ? [ENV, ...vars, c.program, ...c.args] : [c.program, ...c.args];
}

/** `pkexec ...` for the helper; the token comes on stdin, which then stays open. */
export function pkexecCommand(
  ctx: ElevationContext,
  mode: Omit<HelperModeOptions, 'token'>,
): ElevatedCommand {
  const args = helperModeArgs({ ...mode, token: 'stdin' });
  if (ctx.debWrapperInstalled && ctx.paths.layout !== 'appimage') {
    // The wrapper adds `helper` itself: it can run nothing else, which is why
    // the policy may keep the authorization for a few minutes.
    return {
      method: 'pkexec',
      actionId: POLKIT_ACTION_ID,
      file: PKEXEC,
      args: [DEB_HELPER_WRAPPER, ...args.slice(1)],
    };
  }
  const command = helperCommand(ctx.facts, ctx.paths, args);
  return {
    method: 'pkexec',
    actionId: GENERIC_PKEXEC_ACTION_ID,
    file: PKEXEC,
    args: withEnv(command),
  };
}

/**
 * Characters that could change the meaning of sudo-prompt's command: it wraps
 * our string as `/bin/bash -c "echo SUDOPROMPT; <ours>"` inside `/bin/sh -c`,
 * escaping only `"`. `$`, backticks, backslashes and `!` would still be expanded
 * by the outer shell, and a single quote would end our own quoting.
 */
const UNSAFE_FOR_SUDO_PROMPT = /[$`\\'!\n\r\0]/u;

function quote(word: string): string {
  if (UNSAFE_FOR_SUDO_PROMPT.test(word)) {
    throw new Error(`cannot pass ${JSON.stringify(word)} through sudo-prompt safely`);
  }
  return `'${word}'`;
}

/**
 * The shell command for sudo-prompt (used when pkexec is missing; sudo-prompt
 * then uses kdesudo). The token is in a private file (`tokenFile`). The
 * helper's output goes to /dev/null: sudo-prompt buffers it in memory until
 * the command ends, which for a daemon is never. No pipe reaches the helper,
 * so only `parent` tells it that the app has ended.
 */
export function sudoPromptCommand(
  ctx: ElevationContext,
  mode: Omit<HelperModeOptions, 'token'> & { tokenFile: string },
): ElevatedCommand {
  const { tokenFile, ...rest } = mode;
  const args = helperModeArgs({ ...rest, token: { file: tokenFile } });
  const words = withEnv(helperCommand(ctx.facts, ctx.paths, args));
  const shell =
    words
      .map((w) => (w === APPIMAGE_BOOTSTRAP ? `'${w}'` : quote(w)))
      .join(' ')
      .replace(/^/u, 'exec ') + ' </dev/null >/dev/null 2>&1';
  return {
    method: 'sudo-prompt',
    actionId: GENERIC_PKEXEC_ACTION_ID,
    file: words[0] as string,
    args: words.slice(1),
    shell,
  };
}

/** pkexec's documented exit statuses (pkexec(1)). */
export function describePkexecExit(code: number | null, signal: string | null): string {
  if (signal !== null) return `the helper was stopped by ${signal}`;
  if (code === 126) return 'authentication was dismissed';
  if (code === 127) return 'not authorized (or no polkit authentication agent is running)';
  return `the helper exited with status ${code ?? 'unknown'}`;
}
