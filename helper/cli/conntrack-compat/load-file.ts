/**
 * `-R FILE` / `--load-file FILE`: a batch of conntrack-tools command lines,
 * read and split as 1.4.7 reads them, checked all before any runs.
 */
import { readFileSync } from 'node:fs';
import { IPPROTO } from '../../conntrack/constants.js';
import type { CliIo } from '../command.js';
import type { CompatArgs } from './args.js';
import { CompatUsageError } from './errors.js';
import { labelMapLoader } from './label-map.js';
import type { ConntrackRunOptions } from './open-table.js';
import { parseCompatArgs } from './parse.js';
import { execute } from './run-table.js';
import { checkSupported } from './supported.js';

/**
 * `-R FILE` / `--load-file FILE` as 1.4.7's main() spots it: the first
 * argument exactly (after our own leading --netns NAME / --json) and a file
 * name after it. Of the words after the file name, 1.4.7 ignores all; ours
 * (--netns NAME, --json) apply to every line wherever they stand, so that
 * `-R - --netns NS` never runs a line outside NS. Otherwise (`-R` alone,
 * `--load-file=F`, `-L -R F`) the command line goes to the parser, which does
 * not know -R: `unknown option`.
 */
export function loadFileRequest(
  argv: readonly string[],
): { file: string; prefix: string[] } | undefined {
  const prefix: string[] = [];
  /** Our option at argv[i]: the words it takes, or 0. */
  const ours = (i: number): number => {
    const word = argv[i]!;
    if (word === '--json' || word.startsWith('--netns=')) return 1;
    if (word !== '--netns') return 0;
    if (argv[i + 1] === undefined) {
      throw new CompatUsageError("option `--netns' requires an argument");
    }
    return 2;
  };
  let i = 0;
  while (i < argv.length) {
    if (argv[i] === '--netns' && argv[i + 1] === undefined) break;
    const n = ours(i);
    if (n === 0) break;
    prefix.push(...argv.slice(i, i + n));
    i += n;
  }
  const opt = argv[i];
  const file = argv[i + 1];
  if ((opt !== '-R' && opt !== '--load-file') || file === undefined) return undefined;
  for (let j = i + 2; j < argv.length;) {
    const n = ours(j);
    prefix.push(...argv.slice(j, j + n));
    j += Math.max(n, 1);
  }
  return { file, prefix };
}

/**
 * ct_file_parse_line(): the words of one line read by fgets(), or undefined
 * for a line 1.4.7 skips (after leading blanks and tabs: a newline or '#').
 * Words are split at blanks, tabs and newlines; "..." quotes a word, with
 * backslash escapes inside the quotes, and the closing quote ends the word
 * (iptables' add_param_to_argv()).
 */
export function loadFileWords(line: string): string[] | undefined {
  let i = 0;
  while (line[i] === ' ' || line[i] === '\t') i++;
  if (line[i] === '\n' || line[i] === '#') return undefined;
  const words: string[] = [];
  let word = '';
  let open = false;
  let escaped = false;
  for (; i < line.length; i++) {
    const c = line[i]!;
    if (open) {
      if (escaped) {
        word += c;
        escaped = false;
        continue;
      }
      if (c === '\\') {
        escaped = true;
        continue;
      }
      if (c !== '"') {
        word += c;
        continue;
      }
      // The closing quote ends the word, even an empty one.
      open = false;
      words.push(word);
      word = '';
      continue;
    } else if (c === '"') {
      open = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\n') {
      if (!word.length) continue;
      words.push(word);
      word = '';
      continue;
    }
    word += c;
  }
  if (word.length) words.push(word);
  return words;
}

/** fgets() lines: each with its newline, the last one possibly without. */
export function fgetsLines(text: string): string[] {
  const lines = text.split(/(?<=\n)/);
  return lines.filter((l) => l.length > 0);
}

/** ct_unsupp_cmd_file(): how 1.4.7 names a command -R refuses. */
function refusedCommandName(a: CompatArgs): string {
  if (a.noCommand) return 'unknown';
  if (a.table === 'expect') {
    const names: Partial<Record<string, string>> = {
      L: '-L expect',
      I: '-C expect',
      D: '-D expect',
      G: '-G expect',
      F: '-F expect',
      E: '-E expect',
      C: '-C expect',
      S: '-S expect',
    };
    return names[a.command] ?? 'unknown';
  }
  return ['L', 'G', 'E', 'V', 'h', 'C', 'S'].includes(a.command) ? `-${a.command}` : 'unknown';
}

/**
 * `-R FILE`: every line is parsed first (a bad line stops everything before
 * anything runs), then each must be -I, -A, -U, -D or -F
 * (`Cannot use command ... with --load-file` otherwise), then they run in
 * order; the first failure stops the rest with `Operation failed`, exit 1.
 */
export async function runLoadFile(
  file: string,
  prefix: string[],
  io: CliIo,
  seams: ConntrackRunOptions,
): Promise<number> {
  const name = file === '-' ? '/dev/stdin' : file;
  let text: string;
  try {
    // As fopen("/dev/stdin"): fails, as in 1.4.7, when stdin is a socket.
    text = readFileSync(name, 'utf8');
  } catch (error) {
    // fopen() succeeds on a directory; fgets() then reads nothing.
    if ((error as NodeJS.ErrnoException).code !== 'EISDIR') {
      throw new CompatUsageError(`Failed to open file ${name} for reading`);
    }
    text = '';
  }
  const loadLabelMap = labelMapLoader(io);
  const commands: CompatArgs[] = [];
  const netns = parseCompatArgs(prefix).netns;
  for (const line of fgetsLines(text)) {
    const words = loadFileWords(line);
    if (words === undefined) continue;
    const a = parseCompatArgs([...prefix, ...words], {
      loadLabelMap,
      warn: (text) => io.stderr(text),
    });
    // Where a batch runs is the command line's choice, never a line's.
    if (a.netns !== netns) {
      throw new CompatUsageError(
        '--netns cannot be given in a -R file; give it on the command line',
      );
    }
    commands.push(a);
  }
  for (const a of commands) {
    if (!['I', 'A', 'U', 'D', 'F'].includes(a.command) || a.noCommand || a.table !== 'conntrack') {
      throw new CompatUsageError(`Cannot use command \`${refusedCommandName(a)}' with --load-file`);
    }
  }
  for (const a of commands) checkSupported(a);
  for (const a of commands) {
    if (a.proto === IPPROTO.icmp && a.family === 'ipv6') {
      throw new CompatUsageError('mismatched address family');
    }
    await execute(a, io, seams, true);
  }
  return 0;
}
