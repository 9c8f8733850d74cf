/**
 * `portcullis conntrack -L|-G|-I|-A|-U|-D|-F|-C|-S ...`: the conntrack-tools
 * 1.4.7 command syntax, with its output, messages and exit statuses, on the
 * Portcullis conntrack library; plus --json and --netns. See
 * docs/conntrack-cli.md.
 */
import { Conntrack, type CreateSpec, type ListOptions } from '../conntrack/client.js';
import { IPPROTO, STATUS_BITS } from '../conntrack/constants.js';
import { ConntrackArgumentError, invertTuple } from '../conntrack/encode.js';
import { parseIP } from '../conntrack/ip.js';
import type { Flow, Tuple } from '../conntrack/types.js';
import { NetlinkError } from '../netlink/errors.js';
import type { CliIo } from './command.js';
import {
  COMPAT_PREFIX,
  CompatUsageError,
  TRY_HELP,
  parseCompatArgs,
  parseLabelMap,
  type CompatArgs,
  type LabelMap,
  type OptionName,
} from './conntrack-compat-args.js';
import {
  XML_EXPECT_HEADER,
  XML_HEADER,
  formatCompatExpectationXml,
  formatCompatFlow,
  formatCompatSave,
  formatCompatXml,
  formatCompatStats,
  type FormatOptions,
} from './conntrack-compat-format.js';
import { flowJsonLine, flowToJson } from './conntrack-json.js';
import { ConntrackEvents } from '../conntrack/events.js';
import { eventTypeOf } from '../conntrack/events.js';
import { decodeFlow, labelBits } from '../conntrack/decode.js';
import { readFileSync } from 'node:fs';
import { decodeExpectationEvent } from '../conntrack/expect.js';
import { flowMatcher } from '../conntrack/filter.js';
import type { NetlinkMessage } from '../netlink/message.js';
import type { NetlinkTransport } from '../netlink/socket.js';
import { expectationJsonLine, formatCompatExpectation } from './conntrack-compat-format.js';

export const COMPAT_USAGE = `Command line interface for the connection tracking system. Version 1.4.7
Usage: conntrack [commands] [options]

Commands:
  -L [table] [options]\t\tList conntrack or expectation table
  -G [table] parameters\t\tGet conntrack or expectation
  -D [table] parameters\t\tDelete conntrack or expectation
  -I [table] parameters\t\tCreate a conntrack or expectation
  -U [table] parameters\t\tUpdate a conntrack
  -E [table] [options]\t\tShow events
  -F [table]\t\t\tFlush table
  -C [table]\t\t\tShow counter
  -S\t\t\t\tShow statistics

Tables: conntrack, expect, dying, unconfirmed

Conntrack parameters and options:
  -n, --src-nat ip\t\t\tsource NAT ip
  -g, --dst-nat ip\t\t\tdestination NAT ip
  -j, --any-nat ip\t\t\tsource or destination NAT ip
  -m, --mark mark\t\t\tSet mark
  -c, --secmark secmark\t\t\tSet selinux secmark
  -e, --event-mask eventmask\t\tEvent mask, eg. NEW,DESTROY
  -z, --zero \t\t\t\tZero counters while listing
  -o, --output type[,...]\t\tOutput format, eg. xml
  -l, --label label[,...]\t\tconntrack labels

Expectation parameters and options:
  --tuple-src ip\tSource address in expect tuple
  --tuple-dst ip\tDestination address in expect tuple

Updating parameters and options:
  --label-add label\tAdd label
  --label-del label\tDelete label

Common parameters and options:
  -s, --src, --orig-src ip\t\tSource address from original direction
  -d, --dst, --orig-dst ip\t\tDestination address from original direction
  -r, --reply-src ip\t\tSource addres from reply direction
  -q, --reply-dst ip\t\tDestination address from reply direction
  -p, --protonum proto\t\tLayer 4 Protocol, eg. 'tcp'
  -f, --family proto\t\tLayer 3 Protocol, eg. 'ipv6'
  -t, --timeout timeout\t\tSet timeout
  -u, --status status\t\tSet status, eg. ASSURED
  -w, --zone value\t\tSet conntrack zone
  --orig-zone value\t\tSet zone for original direction
  --reply-zone value\t\tSet zone for reply direction
  -b, --buffer-size\t\tNetlink socket buffer size
  --mask-src ip\t\t\tSource mask address
  --mask-dst ip\t\t\tDestination mask address

`;

/** Test seam of the conntrack commands: a fake kernel instead of a netlink
 * socket, one per Conntrack opened. */
export interface ConntrackRunOptions {
  transport?: () => NetlinkTransport;
}

