import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FirewallRules } from '../../helper/firewall/index.js';
import { sleep } from './udp-agent.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Where a helper works: `--netns N --queue Q --socket S --state-dir D`. */
export function helperArgs(o: {
  netns: string;
  queue: number;
  socket: string;
  stateDir: string;
}): string[] {
  return [
    '--netns',
    o.netns,
    '--queue',
    String(o.queue),
    '--socket',
    o.socket,
    '--state-dir',
    o.stateDir,
  ];
}

/** Prompts that wait `timeoutSeconds`, deny when unanswered, and allow while no GUI
 * listens (the end-to-end tests' helper: a test client answers, or nothing asks). */
export function promptingArgs(timeoutSeconds: number): string[] {
  return [
    '--prompt-timeout',
    String(timeoutSeconds),
    '--default-action',
    'deny',
    '--no-gui-policy',
    'allow',
  ];
}

/** A running `portcullis helper` child (the compiled CLI) and its stderr lines. */
export class HelperProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly proc: ChildProcess;

  /**
   * `stdin`: the token on the first line, stdin left open (the launcher's way). `wrap`: a
   * command that runs the helper (`ip netns exec NS setpriv ...`), which must exec it in
   * the same process so that signals reach the helper.
   */
  constructor(args: string[], stdin?: string, wrap: string[] = []) {
    const command = [process.execPath, join(ROOT, 'bin/portcullis.js'), 'helper', ...args];
    const [file, ...rest] = [...wrap, ...command];
    this.proc = spawn(file!, rest, {
      stdio: [stdin === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'],
    });
    if (stdin !== undefined) this.proc.stdin!.write(`${stdin}\n`);
    createInterface({ input: this.proc.stderr! }).on('line', (l) => this.lines.push(l));
    this.exited = new Promise((resolve) =>
      this.proc.on('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  /**
   * Resolves once the helper logs `stage`: 'serving' (its socket is up, the default) or
   * 'running' (rules installed and queue bound, a moment before).
   */
  async ready(ms = 30_000, stage: 'running' | 'serving' = 'serving'): Promise<void> {
    const line = new RegExp(` info helper: ${stage} `);
    const end = Date.now() + ms;
    while (!this.lines.some((l) => line.test(l))) {
      if (this.proc.exitCode !== null || Date.now() > end) {
        throw new Error(`helper did not start:\n${this.lines.join('\n')}`);
      }
      await sleep(20);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(sig);
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves with the exit. */
  async stop(graceMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }
}

/**
 * Removes the helper's firewall rules from `netns` (a namespace the test made): a helper
 * stopped by SIGKILL, as fail-open wants, leaves them behind.
 */
export async function removeHelperRules(netns: string): Promise<void> {
  await (await FirewallRules.open({ netns })).remove();
}
