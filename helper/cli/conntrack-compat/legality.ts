/**
 * generic_opt_check() and final_check() of conntrack-tools 1.4.7: which
 * options each command allows or needs, for the conntrack and the expect
 * tables and for the protocol extensions, with 1.4.7's messages.
 */
import { OPTION_NAMES, type CompatArgs, type LegalityRows, type OptionName } from './args.js';
import { CompatUsageError } from './errors.js';
import type { ProtoExt } from './proto-extensions.js';

// prettier-ignore
const MATRIX: LegalityRows = {
  /*     s d r q p t u z e [ ] { } a m i f n g o c b j w l < > ( ) */
  L: [2,2,2,2,2,0,2,2,0,0,0,2,2,0,2,0,2,2,2,2,2,0,2,2,2,0,0,2,2],
  I: [3,3,3,3,1,1,2,0,0,0,0,0,0,2,2,0,0,2,2,0,0,0,0,2,0,2,0,2,2],
  U: [2,2,2,2,2,2,2,0,0,0,0,2,2,0,2,2,2,2,2,2,0,0,0,0,2,2,2,0,0],
  D: [2,2,2,2,2,2,2,0,0,0,0,2,2,0,2,2,2,2,2,2,0,0,0,2,2,0,0,2,2],
  G: [3,3,3,3,1,0,0,0,0,0,0,0,0,0,0,2,0,0,0,2,0,0,0,0,2,0,0,0,0],
  F: [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0,0,0,0],
  E: [2,2,2,2,2,0,0,0,2,0,0,2,2,0,2,0,2,2,2,2,2,2,2,2,2,0,0,2,2],
  A: [3,3,3,3,1,1,2,0,0,0,0,0,0,2,2,0,0,2,2,0,0,0,0,2,0,2,0,2,2],
};

// The same for the expect table (EXP_*_BIT rows).
// prettier-ignore
const EXP_MATRIX: LegalityRows = {
  /*     s d r q p t u z e [ ] { } a m i f n g o c b j w l < > ( ) */
  L: [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,2,0,0,0,0,0,0,0,0,0],
  I: [1,1,2,2,1,1,2,0,0,1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],
  D: [1,1,2,2,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],
  G: [1,1,2,2,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],
  E: [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0],
};

/** What -z cannot be combined with at -L. */
const FILTERING: readonly OptionName[] = [
  'src',
  'dst',
  'reply-src',
  'reply-dst',
  'protonum',
  'mark',
  'status',
  'zone',
  'label',
  'orig-zone',
  'reply-zone',
  'secmark',
  'id',
];

/** The checks 1.4.7 makes once every option is read, in its order. */
export function checkLegality(a: CompatArgs, ext: ProtoExt | undefined): void {
  if (a.command === 'L' && a.options.has('zero') && FILTERING.some((o) => a.options.has(o))) {
    throw new CompatUsageError("Can't use -z with filtering parameters");
  }
  checkGenericOptions(a);
  if (ext) checkProtoOptions(a, ext);
}

/** generic_opt_check(): per-command legality, then the address couples. */
function checkGenericOptions({ command, table, options }: CompatArgs): void {
  const matrix = table === 'expect' ? EXP_MATRIX : MATRIX;
  const row = matrix[command] ?? (Array(OPTION_NAMES.length).fill(0) as number[]);
  if (table === 'conntrack' || table === 'expect' || command === 'L') {
    checkRow(row, OPTION_NAMES, options);
  }
  if (!row.slice(0, 4).includes(3)) return;
  const orig = options.has('src') && options.has('dst');
  const reply = options.has('reply-src') && options.has('reply-dst');
  if (orig || reply) return;
  if (
    !options.has('src') &&
    !options.has('dst') &&
    (options.has('reply-src') || options.has('reply-dst'))
  ) {
    throw new CompatUsageError("you have to specify `--reply-src' and `--reply-dst'");
  }
  throw new CompatUsageError("you have to specify `--src' and `--dst'");
}

/** The protocol extension's own checks. */
function checkProtoOptions({ command, table, protoOptions }: CompatArgs, ext: ProtoExt): void {
  const extRow =
    table === 'expect'
      ? (ext.expMatrix[command] ?? (Array(ext.flags.length).fill(0) as number[]))
      : ext.matrix[command];
  if (!extRow) return;
  const given = new Set(ext.flags.filter((_f, n) => protoOptions.has(ext.keys[n]!)));
  checkRow(extRow, ext.flags, given);
  if (extRow.includes(3) && ext.couples && ext.coupleMessages) {
    // generic_opt_check(): an exact couple, else the first partial one.
    const couples = ext.couples;
    if (!couples.some(([x, y]) => protoOptions.has(x) && protoOptions.has(y))) {
      const partial = couples.findIndex(([x, y]) => protoOptions.has(x) || protoOptions.has(y));
      throw new CompatUsageError(ext.coupleMessages[partial === 1 ? 1 : 0]);
    }
  }
}

function checkRow(
  row: readonly number[],
  names: readonly string[],
  given: ReadonlySet<string>,
): void {
  for (let n = 0; n < names.length; n++) {
    const has = given.has(names[n]!);
    if (!has && row[n] === 1) {
      throw new CompatUsageError(`You need to supply the \`--${names[n]}' option for this command`);
    }
    if (has && row[n] === 0) {
      throw new CompatUsageError(`Illegal option \`--${names[n]}' with this command`);
    }
  }
}