/** The table of `netns` (the caller's own when undefined). */
export function openConntrack(netns: string | undefined, seams: ConntrackRunOptions): Conntrack {
  return Conntrack.open({
    ...(netns !== undefined ? { netns } : {}),
    ...(seams.transport ? { transport: seams.transport() } : {}),
  });
}

/** Options the syntax accepts but this version does not carry out yet. */
const NOT_YET: readonly OptionName[] = [];

function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/** A refusal printed as "Operation failed: ..." (exit status 1). */
class OperationFailed extends Error {}

/** Not implemented yet: said plainly, exit status 1. */
class NotSupported extends Error {}

/** err2str() of conntrack-tools, for the errors a command can meet. */
function describe(error: NetlinkError, command: CompatArgs['command'], expect = false): string {
  const create = command === 'I' || command === 'A';
  if (expect && command === 'I') {
    // err2str() with EXP_CREATE; strerror() otherwise.
    if (error.code === 'ENOENT') return 'master conntrack not found';
    if (error.code === 'EEXIST') return 'File exists';
  }
  if (expect && error.code === 'ENOENT') return 'No such file or directory';
  switch (error.code) {
    case 'EEXIST':
      if (command === 'I') return 'Such conntrack exists, try -U to update';
      return 'File exists';
    case 'ENOENT':
      return create || command === 'G' || command === 'D'
        ? "such conntrack doesn't exist"
        : 'No such file or directory';
    case 'EINVAL':
      return 'invalid parameters';
    case 'EPERM':
      return 'sorry, you must be root or get CAP_NET_ADMIN capability to do this';
    case 'ENOMEM':
      return 'not enough memory';
    case 'ETIME':
      return create ? 'conntrack has expired' : 'Timer expired';
    case 'EOPNOTSUPP':
      return 'Operation not supported';
    case 'EBUSY':
      return 'Device or resource busy';
    case 'ENOSPC':
      return 'No space left on device';
    case 'EAFNOSUPPORT':
      return command === 'G'
        ? 'protocol not supported'
        : 'Address family not supported by protocol';
    default:
      return error.message;
  }
}

/** (address & mask) == (network & mask), for addresses of one family. */
function inNetwork(address: string, network: string, mask: string): boolean {
  const a = parseIP(address);
  const n = parseIP(network);
  const m = parseIP(mask);
  if (!a || !n || !m || a.length !== n.length || m.length !== a.length) return false;
  return a.every((byte, i) => (byte & m[i]!) === (n[i]! & m[i]!));
}

/**
 * nfct_filter_init(): --mask-src / --mask-dst need the address they mask
 * (-L, -U, -D, -E check it when they start, as 1.4.7).
 */
function filterInit(a: CompatArgs): void {
  if (a.options.has('mask-src') && a.orig.src === undefined) {
    throw new CompatUsageError("Can't use --mask-src without --src");
  }
  if (a.options.has('mask-dst') && a.orig.dst === undefined) {
    throw new CompatUsageError("Can't use --mask-dst without --dst");
  }
}

/**
 * filter_nat(): --src-nat / --dst-nat / --any-nat [ADDR[:PORT]]. An entry is
 * SNATed when SRC_NAT_DONE is set and its reply destination differs from the
 * original source (the port likewise); with an address, the reply address
 * must be that address (IPv4 only, as 1.4.7 reads ATTR_SNAT_IPV4 alone),
 * with a port, the reply port. -n and -g together: both; -j: either.
 */
function natMatcher(a: CompatArgs): ((flow: Flow) => boolean) | undefined {
  const any = a.options.has('any-nat');
  const checkSrc = any || a.options.has('src-nat');
  const checkDst = any || a.options.has('dst-nat');
  if (!checkSrc && !checkDst) return undefined;
  const has = (
    flow: Flow,
    nat: CompatArgs['natSrc'],
    doneBit: number,
    natIp: string,
    origIp: string,
    natPort: number,
    origPort: number,
  ): boolean => {
    const done = (flow.status & doneBit) !== 0;
    const isNat = done && natIp !== origIp;
    const isPat = done && natPort !== origPort;
    let result = false;
    const checkAddress = nat !== undefined && !nat.ip.includes(':');
    if (checkAddress) result = isNat && nat.ip === natIp;
    if (nat?.port !== undefined) {
      const ret = isPat && nat.port === natPort;
      if (checkAddress && result && !ret) result = false;
      if (!checkAddress && ret) result = true;
    } else if (!checkAddress) result = isNat || isPat;
    return result;
  };
  return (flow) => {
    const src =
      checkSrc &&
      has(
        flow,
        a.natSrc,
        STATUS_BITS.SRC_NAT_DONE,
        flow.reply.dst,
        flow.orig.src,
        flow.reply.dstPort ?? 0,
        flow.orig.srcPort ?? 0,
      );
    const dst =
      checkDst &&
      has(
        flow,
        a.natDst,
        STATUS_BITS.DST_NAT_DONE,
        flow.reply.src,
        flow.orig.dst,
        flow.reply.srcPort ?? 0,
        flow.orig.dstPort ?? 0,
      );
    if (any) return src || dst;
    if (checkSrc && checkDst) return src && dst;
    return checkSrc ? src : dst;
  };
}

