/**
 * A child process of `portcullis start`, in its own process group so that the
 * terminal's Ctrl-C reaches start alone and start stops its children in order;
 * stopped by its pid (the group it leads: a shell loop and what it runs).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Child {
  readonly pid: number;
  readonly exited: Promise<ChildExit>;
  private readonly proc: ChildProcess;
  private done = false;

  constructor(
    readonly label: string,
    command: string,
    args: readonly string[],
    options: Pick<SpawnOptions, 'env' | 'uid' | 'gid' | 'cwd'> & {
      onStdout?: (line: string) => void;
      onStderr?: (line: string) => void;
    } = {},
  ) {
    const { onStdout, onStderr, ...rest } = options;
    this.proc = spawn(command, args, {
      ...rest,
      detached: true,
      stdio: ['ignore', onStdout ? 'pipe' : 'ignore', onStderr ? 'pipe' : 'ignore'],
    });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.done = true;
        resolve({ code, signal });
      });
      this.proc.on('error', () => {
        this.done = true;
        resolve({ code: 127, signal: null });
      });
    });
    if (onStdout && this.proc.stdout)
      createInterface({ input: this.proc.stdout }).on('line', onStdout);
    if (onStderr && this.proc.stderr)
      createInterface({ input: this.proc.stderr }).on('line', onStderr);
    // A failed spawn has no pid; -1 is never signalled (see kill).
    this.pid = this.proc.pid ?? -1;
  }

  get running(): boolean {
    return !this.done;
  }

  /** Signals the child's process group (the child alone, when `group` is false). */
  kill(signal: NodeJS.Signals, group = true): void {
    if (this.pid <= 0) return;
    try {
      process.kill(group ? -this.pid : this.pid, signal);
    } catch (error) {
      // ESRCH: the group is gone already.
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  /** `signal`, then SIGKILL to the group after `graceMs`; resolves with the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000, group = true): Promise<ChildExit> {
    if (this.running) this.kill(signal, group);
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
      // What the child left in its group (a loop's current program) goes with it.
      if (group) this.kill('SIGKILL');
    }
  }
}
