/**
 * getopt_long as conntrack-tools 1.4.7 calls it: one word of the command
 * line at a time, long options by unique prefix, clusters of short options,
 * and the arguments they take.
 */
import { CompatUsageError } from './errors.js';
import {
  COMMAND_OPTIONS,
  GENERIC_LONG,
  SHORT,
  matchLong,
  type LongOption,
} from './option-table.js';

/** One option as read: its key in the option tables, its argument if any. */
export interface Token {
  key: string;
  value?: string;
  /** The option as written, for messages. */
  raw: string;
}

/** The command line and how far it has been read. */
export class ArgvCursor {
  private i = 0;
  constructor(private readonly argv: readonly string[]) {}

  get done(): boolean {
    return this.i >= this.argv.length;
  }

  /** The next word (undefined past the end), consumed. */
  next(): string | undefined {
    return this.argv[this.i++];
  }

  /** get_optional_arg(): the next word, unless it starts with '-' or '!'. */
  optionalArg(): string | undefined {
    const next = this.argv[this.i];
    if (next !== undefined && !next.startsWith('-') && !next.startsWith('!')) {
      this.i++;
      return next;
    }
    return undefined;
  }
}

/**
 * The options of the next word, with the words their arguments take.
 * `protoOptions`: the options of the protocol given so far (`-p tcp` makes
 * `--sport` known to the words after it).
 */
export function readWord(cursor: ArgvCursor, protoOptions: readonly LongOption[]): Token[] {
  const word = cursor.next()!;
  if (word.startsWith('--') && word.length > 2) return [readLong(word, cursor, protoOptions)];
  if (word.startsWith('-') && word.length > 1 && word !== '--') return readShort(word, cursor);
  // getopt permutes non-options to the end; conntrack-tools then ignores them.
  return [];
}

function readLong(word: string, cursor: ArgvCursor, protoOptions: readonly LongOption[]): Token {
  const eq = word.indexOf('=');
  const name = eq >= 0 ? word.slice(2, eq) : word.slice(2);
  const opt = matchLong(name, [...COMMAND_OPTIONS, ...GENERIC_LONG, ...protoOptions]);
  if (!opt) throw new CompatUsageError(`unknown option \`${word}'`);
  let value: string | undefined = eq >= 0 ? word.slice(eq + 1) : undefined;
  if (opt.arg === 'required' && value === undefined) {
    value = cursor.next();
    if (value === undefined) {
      throw new CompatUsageError(`option \`${word}' requires an argument`);
    }
  }
  return { key: opt.key, raw: word, ...(value !== undefined ? { value } : {}) };
}

/** A cluster of short options: "-Lp tcp" or "-ptcp". */
function readShort(word: string, cursor: ArgvCursor): Token[] {
  const tokens: Token[] = [];
  for (let j = 1; j < word.length; j++) {
    const c = word[j]!;
    const def = SHORT[c];
    if (!def) throw new CompatUsageError(`unknown option \`${word}'`);
    if (def.arg === 'none') {
      tokens.push({ key: def.key, raw: `-${c}` });
      continue;
    }
    let value: string | undefined = word.slice(j + 1) || undefined;
    if (value === undefined && def.arg === 'required') {
      value = cursor.next();
      if (value === undefined) {
        throw new CompatUsageError(`option \`-${c}' requires an argument`);
      }
    }
    tokens.push({ key: def.key, raw: `-${c}`, ...(value !== undefined ? { value } : {}) });
    break;
  }
  return tokens;
}