/**
 * The filter of -L, -D, -U and -E: every option conntrack-tools compares
 * (CT_COMPARISON, filter_nat, filter_label, filter_network). `tupleOnly`
 * (-U): mark, status, zone and state are what -U sets, not filters.
 */
function listFilter(a: CompatArgs, tupleOnly = false): ListOptions {
  const f: ListOptions = {};
  if (a.family) f.family = a.family;
  const orig: Partial<Tuple> = { ...a.orig };
  const checks: ((flow: Flow) => boolean)[] = [];
  for (const [key, mask] of [
    ['src', a.options.has('mask-src') ? a.srcMask : undefined],
    ['dst', a.options.has('mask-dst') ? a.dstMask : undefined],
  ] as const) {
    const net = orig[key];
    if (mask === undefined || net === undefined) continue;
    // filter_network(): the family of the mask, then the masked address.
    const family = a.family;
    delete orig[key];
    checks.push((flow) => flow.family === family && inNetwork(flow.orig[key], net, mask));
  }
  if (Object.keys(orig).length) f.orig = orig;
  if (Object.keys(a.reply).length) f.reply = { ...a.reply };
  // nfct_cmp(): a port (or ICMP field) asked for must be in the entry; the
  // kernel's tuple filter lets entries of protocols without ports through
  // (DCCP when the kernel has no DCCP tracker).
  for (const dir of ['orig', 'reply'] as const) {
    const t = f[dir];
    if (!t) continue;
    const fields = (['srcPort', 'dstPort', 'icmpType', 'icmpCode', 'icmpId'] as const).filter(
      (k) => t[k] !== undefined,
    );
    if (fields.length) checks.push((flow) => fields.every((k) => flow[dir][k] === t[k]));
  }
  const nat = natMatcher(a);
  if (nat) checks.push(nat);
  if (a.labels !== undefined) {
    // filter_label(): every bit asked for must be set; no labels, no match.
    const wanted = a.labels;
    checks.push((flow) => {
      if (!flow.labels) return false;
      const have = new Set(labelBits(flow.labels));
      return wanted.every((b) => have.has(b));
    });
  }
  if (a.id !== undefined) {
    const id = a.id;
    checks.push((flow) => flow.id === id);
  }
  if (!tupleOnly) {
    if (a.mark) {
      f.mark = a.mark.value;
      f.markMask = a.mark.mask;
    }
    if (a.status !== undefined) {
      f.status = a.status;
      // Only -L of the main table hands the kernel 1.4.7's status filter, with
      // its mask from the first -u (see the parser); -D and -E compare all flags.
      f.statusMask =
        a.command === 'L' && a.table === 'conntrack' ? (a.statusMask ?? a.status) : a.status;
    }
    if (a.zone !== undefined) f.zone = a.zone;
    if (a.state !== undefined) {
      const state = a.state;
      checks.push((flow) => flow.tcp?.state === state);
    }
    if (a.sctpState !== undefined) {
      const state = a.sctpState;
      checks.push((flow) => flow.sctp?.state === state);
    }
    if (a.dccpState !== undefined) {
      const state = a.dccpState;
      checks.push((flow) => flow.dccp?.state === state);
    }
    // nfct_cmp(): an entry without a secmark matches any -c (the kernel does
    // not dump CTA_SECMARK); a direction without a zone is zone 0.
    if (a.secmark !== undefined) {
      const secmark = a.secmark;
      checks.push((flow) => flow.secmark === undefined || flow.secmark === secmark);
    }
    // In user space: the kernel's tuple filter compares a zone whatever its direction.
    if (a.origZone !== undefined) {
      const zone = a.origZone;
      checks.push((flow) => (flow.orig.zone ?? 0) === zone);
    }
    if (a.replyZone !== undefined) {
      const zone = a.replyZone;
      checks.push((flow) => (flow.reply.zone ?? 0) === zone);
    }
  }
  if (checks.length) f.where = (flow) => checks.every((c) => c(flow));
  return f;
}

function completeTuple(t: Partial<Tuple>, what: string): Tuple {
  if (t.src === undefined || t.dst === undefined || t.proto === undefined) {
    throw new CompatUsageError(`you have to specify \`--${what}'`);
  }
  return { ...t } as Tuple;
}

