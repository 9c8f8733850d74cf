/**
 * What the helper-talking subcommands share: their argument parser (options
 * and positionals), where the socket and the token are, and the connection.
 *
 * Token, first found wins: --token-file PATH, $PORTCULLIS_TOKEN, then
 * /run/portcullis/token (written by the helper for the owning user, 0400).
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { IpcClient } from '../protocol/client.js';
import { IpcError } from '../protocol/errors.js';
import { DEFAULT_SOCKET_PATH, DEFAULT_TOKEN_PATH } from '../protocol/defaults.js';
import { CliUsageError } from './command.js';

export const CONNECTION_HELP = `Connection:
  --socket PATH        the helper's socket (default $PORTCULLIS_SOCKET or ${DEFAULT_SOCKET_PATH})
  --token-file PATH    read the token from PATH (default $PORTCULLIS_TOKEN, then
                       ${DEFAULT_TOKEN_PATH}, which only the owning user and root can read)`;

export type OptionDefs = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export const CONNECTION_OPTIONS = {
  socket: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionDefs;

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** node:util parseArgs, strict, with positionals; errors are usage errors. */
export function parseCommandArgs(argv: string[], options: OptionDefs): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options,
      strict: true,
      allowPositionals: true,
    });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (error) {
    throw new CliUsageError((error as Error).message.replace(/\s*\n\s*/g, ' '));
  }
}

export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
}

/** The token per the order above; an Error (exit 1) when there is none. */
function resolveToken(tokenFile: string | undefined, env: NodeJS.ProcessEnv): string {
  const read = (path: string): string => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new Error(`cannot read the token file: ${(error as Error).message}`);
    }
    const token = text.trim();
    if (!token) throw new Error(`the token file ${path} is empty`);
    return token;
  };
  if (tokenFile !== undefined) return read(tokenFile);
  const fromEnv = env['PORTCULLIS_TOKEN']?.trim();
  if (fromEnv) return fromEnv;
  if (existsSync(DEFAULT_TOKEN_PATH)) return read(DEFAULT_TOKEN_PATH);
  throw new Error(
    `no token: pass --token-file PATH or set PORTCULLIS_TOKEN (the helper writes it to ${DEFAULT_TOKEN_PATH})`,
  );
}

/** Connects with the options of `args`, runs `fn`, always closes. IpcErrors
 * are reported as "code: message". */
export async function withClient<T>(
  args: ParsedArgs,
  fn: (client: IpcClient) => Promise<T>,
): Promise<T> {
  const path =
    stringOption(args, 'socket') ?? process.env['PORTCULLIS_SOCKET'] ?? DEFAULT_SOCKET_PATH;
  const token = resolveToken(stringOption(args, 'token-file'), process.env);
  let client: IpcClient;
  try {
    client = await IpcClient.connect({ path, token, build: 'portcullis-cli' });
  } catch (error) {
    const e = describe(error, `cannot talk to the helper at ${path}`);
    if (/ENOENT|ECONNREFUSED/u.test(e.message)) e.message += ' (is the helper running?)';
    if (/EACCES/u.test(e.message)) e.message += ' (only the owning user and root may connect)';
    throw e;
  }
  try {
    return await fn(client);
  } catch (error) {
    throw describe(error);
  } finally {
    await client.close();
  }
}

function describe(error: unknown, context?: string): Error {
  if (!(error instanceof IpcError)) return error as Error;
  const text = `${error.code}: ${error.message}`;
  return new Error(context ? `${context}: ${text}` : text);
}
