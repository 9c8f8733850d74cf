/** The commands of the expect table: `-L|-F|-C|-I|-G|-D expect`. */
import type { Conntrack } from '../../conntrack/client.js';
import { IPPROTO } from '../../conntrack/constants.js';
import type { Tuple } from '../../conntrack/types.js';
import type { CliIo } from '../command.js';
import type { CompatArgs, CompatCommand } from './args.js';
import { completeTuple } from './create-spec.js';
import { COMPAT_PREFIX } from './errors.js';
import { counterJsonLine, expectationJsonLine } from './format-json.js';
import { expectClockPrefix, formatCompatExpectation } from './format-text.js';
import { XML_EXPECT_HEADER, formatCompatExpectationXml } from './format-xml.js';

type ExpectCommand = (a: CompatArgs, io: CliIo, ct: Conntrack) => Promise<number>;

const list: ExpectCommand = async (a, io, ct) => {
  // conntrack-tools dumps one family: IPv4 unless -f says otherwise.
  const expectations = await ct.expectations.listAll({ family: a.family ?? 'ipv4' });
  const xml = a.output.has('xml') && !a.json;
  /** -o xml,timestamp: libnetfilter_conntrack's <when> block. */
  const when = a.output.has('timestamp');
  if (xml && expectations.length) io.stdout(XML_EXPECT_HEADER);
  // dump_exp_cb(): -o timestamp puts the wall clock before each line.
  const stamp = () => (a.output.has('timestamp') ? expectClockPrefix() : '');
  io.stdout(
    expectations
      .map((e) =>
        a.json
          ? expectationJsonLine(e)
          : xml
            ? formatCompatExpectationXml(e, undefined, when) + '\n'
            : stamp() + formatCompatExpectation(e) + '\n',
      )
      .join(''),
  );
  // dump_exp_cb() prints the header before the first one; -L closes it.
  if (xml && expectations.length) io.stdout('</expect>\n');
  io.stderr(`${COMPAT_PREFIX}${expectations.length} expectations have been shown.\n`);
  return 0;
};

const flush: ExpectCommand = async (_a, io, ct) => {
  await ct.expectations.flush();
  io.stderr(`${COMPAT_PREFIX}expectation table has been emptied.\n`);
  return 0;
};

const count: ExpectCommand = async (a, io, ct) => {
  const expectations = await ct.expectations.listAll();
  io.stdout(a.json ? counterJsonLine(expectations.length) : `${expectations.length}\n`);
  return 0;
};

/**
 * EXP_CREATE: the master from -s/-d/-p and its ports, the expected tuple
 * from --tuple-*, the mask from --mask-* (no summary, exit 0). 1.4.7 sets
 * the expected tuple's protocol from the port's byte (a bug): here it is the
 * -p protocol (docs/conntrack-cli.md).
 */
const create: ExpectCommand = async (a, _io, ct) => {
  const proto = a.proto!;
  const master = completeTuple(a.orig, 'src');
  const tuple = { ...a.expTuple, proto } as Tuple;
  const mask: Partial<Tuple> = { ...a.expMask };
  if (a.srcMask !== undefined) mask.src = a.srcMask;
  if (a.dstMask !== undefined) mask.dst = a.dstMask;
  await ct.expectations.create({ master, tuple, mask, timeout: a.timeout ?? 0 });
  return 0;
};

/** The expectation -G and -D name by its tuple. */
function expectationKey(a: CompatArgs): { tuple: Tuple; family?: CompatArgs['family'] } {
  const tuple = completeTuple(a.orig, 'src');
  if (tuple.proto === IPPROTO.icmp || tuple.proto === IPPROTO.icmpv6) {
    // libnetfilter_conntrack always sends type, code and id (0 unless given).
    tuple.icmpType ??= 0;
    tuple.icmpCode ??= 0;
    tuple.icmpId ??= 0;
  }
  return { tuple, ...(a.family ? { family: a.family } : {}) };
}

const get: ExpectCommand = async (a, io, ct) => {
  const e = await ct.expectations.get(expectationKey(a));
  const when = a.output.has('timestamp');
  io.stdout(
    a.json
      ? expectationJsonLine(e)
      : a.output.has('xml')
        ? XML_EXPECT_HEADER + formatCompatExpectationXml(e, undefined, when) + '\n'
        : formatCompatExpectation(e) + '\n',
  );
  return 0;
};

const remove: ExpectCommand = async (a, io, ct) => {
  await ct.expectations.delete(expectationKey(a));
  // 1.4.7 counts nothing for -D expect: "0 expectations have been shown.", exit 1, even on success.
  io.stderr(`${COMPAT_PREFIX}0 expectations have been shown.\n`);
  return 1;
};

const COMMANDS: Partial<Record<CompatCommand, ExpectCommand>> = {
  L: list,
  F: flush,
  C: count,
  I: create,
  G: get,
  D: remove,
};

/** Runs one command of the expect table; commands it has not, exit 0. */
export async function executeExpect(a: CompatArgs, io: CliIo, ct: Conntrack): Promise<number> {
  const command = COMMANDS[a.command];
  return command ? command(a, io, ct) : 0;
}
