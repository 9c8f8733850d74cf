/**
 * conntrack-tools 1.4.7 command-line syntax (`portcullis conntrack -L -p tcp
 * ...`): a getopt_long emulation with the same option table, the same
 * per-command legality matrix, the same value parsing (including its
 * lenient atoi/strtoul quirks) and the same error messages. Pure: no
 * kernel access. Errors are CompatUsageError (printed as conntrack-tools
 * prints PARAMETER_PROBLEM, exit status 2).
 */
import {
  OPTION_NAMES,
  type CompatArgs,
  type CompatCommand,
  type CompatTable,
  type OptionName,
} from './args.js';
import { CompatUsageError } from './errors.js';
import { ArgvCursor, readWord, type Token } from './getopt.js';
import { checkLegality } from './legality.js';
import { applyOption } from './option-handlers.js';
import { ParseState, type CompatParseOptions } from './parse-state.js';

/** Parses `conntrack <argv>` as conntrack-tools 1.4.7 does. */
export function parseCompatArgs(
  argv: readonly string[],
  parseOptions: CompatParseOptions = {},
): CompatArgs {
  const s = new ParseState(new ArgvCursor(argv), parseOptions);
  while (!s.cursor.done) {
    for (const t of readWord(s.cursor, s.ext?.options ?? [])) readToken(s, t);
  }
  return finish(s);
}

function readToken(s: ParseState, t: Token): void {
  const { r } = s;
  if (/^[LIUDGEFACSVh]$/.test(t.key)) {
    setCommand(s, t);
    return;
  }
  if (t.key === 'json') {
    r.json = true;
    return;
  }
  if (t.key === 'netns') {
    r.netns = t.value ?? '';
    return;
  }
  if (t.key === 'nat-range') {
    // Deprecated: a warning, and not an option the command is checked against.
    s.warn('WARNING: ignoring -a, deprecated option.\n');
    return;
  }
  if ((OPTION_NAMES as readonly string[]).includes(t.key)) {
    r.options.add(t.key as OptionName);
  } else {
    r.protoOptions.add(t.key);
  }
  applyOption(s, t);
}

/** A command option (-L, --dump [TABLE], ...): one per command line. */
function setCommand(s: ParseState, t: Token): void {
  if (s.command !== undefined) throw new CompatUsageError('Invalid commands combination');
  const command = t.key as CompatCommand;
  s.command = command;
  if (command === 'S' || command === 'V' || command === 'h') return;
  const name = t.value ?? s.cursor.optionalArg();
  if (name !== undefined) s.table = checkTable(name);
  if (command !== 'L' && (s.table === 'dying' || s.table === 'unconfirmed')) {
    throw new CompatUsageError("Can't do that command with tables `dying' and `unconfirmed'");
  }
  if (s.table === 'expect' && (command === 'U' || command === 'A')) {
    // cmd2type[] has no expectation form of them.
    const long = command === 'U' ? 'update' : 'add';
    throw new CompatUsageError(`Can't do --${long} on expectations`);
  }
}

function checkTable(name: string): CompatTable {
  for (const t of ['expect', 'conntrack', 'dying', 'unconfirmed'] as const) {
    if (t.startsWith(name)) return t;
  }
  throw new CompatUsageError(`unknown type \`${name}'`);
}

/** After the last word: what follows from the options together, then 1.4.7's checks. */
function finish(s: ParseState): CompatArgs {
  const { r } = s;
  const options = r.options;
  if (options.has('any-nat') && (options.has('src-nat') || options.has('dst-nat'))) {
    throw new CompatUsageError("cannot specify `--src-nat' or `--dst-nat' with `--any-nat'");
  }
  if (s.command === undefined) {
    // conntrack-tools checks the options against an empty row: the first is illegal.
    const first = OPTION_NAMES.find((o) => options.has(o));
    if (first) throw new CompatUsageError(`Illegal option \`--${first}' with this command`);
    s.command = 'h';
    r.noCommand = true;
  }
  r.command = s.command;
  r.table = s.table;
  if (s.family) r.family = s.family;
  if (r.proto !== undefined) {
    r.orig.proto = r.proto;
    if (Object.keys(r.reply).length) r.reply.proto = r.proto;
  }
  checkLegality(r, s.ext);
  return r;
}
