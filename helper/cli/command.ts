import { parseArgs } from 'node:util';

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

/** Whether `sub` names a subcommand to run: not absent, -h, --help (or one of `helpWords`). */
export function isSubcommand(
  sub: string | undefined,
  helpWords: readonly string[] = [],
): sub is string {
  return sub !== undefined && sub !== '-h' && sub !== '--help' && !helpWords.includes(sub);
}

/** Prints a command's help: exit status 2 when it was run bare (a usage error), 0 when
 * help was asked for. */
export function printHelp(sub: string | undefined, help: string, io: CliIo): number {
  io.stdout(help);
  return sub === undefined ? 2 : 0;
}

/** Bad arguments: printed with a hint, exit status 2. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

/** How an option is spelled and whether it takes a value. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
}

/** One option occurrence, in command-line order. */
export interface OptionToken {
  name: string;
  rawName: string;
  value: string | undefined;
}

/**
 * The options of argv in order (node:util parseArgs, strict, no positionals),
 * each occurrence separately so that callers can reject repeats and check
 * which options a subcommand allows. Malformed input is a CliUsageError.
 */
export function optionTokens(
  argv: string[],
  specs: Readonly<Record<string, OptionSpec>>,
): OptionToken[] {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple: true }> =
    {};
  for (const [name, def] of Object.entries(specs)) {
    options[name] = { type: def.type, multiple: true, ...(def.short ? { short: def.short } : {}) };
  }
  try {
    const { tokens } = parseArgs({
      args: argv,
      options,
      strict: true,
      allowPositionals: false,
      tokens: true,
    });
    const out: OptionToken[] = [];
    for (const t of tokens)
      if (t.kind === 'option') out.push({ name: t.name, rawName: t.rawName, value: t.value });
    return out;
  } catch (error) {
    // node:util's messages can span lines; keep the one-line shape of ours.
    throw new CliUsageError((error as Error).message.replace(/\s*\n\s*/g, ' '));
  }
}
