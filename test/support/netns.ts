import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Why root tests cannot run here, or undefined when they can. */
export function rootTestsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  const ip = spawnSync('ip', ['-V']);
  if (ip.error) return 'iproute2 (ip) is not installed';
  return undefined;
}

/** rootTestsUnavailable(), or iptables-nft missing (tests of the helper's firewall rules). */
export function firewallTestsUnavailable(): string | undefined {
  const root = rootTestsUnavailable();
  if (root) return root;
  if (spawnSync('iptables-nft', ['-V']).error) return 'iptables-nft is not installed';
  return undefined;
}

/** Runs a command and returns stdout; throws with stderr on failure. */
export function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** A network namespace this test created; delete() removes it (idempotent). */
export class TestNetns {
  readonly name: string;
  private deleted = false;

  constructor(prefix = 'pcl') {
    this.name = `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
    run('ip', ['netns', 'add', this.name]);
    try {
      run('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
    } catch (error) {
      this.delete();
      throw error;
    }
  }

  /** Runs a command inside the namespace. */
  exec(cmd: string, args: string[], input?: string): string {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], input);
  }

  /** Like exec, but returns status and output instead of throwing. */
  try(cmd: string, args: string[]): { status: number; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', this.name, cmd, ...args], { encoding: 'utf8' });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    execFileSync('ip', ['netns', 'delete', this.name]);
  }
}
