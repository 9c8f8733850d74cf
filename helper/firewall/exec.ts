import { execFile } from 'node:child_process';
import { FirewallError } from './errors.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs one program with an argv (never through a shell), optionally feeding `input`
 * on stdin. Rejects with `FirewallError` `COMMAND_FAILED` (command, exit status, stderr).
 */
export type CommandRunner = (argv: readonly string[], input?: string) => Promise<CommandResult>;

/** The argv that runs `argv` inside the namespace (an `ip netns` name), or `argv` itself. */
export function inNetns(netns: string | undefined, argv: readonly string[]): string[] {
  return netns === undefined ? [...argv] : ['ip', 'netns', 'exec', netns, ...argv];
}

/** The default runner: `execFile`, 30 s timeout, 16 MiB of output at most. */
export const execFileRunner: CommandRunner = (argv, input) =>
  new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) {
      reject(new FirewallError('COMMAND_FAILED', 'empty command', { command: [] }));
      return;
    }
    const child = execFile(
      file,
      args,
      {
        encoding: 'utf8',
        timeout: 30_000,
        maxBuffer: 16 << 20,
        env: { ...process.env, LC_ALL: 'C' },
      },
      (error, stdout, stderr) => {
        if (!error) {
          resolve({ stdout, stderr });
          return;
        }
        const code = (error as NodeJS.ErrnoException & { code?: unknown }).code;
        const exitStatus = typeof code === 'number' ? code : undefined;
        const signal = (error as { signal?: unknown }).signal;
        reject(
          new FirewallError(
            'COMMAND_FAILED',
            `${argv.join(' ')} ${
              exitStatus !== undefined
                ? `exited ${exitStatus}`
                : `failed (${String(code ?? signal)})`
            }${stderr.trim() ? `: ${stderr.trim()}` : ''}`,
            {
              command: [...argv],
              ...(exitStatus !== undefined ? { exitStatus } : {}),
              ...(typeof signal === 'string' ? { signal } : {}),
              stderr,
              ...(input !== undefined ? { input } : {}),
              cause: error,
            },
          ),
        );
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
