/** Output sinks, injectable so that tests capture what a command prints. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface CliCommand {
  name: string;
  summary: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

/** Bad arguments: printed with a hint, exit status 2. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}