function createSpec(a: CompatArgs): CreateSpec {
  const hasOrig = a.orig.src !== undefined && a.orig.dst !== undefined;
  let orig: Tuple;
  let reply: Tuple | undefined;
  if (hasOrig) {
    orig = completeTuple(a.orig, 'src');
    if (Object.keys(a.reply).some((k) => k !== 'proto')) {
      reply = { ...invertTuple(orig), ...a.reply };
    }
  } else {
    const r: Partial<Tuple> = { ...a.reply, proto: a.proto! };
    reply = completeTuple(r, 'reply-src');
    orig = invertTuple(reply);
  }
  // --orig-zone / --reply-zone: CTA_TUPLE_ZONE of that direction only (the
  // library always sends both tuples; the reply is completed from the original).
  if (a.origZone !== undefined || a.replyZone !== undefined) {
    const base = reply ?? invertTuple(orig);
    delete base.zone;
    reply = { ...base, ...(a.replyZone !== undefined ? { zone: a.replyZone } : {}) };
    if (a.origZone !== undefined) orig = { ...orig, zone: a.origZone };
  }
  const spec: CreateSpec = { orig, timeout: a.timeout ?? 0 };
  if (reply) spec.reply = reply;
  if (a.status !== undefined) spec.status = a.status;
  if (a.mark) spec.mark = a.mark.value;
  if (a.zone !== undefined) spec.zone = a.zone;
  if (a.state !== undefined) spec.tcpState = a.state;
  if (a.sctpState !== undefined) {
    spec.sctpState = a.sctpState;
    // 1.4.7 sets htonl(atoi()) and the library htonl()s again: the kernel
    // gets the tag's bytes in host (little-endian) order.
    spec.sctpVtagOrig = bswap32(a.vtagOrig ?? 0);
    spec.sctpVtagReply = bswap32(a.vtagReply ?? 0);
  }
  if (a.dccpState !== undefined) spec.dccpState = a.dccpState;
  if (a.dccpRole !== undefined) spec.dccpRole = a.dccpRole === 'client' ? 0 : 1;
  if (a.labelModify !== undefined) spec.labels = a.labelModify;
  for (const [key, nat] of [
    ['natSrc', a.natSrc],
    ['natDst', a.natDst],
  ] as const) {
    if (!nat) continue;
    spec[key] = {
      minIp: nat.ip,
      maxIp: nat.ip,
      ...(nat.port !== undefined ? { minPort: nat.port, maxPort: nat.port } : {}),
    };
  }
  return spec;
}

function checkSupported(a: CompatArgs): void {
  if (a.table === 'expect' && !['E', 'L', 'F', 'C', 'G', 'D', 'I'].includes(a.command)) {
    throw new NotSupported(`-${a.command} of the expect table is not supported yet`);
  }
  for (const o of NOT_YET) {
    if (a.options.has(o)) throw new NotSupported(`--${o} is not supported yet`);
  }
  // Every -o is carried out, or (as in 1.4.7) has no effect where a command
  // ignores it (-o timestamp outside -E and the expect table, -o ktimestamp
  // with the expect table); -o xml,timestamp there adds <when>.
  if (a.table !== 'conntrack' && a.table !== 'expect' && a.command !== 'L') {
    throw new NotSupported(`the ${a.table} table is supported with -L only`);
  }
}

/** The text form's options; labels are named once the label map is loaded, except for -D (as 1.4.7). */
function formatOptions(a: CompatArgs): FormatOptions {
  return {
    extended: a.output.has('extended'),
    id: a.output.has('id'),
    ktimestamp: a.output.has('ktimestamp'),
    ...(a.labelMap && a.command !== 'D' ? { labelNames: a.labelMap.names } : {}),
  };
}

/** Where conntrack-tools (libnetfilter_conntrack) reads label names. */
export const CONNLABEL_CONF = '/etc/xtables/connlabel.conf';

/** labelmap_init(): reads connlabel.conf, or says why not as perror() does. */
function labelMapLoader(io: CliIo): () => LabelMap | undefined {
  return () => {
    try {
      return parseLabelMap(readFileSync(CONNLABEL_CONF, 'utf8'));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const reason =
        code === 'ENOENT'
          ? 'No such file or directory'
          : code === 'EACCES'
            ? 'Permission denied'
            : code === 'EISDIR'
              ? 'Is a directory'
              : String(code);
      io.stderr(`nfct_labelmap_new: ${reason}\n`);
      return undefined;
    }
  };
}

class Output {
  private chunk = '';
  /** -o xml: whether the XML header went out (-L and -G print it before the first entry). */
  xmlStarted = false;
  constructor(
    private readonly io: CliIo,
    private readonly a: CompatArgs,
    private readonly xmlHeader = false,
  ) {}
  /** `savePrefix`: the command a `-o save` line starts with (-A, or -D for what -D deleted). */
  flow(f: Flow, savePrefix = '-A'): void {
    const xml = this.a.output.has('xml') && !this.a.json;
    if (xml && this.xmlHeader && !this.xmlStarted) {
      this.chunk += XML_HEADER;
      this.xmlStarted = true;
    }
    this.chunk += this.a.json
      ? flowJsonLine(f)
      : (this.a.output.has('save')
          ? formatCompatSave(f, savePrefix)
          : xml
            ? formatCompatXml(f, undefined, this.a.output.has('ktimestamp'))
            : formatCompatFlow(f, formatOptions(this.a))) + '\n';
    if (this.chunk.length >= 65536) this.flush();
  }
  /** -L: the closing tag, when the header went out. */
  endXml(): void {
    if (this.xmlStarted) this.chunk += '</conntrack>\n';
  }
  flush(): void {
    if (this.chunk) this.io.stdout(this.chunk);
    this.chunk = '';
  }
}

/** `-L|-F|-C|-G|-D expect`. */
async function executeExpect(a: CompatArgs, io: CliIo, ct: Conntrack): Promise<number> {
  /** -o xml,timestamp: libnetfilter_conntrack's <when> block. */
  const when = a.output.has('timestamp');
  switch (a.command) {
    case 'L': {
      // conntrack-tools dumps one family: IPv4 unless -f says otherwise.
      const list = await ct.expectations.listAll({ family: a.family ?? 'ipv4' });
      const xml = a.output.has('xml') && !a.json;
      if (xml && list.length) io.stdout(XML_EXPECT_HEADER);
      // dump_exp_cb(): -o timestamp puts the wall clock before each line.
      const stamp = () => (a.output.has('timestamp') ? expectClockPrefix() : '');
      io.stdout(
        list
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
      if (xml && list.length) io.stdout('</expect>\n');
      io.stderr(`${COMPAT_PREFIX}${list.length} expectations have been shown.\n`);
      return 0;
    }
    case 'F':
      await ct.expectations.flush();
      io.stderr(`${COMPAT_PREFIX}expectation table has been emptied.\n`);
      return 0;
    case 'C': {
      const list = await ct.expectations.listAll();
      io.stdout(
        a.json ? JSON.stringify({ entries: String(list.length) }) + '\n' : `${list.length}\n`,
      );
      return 0;
    }
    case 'I': {
      // EXP_CREATE: the master from -s/-d/-p and its ports, the expected tuple
      // from --tuple-*, the mask from --mask-* (no summary, exit 0). 1.4.7
      // sets the expected tuple's protocol from the port's byte (a bug):
      // here it is the -p protocol (docs/conntrack-cli.md).
      const proto = a.proto!;
      const master = completeTuple(a.orig, 'src');
      const tuple = { ...a.expTuple, proto } as Tuple;
      const mask: Partial<Tuple> = { ...a.expMask };
      if (a.srcMask !== undefined) mask.src = a.srcMask;
      if (a.dstMask !== undefined) mask.dst = a.dstMask;
      await ct.expectations.create({ master, tuple, mask, timeout: a.timeout ?? 0 });
      return 0;
    }
    case 'G':
    case 'D': {
      const tuple = completeTuple(a.orig, 'src');
      if (tuple.proto === IPPROTO.icmp || tuple.proto === IPPROTO.icmpv6) {
        // libnetfilter_conntrack always sends type, code and id (0 unless given).
        tuple.icmpType ??= 0;
        tuple.icmpCode ??= 0;
        tuple.icmpId ??= 0;
      }
      const key = { tuple, ...(a.family ? { family: a.family } : {}) };
      if (a.command === 'G') {
        const e = await ct.expectations.get(key);
        io.stdout(
          a.json
            ? expectationJsonLine(e)
            : a.output.has('xml')
              ? XML_EXPECT_HEADER + formatCompatExpectationXml(e, undefined, when) + '\n'
              : formatCompatExpectation(e) + '\n',
        );
        return 0;
      }
      await ct.expectations.delete(key);
      // 1.4.7 counts nothing for -D expect: "0 expectations have been shown.", exit 1, even on success.
      io.stderr(`${COMPAT_PREFIX}0 expectations have been shown.\n`);
      return 1;
    }
    default:
      return 0;
  }
}

const ALL_LABELS = new Uint8Array(16).fill(0xff);

/**
 * copy_label() of -U: --label-add sets bits, --label-del clears the named
 * ones (all without names; nothing when the entry has no labels). The new
 * bit list, or undefined when 1.4.7 finds the entry unchanged: it sends a
 * labels mask with --label-add and a named --label-del, which always makes
 * the entry differ, so those count as updates even when no bit changes.
 */
function newLabels(a: CompatArgs, flow: Flow): number[] | undefined {
  const add = a.options.has('label-add');
  if (!add && !a.options.has('label-del')) return undefined;
  if (!add && !flow.labels) return undefined;
  const old = flow.labels ? labelBits(flow.labels) : [];
  const next = new Set(old);
  if (add) for (const b of a.labelModify ?? []) next.add(b);
  else if (a.labelModify === undefined) {
    if (old.length === 0) return undefined;
    next.clear();
  } else for (const b of a.labelModify) next.delete(b);
  return [...next].sort((x, y) => x - y);
}

/**
 * Runs one command. In a -R batch (`batch`), as 1.4.7's do_command_ct()
 * without print_stats(): no "N flow entries ..." summaries, and -U / -D
 * that match nothing succeed; -F still reports.
 */
async function execute(
  a: CompatArgs,
  io: CliIo,
  seams: ConntrackRunOptions,
  batch = false,
): Promise<number> {
  const summary = (text: string) => {
    if (!batch) io.stderr(`${COMPAT_PREFIX}${text}\n`);
  };
  const ct = openConntrack(a.netns, seams);
  const out = new Output(io, a, a.command === 'L' || a.command === 'G');
  try {
    if (a.table === 'expect') return await executeExpect(a, io, ct);
    switch (a.command) {
      case 'L': {
        if (a.table === 'conntrack') filterInit(a);
        const filter = listFilter(a);
        if (a.table === 'dying' || a.table === 'unconfirmed') filter.table = a.table;
        if (a.options.has('zero')) filter.zeroCounters = true;
        const n = await ct.forEach((f) => out.flow(f), filter);
        out.endXml();
        out.flush();
        summary(`${n} flow entries have been shown.`);
        return 0;
      }
      case 'G': {
        const key =
          a.orig.src !== undefined && a.orig.dst !== undefined
            ? { orig: completeTuple(a.orig, 'src') }
            : { reply: completeTuple({ ...a.reply, proto: a.proto! }, 'reply-src') };
        const flow = await ct.get({
          ...key,
          ...(a.family ? { family: a.family } : {}),
          ...(a.id !== undefined ? { id: a.id } : {}),
        });
        // mnl_nfct_dump_cb() compares what the kernel sent with every option
        // given (-i, -l, the tuples): no match, nothing shown, exit 1.
        if (!flowMatcher(listFilter(a))(flow)) {
          summary('0 flow entries have been shown.');
          return batch ? 0 : 1;
        }
        out.flow(flow);
        out.flush();
        summary('1 flow entries have been shown.');
        return 0;
      }
      case 'I':
      case 'A': {
        const spec = createSpec(a);
        if (a.command === 'I') {
          await ct.create(spec);
          summary('1 flow entries have been created.');
          return 0;
        }
        try {
          await ct.create(spec);
          summary('1 flow entries have been added.');
        } catch (error) {
          // 1.4.7 leaves an existing entry as it is (timeout, status, mark).
          if (!(error instanceof NetlinkError && error.code === 'EEXIST')) throw error;
          summary('0 flow entries have been added.');
        }
        return 0;
      }
      case 'U': {
        filterInit(a);
        const victims = await ct.listAll(listFilter(a, true));
        let n = 0;
        for (const flow of victims) {
          const mark =
            a.mark === undefined
              ? undefined
              : (((flow.mark ?? 0) & ~a.mark.mask) ^ a.mark.value) >>> 0;
          const status =
            a.status === undefined
              ? undefined
              : (flow.status | a.status | STATUS_BITS.CONFIRMED) >>> 0;
          const labels = newLabels(a, flow);
          const changed =
            labels !== undefined ||
            (mark !== undefined && mark !== (flow.mark ?? 0)) ||
            (a.timeout !== undefined && a.timeout !== flow.timeout) ||
            (status !== undefined && status !== flow.status);
          if (!changed) continue;
          const key = {
            orig: flow.orig,
            family: flow.family,
            ...(flow.zone !== undefined ? { zone: flow.zone } : {}),
          };
          try {
            await ct.update({
              ...key,
              ...(mark !== undefined ? { mark } : {}),
              ...(a.timeout !== undefined ? { timeout: a.timeout } : {}),
              ...(status !== undefined ? { status } : {}),
              ...(labels !== undefined ? { labels, labelsMask: ALL_LABELS } : {}),
            });
            out.flow(await ct.get(key));
            n++;
          } catch (error) {
            // An entry that expired meanwhile is skipped, as conntrack-tools does.
            if (!(error instanceof NetlinkError && error.code === 'ENOENT')) throw error;
          }
        }
        out.flush();
        summary(`${n} flow entries have been updated.`);
        return n === 0 && !batch ? 1 : 0;
      }
      case 'D': {
        filterInit(a);
        const victims = await ct.listAll(listFilter(a));
        let n = 0;
        for (const flow of victims) {
          try {
            await ct.delete({
              orig: flow.orig,
              family: flow.family,
              ...(flow.zone !== undefined ? { zone: flow.zone } : {}),
              ...(flow.id !== undefined ? { id: flow.id } : {}),
            });
            out.flow(flow, '-D');
            n++;
          } catch (error) {
            if (!(error instanceof NetlinkError && error.code === 'ENOENT')) throw error;
          }
        }
        out.flush();
        summary(`${n} flow entries have been deleted.`);
        return n === 0 && !batch ? 1 : 0;
      }
      case 'F':
        // conntrack-tools 1.4.7 empties the whole table, whatever -f says.
        await ct.flush();
        io.stderr(`${COMPAT_PREFIX}connection tracking table has been emptied.\n`);
        return 0;
      case 'C': {
        const g = await ct.globalStats();
        io.stdout(
          a.json
            ? JSON.stringify({
                entries: String(g.entries),
                ...(g.maxEntries !== undefined ? { maxEntries: String(g.maxEntries) } : {}),
              }) + '\n'
            : `${g.entries}\n`,
        );
        return 0;
      }
      case 'S': {
        const rows = await ct.stats();
        if (a.json) {
          for (const r of rows) {
            io.stdout(
              JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' ? String(v) : v)) + '\n',
            );
          }
        } else io.stdout(formatCompatStats(rows));
        return 0;
      }
      default:
        return 0;
    }
  } catch (error) {
    if (error instanceof NetlinkError) {
      throw new OperationFailed(describe(error, a.command, a.table === 'expect'));
    }
    throw error;
  } finally {
    ct.close();
  }
}

/** Runs a conntrack-tools style command line; resolves with the exit status. */
export async function runConntrackCompat(
  argv: readonly string[],
  io: CliIo,
  seams: ConntrackRunOptions = {},
): Promise<number> {
  try {
    const load = loadFileRequest(argv);
    if (load) return await runLoadFile(load.file, load.prefix, io, seams);
    const a = parseCompatArgs(argv, {
      loadLabelMap: labelMapLoader(io),
      warn: (text) => io.stderr(text),
    });
    if (a.command === 'h') {
      io.stdout(COMPAT_USAGE);
      return 0;
    }
    if (a.command === 'V') {
      io.stdout('conntrack v1.4.7 (conntrack-tools)\n');
      return 0;
    }
    checkSupported(a);
    if (a.command === 'E') return await runCompatEvents(a, io);
    if (a.proto === IPPROTO.icmp && a.family === 'ipv6' && a.command !== 'L') {
      throw new CompatUsageError('mismatched address family');
    }
    return await execute(a, io, seams);
  } catch (error) {
    if (error instanceof CompatUsageError) {
      io.stderr(`${COMPAT_PREFIX}${error.message}\n${error.exitStatus === 2 ? TRY_HELP : ''}`);
      return error.exitStatus;
    }
    if (error instanceof OperationFailed) {
      io.stderr(`${COMPAT_PREFIX}Operation failed: ${error.message}\n`);
      return 1;
    }
    if (error instanceof NotSupported) {
      io.stderr(`portcullis conntrack: ${error.message} (docs/conntrack-cli.md)\n`);
      return 1;
    }
    if (error instanceof ConntrackArgumentError) {
      io.stderr(`${COMPAT_PREFIX}${error.message}\n${TRY_HELP}`);
      return 2;
    }
    throw error;
  }
}

/** ct_save_snprintf() names the event by the command that would replay it. */
const SAVE_EVENT_PREFIX = { new: '-A', update: '-U', destroy: '-D' } as const;

const EVENT_TAGS = { new: '    [NEW] ', update: ' [UPDATE] ', destroy: '[DESTROY] ' } as const;

/** `[%-.8ld.%-.6ld]\t`: the wall clock when the event was read (-o timestamp). */
function wallClockPrefix(): string {
  const ms = Date.now();
  const sec = String(Math.floor(ms / 1000)).padStart(8, '0');
  return `[${sec}.${String((ms % 1000) * 1000).padStart(6, '0')}]\t`;
}

/** `[%-8ld.%-6ld]\t`: the expectation callbacks' clock, padded with blanks on the right. */
function expectClockPrefix(): string {
  const ms = Date.now();
  const sec = String(Math.floor(ms / 1000)).padEnd(8, ' ');
  return `[${sec}.${String((ms % 1000) * 1000).padEnd(6, ' ')}]\t`;
}

/**
 * `-E [expect]`: follows events until SIGINT or SIGTERM, then prints the
 * summary conntrack-tools prints and exits 0. Each line is the entry's text
 * form after `[NEW]`/`[UPDATE]`/`[DESTROY]`, with ` [USERSPACE] portid=N`
 * when a netlink request caused the event (the requester's port id).
 */
async function runCompatEvents(a: CompatArgs, io: CliIo): Promise<number> {
  const kinds = a.eventMask ? [...a.eventMask] : (['new', 'update', 'destroy'] as const);
  const expect = a.table === 'expect';
  const events = ConntrackEvents.open({
    events: expect ? [] : kinds,
    ...(expect ? { expectations: kinds } : {}),
    ...(a.netns !== undefined ? { netns: a.netns } : {}),
    ...(a.bufferSize !== undefined ? { rcvbuf: Math.max(a.bufferSize, 1) } : {}),
  });
  if (a.bufferSize !== undefined) {
    // The kernel doubles SO_RCVBUF(FORCE) and conntrack-tools reports what it reads back.
    io.stderr(`NOTICE: Netlink socket buffer size has been set to ${a.bufferSize * 2} bytes.\n`);
  }
  if (!expect) {
    try {
      filterInit(a);
    } catch (error) {
      events.close();
      throw error;
    }
  }
  const matches = flowMatcher(listFilter(a));
  const format = formatOptions(a);
  let shown = 0;
  let xmlStarted = false;
  /** -o xml,timestamp: the <when> block instead of the clock prefix. */
  const when = a.output.has('timestamp');
  /** The XML header before the first event (-o xml). */
  const xmlStart = (): string => {
    if (xmlStarted) return '';
    xmlStarted = true;
    return expect ? XML_EXPECT_HEADER : XML_HEADER;
  };
  const onMessage = (msg: NetlinkMessage): void => {
    let line: string;
    if (expect) {
      const ev = decodeExpectationEvent(msg);
      if (!ev) return;
      if (a.family !== undefined && ev.expectation.family !== a.family) return;
      line = a.json
        ? expectationJsonLine(ev.expectation, ev.type).trimEnd()
        : a.output.has('xml')
          ? xmlStart() + formatCompatExpectationXml(ev.expectation, ev.type, when)
          : EVENT_TAGS[ev.type] + formatCompatExpectation(ev.expectation);
    } else {
      const type = eventTypeOf(msg);
      if (type === undefined) return;
      const flow = decodeFlow(msg);
      if (!matches(flow)) return;
      // conntrack-tools' filter needs the attribute: destroy events carry no mark when it is 0.
      if (a.mark !== undefined && flow.mark === undefined) return;
      line = a.json
        ? JSON.stringify({ event: type, ...flowToJson(flow) }, (_k, v: unknown) =>
            typeof v === 'bigint' ? v.toString() : v,
          )
        : a.output.has('save')
          ? formatCompatSave(flow, SAVE_EVENT_PREFIX[type])
          : a.output.has('xml')
            ? xmlStart() + formatCompatXml(flow, type, a.output.has('ktimestamp'), undefined, when)
            : EVENT_TAGS[type] + formatCompatFlow(flow, format);
    }
    if (!a.json) {
      // ct_save_snprintf() lines go without the clock, as in 1.4.7 (-o save,timestamp is refused anyway).
      if (a.output.has('timestamp') && !a.output.has('save') && !a.output.has('xml')) {
        line = (expect ? expectClockPrefix() : wallClockPrefix()) + line;
      }
      // conntrack-tools does this for conntrack events only.
      if (msg.portId !== 0 && !expect) line += ` [USERSPACE] portid=${msg.portId}`;
    }
    shown++;
    io.stdout(line + '\n');
  };
  events.connection.onNotification((msg) => {
    try {
      onMessage(msg);
    } catch (error) {
      io.stderr(
        `portcullis conntrack: ${error instanceof Error ? error.message : String(error)}\n`,
      );
    }
  });
  events.onLost(() => {
    io.stderr('WARNING: We have hit ENOBUFS! We are losing events.\n');
  });
  return new Promise<number>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      events.close();
      if (xmlStarted) io.stdout(expect ? '</expect>\n' : '</conntrack>\n');
      io.stderr(
        `${COMPAT_PREFIX}${shown} ${expect ? 'expectation' : 'flow'} events have been shown.\n`,
      );
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

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
async function runLoadFile(
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
