/**
 * Argument parsing for `portcullis conntrack <subcommand>`: conntrack-tools
 * style options turned into the library's filters, keys and specs. Pure (no
 * kernel access), so every rule here is unit-tested; every mistake is a
 * CliUsageError (exit status 2).
 */
import type {
  CreateSpec,
  FlowFilter,
  FlowKey,
  ListOptions,
  UpdateSpec,
} from '../conntrack/client.js';
import { IPPROTO, type SctpState, type StatusFlag, type TcpState } from '../conntrack/constants.js';
import { labelBits } from '../conntrack/decode.js';
import { invertTuple } from '../conntrack/encode.js';
import type { Family, Flow, Tuple } from '../conntrack/types.js';
import { CliUsageError, optionTokens } from './command.js';
import {
  PORT_PROTOS,
  isIcmpProto,
  parseAddress,
  parseFamily,
  parseLabels,
  parseMark,
  parseProto,
  parseState,
  parseStatus,
  parseUnsigned,
  protoName,
} from './conntrack-values.js';

/** Options every conntrack subcommand understands. */
export interface CommonOptions {
  netns?: string;
  json: boolean;
}

export type ConntrackCommandArgs =
  | { sub: 'list'; common: CommonOptions; filter: ListOptions }
  | { sub: 'get'; common: CommonOptions; key: FlowKey }
  | { sub: 'create'; common: CommonOptions; spec: CreateSpec }
  | { sub: 'update'; common: CommonOptions; spec: UpdateSpec }
  | { sub: 'delete'; common: CommonOptions; key: FlowKey }
  | { sub: 'delete-matching'; common: CommonOptions; filter: FlowFilter }
  | {
      sub: 'flush';
      common: CommonOptions;
      options: { family?: Family; mark?: number; markMask?: number };
    }
  | { sub: 'stats' | 'count'; common: CommonOptions };

export const SUBCOMMANDS = [
  'list',
  'get',
  'create',
  'update',
  'delete',
  'flush',
  'stats',
  'count',
] as const;
export type Subcommand = (typeof SUBCOMMANDS)[number];

// ---------------------------------------------------------------------------
// Option table

type OptionName =
  | 'netns'
  | 'json'
  | 'family'
  | 'proto'
  | 'src'
  | 'dst'
  | 'reply-src'
  | 'reply-dst'
  | 'sport'
  | 'dport'
  | 'reply-sport'
  | 'reply-dport'
  | 'icmp-type'
  | 'icmp-code'
  | 'icmp-id'
  | 'mark'
  | 'zone'
  | 'status'
  | 'state'
  | 'timeout'
  | 'label'
  | 'label-add'
  | 'label-del'
  | 'all-matching';

interface OptionDef {
  /** The canonical option this spelling stands for. */
  canonical: OptionName;
  type: 'string' | 'boolean';
  short?: string;
  /** May be given more than once (values are combined). */
  repeatable?: boolean;
}

/** Every accepted spelling; aliases are the conntrack-tools long names. */
const SPELLINGS: Record<string, OptionDef> = {
  netns: { canonical: 'netns', type: 'string' },
  json: { canonical: 'json', type: 'boolean' },
  family: { canonical: 'family', type: 'string', short: 'f' },
  proto: { canonical: 'proto', type: 'string', short: 'p' },
  src: { canonical: 'src', type: 'string', short: 's' },
  'orig-src': { canonical: 'src', type: 'string' },
  dst: { canonical: 'dst', type: 'string', short: 'd' },
  'orig-dst': { canonical: 'dst', type: 'string' },
  'reply-src': { canonical: 'reply-src', type: 'string', short: 'r' },
  'reply-dst': { canonical: 'reply-dst', type: 'string', short: 'q' },
  sport: { canonical: 'sport', type: 'string' },
  'orig-port-src': { canonical: 'sport', type: 'string' },
  dport: { canonical: 'dport', type: 'string' },
  'orig-port-dst': { canonical: 'dport', type: 'string' },
  'reply-sport': { canonical: 'reply-sport', type: 'string' },
  'reply-port-src': { canonical: 'reply-sport', type: 'string' },
  'reply-dport': { canonical: 'reply-dport', type: 'string' },
  'reply-port-dst': { canonical: 'reply-dport', type: 'string' },
  'icmp-type': { canonical: 'icmp-type', type: 'string' },
  'icmpv6-type': { canonical: 'icmp-type', type: 'string' },
  'icmp-code': { canonical: 'icmp-code', type: 'string' },
  'icmpv6-code': { canonical: 'icmp-code', type: 'string' },
  'icmp-id': { canonical: 'icmp-id', type: 'string' },
  'icmpv6-id': { canonical: 'icmp-id', type: 'string' },
  mark: { canonical: 'mark', type: 'string', short: 'm' },
  zone: { canonical: 'zone', type: 'string', short: 'w' },
  status: { canonical: 'status', type: 'string', short: 'u', repeatable: true },
  state: { canonical: 'state', type: 'string' },
  timeout: { canonical: 'timeout', type: 'string', short: 't' },
  label: { canonical: 'label', type: 'string', short: 'l', repeatable: true },
  'label-add': { canonical: 'label-add', type: 'string', repeatable: true },
  'label-del': { canonical: 'label-del', type: 'string', repeatable: true },
  'all-matching': { canonical: 'all-matching', type: 'boolean' },
};

const KEY: OptionName[] = [
  'family',
  'proto',
  'src',
  'dst',
  'sport',
  'dport',
  'icmp-type',
  'icmp-code',
  'icmp-id',
  'zone',
];
const REPLY: OptionName[] = ['reply-src', 'reply-dst', 'reply-sport', 'reply-dport'];
const FILTERS: OptionName[] = [...KEY, ...REPLY, 'mark', 'status', 'state', 'label'];

/** Which options each subcommand accepts (besides --netns and -h). */
const ALLOWED: Record<Subcommand, readonly OptionName[]> = {
  list: ['json', ...FILTERS],
  get: ['json', ...KEY],
  create: [...KEY, ...REPLY, 'timeout', 'mark', 'label', 'status', 'state'],
  update: [...KEY, 'timeout', 'mark', 'label', 'label-add', 'label-del', 'status', 'state'],
  delete: ['json', ...FILTERS, 'all-matching'],
  flush: ['family', 'mark'],
  stats: ['json'],
  count: ['json'],
};

/** Values by canonical option, in the order given; `flags` maps each to how it was spelled. */
interface RawOptions {
  values: Map<OptionName, string[]>;
  spelled: Map<OptionName, string>;
}

function tokenize(sub: Subcommand, argv: string[]): RawOptions {
  const tokens = optionTokens(argv, SPELLINGS);
  const values = new Map<OptionName, string[]>();
  const spelled = new Map<OptionName, string>();
  const allowed = ALLOWED[sub];
  for (const token of tokens) {
    const def = SPELLINGS[token.name]!;
    const name = def.canonical;
    if (name !== 'netns' && !allowed.includes(name)) {
      throw new CliUsageError(
        `option ${token.rawName} is not valid with 'conntrack ${sub}' (valid: ${describeAllowed(allowed)})`,
      );
    }
    const previous = values.get(name);
    if (previous && !def.repeatable) {
      throw new CliUsageError(`option ${token.rawName} given more than once`);
    }
    const value = token.value ?? '';
    if (def.type === 'string' && value.length === 0) {
      throw new CliUsageError(`option ${token.rawName} needs a value`);
    }
    values.set(name, [...(previous ?? []), value]);
    if (!spelled.has(name)) spelled.set(name, token.rawName);
  }
  return { values, spelled };
}

function describeAllowed(allowed: readonly OptionName[]): string {
  return ['--netns', ...allowed.map((o) => `--${o}`)].join(' ');
}

// ---------------------------------------------------------------------------
// Interpretation

/** What the options say, checked for consistency, before it is shaped for a subcommand. */
interface Interpreted {
  common: CommonOptions;
  family?: Family;
  proto?: number;
  orig: Partial<Tuple>;
  reply: Partial<Tuple>;
  mark?: { value: number; mask?: number };
  zone?: number;
  status?: StatusFlag[];
  state?: string;
  timeout?: number;
  label?: number[];
  labelAdd?: number[];
  labelDel?: number[];
  allMatching: boolean;
  has(name: OptionName): boolean;
  spelling(name: OptionName): string;
}

/** Reads the tokenized options: the first value of an option, and how the user spelled it. */
interface OptionReader {
  one(name: OptionName): string | undefined;
  spelling(name: OptionName): string;
}

function interpret(sub: Subcommand, argv: string[]): Interpreted {
  const { values, spelled } = tokenize(sub, argv);
  const read: OptionReader = {
    one: (name) => values.get(name)?.[0],
    spelling: (name) => spelled.get(name) ?? `--${name}`,
  };
  const { one, spelling } = read;
  const netns = one('netns');
  const common: CommonOptions = {
    json: values.has('json'),
    ...(netns !== undefined ? { netns } : {}),
  };
  const r: Interpreted = {
    common,
    orig: {},
    reply: {},
    allMatching: values.has('all-matching'),
    has: (name) => values.has(name),
    spelling,
  };

  const family = one('family');
  if (family !== undefined) r.family = parseFamily(family);
  const proto = one('proto');
  if (proto !== undefined) r.proto = parseProto(proto);
  interpretAddresses(r, read);
  interpretLayer4(r, read);

  const mark = one('mark');
  if (mark !== undefined) r.mark = parseMark(mark);
  const zone = one('zone');
  if (zone !== undefined) r.zone = parseUnsigned(zone, 65535, spelling('zone'));
  const status = values.get('status');
  if (status) r.status = parseStatus(status);
  const timeout = one('timeout');
  if (timeout !== undefined) r.timeout = parseUnsigned(timeout, 0xffffffff, spelling('timeout'));
  const label = values.get('label');
  if (label) r.label = parseLabels(label);
  const labelAdd = values.get('label-add');
  if (labelAdd) r.labelAdd = parseLabels(labelAdd);
  const labelDel = values.get('label-del');
  if (labelDel) r.labelDel = parseLabels(labelDel);

  const state = one('state');
  if (state !== undefined) {
    // Without -p, a state is a TCP state (and implies -p tcp).
    if (r.proto === undefined) {
      r.proto = IPPROTO.tcp;
      r.orig.proto = IPPROTO.tcp;
    }
    r.state = parseState(state, r.proto, sub === 'create' || sub === 'update');
  }
  if (netns !== undefined && netns.length === 0) throw new CliUsageError('--netns needs a name');
  return r;
}

/** Addresses: every one must be of the same family, and agree with -f and -p. */
function interpretAddresses(r: Interpreted, { one, spelling }: OptionReader): void {
  const addressOptions: [OptionName, 'orig' | 'reply', 'src' | 'dst'][] = [
    ['src', 'orig', 'src'],
    ['dst', 'orig', 'dst'],
    ['reply-src', 'reply', 'src'],
    ['reply-dst', 'reply', 'dst'],
  ];
  let addressFamily: { family: Family; option: string } | undefined;
  for (const [name, dir, field] of addressOptions) {
    const text = one(name);
    if (text === undefined) continue;
    const a = parseAddress(text, spelling(name));
    if (addressFamily && addressFamily.family !== a.family) {
      throw new CliUsageError(
        `address families differ: ${addressFamily.option} is ${addressFamily.family}, ${spelling(name)} is ${a.family}`,
      );
    }
    addressFamily ??= { family: a.family, option: spelling(name) };
    r[dir][field] = a.text;
  }
  if (addressFamily && r.family && addressFamily.family !== r.family) {
    throw new CliUsageError(
      `${addressFamily.option} is an ${addressFamily.family} address but the family is ${r.family}`,
    );
  }
  const effectiveFamily = r.family ?? addressFamily?.family;
  if (r.proto === IPPROTO.icmp && effectiveFamily === 'ipv6') {
    throw new CliUsageError('protocol icmp is IPv4 only; use -p icmpv6 with IPv6');
  }
  if (r.proto === IPPROTO.icmpv6 && effectiveFamily === 'ipv4') {
    throw new CliUsageError('protocol icmpv6 is IPv6 only; use -p icmp with IPv4');
  }
}

/** Layer 4 fields: ports need a protocol with ports, ICMP fields need ICMP. */
function interpretLayer4(r: Interpreted, { one, spelling }: OptionReader): void {
  const ports: [OptionName, 'orig' | 'reply', 'srcPort' | 'dstPort'][] = [
    ['sport', 'orig', 'srcPort'],
    ['dport', 'orig', 'dstPort'],
    ['reply-sport', 'reply', 'srcPort'],
    ['reply-dport', 'reply', 'dstPort'],
  ];
  for (const [name, dir, field] of ports) {
    const text = one(name);
    if (text === undefined) continue;
    if (r.proto === undefined || !PORT_PROTOS.includes(r.proto)) {
      throw new CliUsageError(
        `${spelling(name)} needs -p tcp, udp, udplite, sctp, dccp or gre` +
          (r.proto === undefined ? '' : ` (protocol is ${protoName(r.proto) ?? r.proto})`),
      );
    }
    r[dir][field] = parseUnsigned(text, 65535, spelling(name));
  }
  const icmp: [OptionName, 'icmpType' | 'icmpCode' | 'icmpId', number][] = [
    ['icmp-type', 'icmpType', 255],
    ['icmp-code', 'icmpCode', 255],
    ['icmp-id', 'icmpId', 65535],
  ];
  for (const [name, field, max] of icmp) {
    const text = one(name);
    if (text === undefined) continue;
    if (!isIcmpProto(r.proto)) {
      throw new CliUsageError(`${spelling(name)} needs -p icmp or -p icmpv6`);
    }
    r.orig[field] = parseUnsigned(text, max, spelling(name));
  }
  if (r.proto !== undefined) {
    r.orig.proto = r.proto;
    if (Object.keys(r.reply).some((k) => k === 'srcPort' || k === 'dstPort')) {
      r.reply.proto = r.proto;
    }
  }
}

function labelSetOf(flow: Flow): number[] {
  return flow.labels ? labelBits(flow.labels) : [];
}

/** The filter of list and delete --all-matching. */
function toFilter(r: Interpreted): ListOptions {
  const f: ListOptions = {};
  if (r.family) f.family = r.family;
  if (Object.keys(r.orig).length) f.orig = { ...r.orig };
  if (Object.keys(r.reply).length) {
    f.reply = { ...r.reply };
    // The kernel matches reply ports only together with the protocol number.
    if (r.proto !== undefined) f.reply.proto = r.proto;
  }
  if (r.mark) {
    f.mark = r.mark.value;
    if (r.mark.mask !== undefined) f.markMask = r.mark.mask;
  }
  if (r.status) f.status = r.status;
  if (r.zone !== undefined) f.zone = r.zone;
  const predicates: ((flow: Flow) => boolean)[] = [];
  if (r.state !== undefined) {
    const state = r.state;
    if (r.proto === IPPROTO.sctp) predicates.push((flow) => flow.sctp?.state === state);
    else if (r.proto === IPPROTO.dccp) predicates.push((flow) => flow.dccp?.state === state);
    else predicates.push((flow) => flow.tcp?.state === state);
  }
  if (r.label) {
    const wanted = r.label;
    predicates.push((flow) => {
      const have = labelSetOf(flow);
      return wanted.every((b) => have.includes(b));
    });
  }
  if (predicates.length === 1) f.where = predicates[0]!;
  else if (predicates.length > 1) f.where = (flow) => predicates.every((p) => p(flow));
  return f;
}

/** Checks that the original tuple identifies one entry: protocol, both
 * addresses, and both ports (or ICMP type, code and id). */
function requireKeyTuple(r: Interpreted, sub: string): Tuple {
  const missing: string[] = [];
  if (r.proto === undefined) missing.push('-p/--proto');
  if (r.orig.src === undefined) missing.push('-s/--src');
  if (r.orig.dst === undefined) missing.push('-d/--dst');
  if (r.proto !== undefined && PORT_PROTOS.includes(r.proto)) {
    if (r.orig.srcPort === undefined) missing.push('--sport');
    if (r.orig.dstPort === undefined) missing.push('--dport');
  }
  if (isIcmpProto(r.proto)) {
    if (r.orig.icmpType === undefined) missing.push('--icmp-type');
    if (r.orig.icmpCode === undefined) missing.push('--icmp-code');
    if (r.orig.icmpId === undefined) missing.push('--icmp-id');
  }
  if (missing.length) {
    throw new CliUsageError(
      `conntrack ${sub} needs the original tuple; missing ${missing.join(', ')}` +
        (sub === 'delete' ? ' (or use --all-matching to delete every entry a filter matches)' : ''),
    );
  }
  return { ...r.orig } as Tuple;
}

function toKey(r: Interpreted, sub: string): FlowKey {
  const key: FlowKey = { orig: requireKeyTuple(r, sub) };
  if (r.zone !== undefined) key.zone = r.zone;
  return key;
}

function rejectFilterOnly(r: Interpreted, sub: string): void {
  for (const name of [...REPLY, 'mark', 'status', 'state', 'label'] as OptionName[]) {
    if (r.has(name)) {
      throw new CliUsageError(
        `${r.spelling(name)} selects entries by filter: use 'conntrack ${sub} --all-matching' for that`,
      );
    }
  }
}

function buildCreate(r: Interpreted): CreateSpec {
  const orig = requireKeyTuple(r, 'create');
  if (r.timeout === undefined)
    throw new CliUsageError('conntrack create needs -t/--timeout SECONDS');
  let reply: Tuple | undefined;
  if (Object.keys(r.reply).length) {
    reply = { ...invertTuple(orig), ...r.reply };
  }
  const spec: CreateSpec = { orig, timeout: r.timeout };
  if (reply) spec.reply = reply;
  if (r.mark) {
    if (r.mark.mask !== undefined) {
      throw new CliUsageError('conntrack create takes --mark VALUE without a mask');
    }
    spec.mark = r.mark.value;
  }
  if (r.label) spec.labels = r.label;
  if (r.zone !== undefined) spec.zone = r.zone;
  if (r.status) spec.status = r.status;
  if (r.state !== undefined) {
    if (r.proto === IPPROTO.sctp) spec.sctpState = r.state as SctpState;
    else spec.tcpState = r.state as TcpState;
  }
  return spec;
}

function buildUpdate(r: Interpreted): UpdateSpec {
  const spec: UpdateSpec = toKey(r, 'update');
  if (r.timeout !== undefined) spec.timeout = r.timeout;
  if (r.mark) {
    spec.mark = r.mark.value;
    if (r.mark.mask !== undefined) spec.markMask = r.mark.mask;
  }
  if (r.label && (r.labelAdd || r.labelDel)) {
    throw new CliUsageError(
      '--label sets every label; it cannot be combined with --label-add/--label-del',
    );
  }
  if (r.label) spec.labels = r.label;
  if (r.labelAdd || r.labelDel) {
    const add = r.labelAdd ?? [];
    const del = r.labelDel ?? [];
    const both = add.filter((b) => del.includes(b));
    if (both.length) throw new CliUsageError(`label ${both[0]} is both added and deleted`);
    // (old & ~mask) ^ labels: the mask covers every touched bit, labels only the added ones.
    spec.labels = add;
    spec.labelsMask = [...add, ...del];
  }
  if (r.status) spec.status = r.status;
  if (r.state !== undefined) {
    if (r.proto !== IPPROTO.tcp)
      throw new CliUsageError('conntrack update can set --state for tcp only');
    spec.tcpState = r.state as TcpState;
  }
  const changes = [
    'timeout',
    'mark',
    'label',
    'label-add',
    'label-del',
    'status',
    'state',
  ] as const;
  if (!changes.some((c) => r.has(c))) {
    throw new CliUsageError(
      'conntrack update needs something to change: --mark, --label, --label-add, --label-del, --timeout, --status or --state',
    );
  }
  return spec;
}

/** Parses the arguments after `conntrack <sub>`. */
export function parseConntrackArgs(sub: string, argv: string[]): ConntrackCommandArgs {
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new CliUsageError(`unknown conntrack subcommand '${sub}'`);
  }
  const s = sub as Subcommand;
  const r = interpret(s, argv);
  switch (s) {
    case 'list':
      return { sub: 'list', common: r.common, filter: toFilter(r) };
    case 'get':
      return { sub: 'get', common: r.common, key: withFamily(toKey(r, 'get'), r) };
    case 'create':
      return { sub: 'create', common: r.common, spec: buildCreate(r) };
    case 'update':
      return { sub: 'update', common: r.common, spec: withFamily(buildUpdate(r), r) };
    case 'delete': {
      if (r.allMatching) {
        const filter = toFilter(r);
        const { family: _family, ...rest } = filter;
        if (Object.keys(rest).length === 0) {
          throw new CliUsageError(
            "conntrack delete --all-matching needs at least one filter (use 'conntrack flush' to empty the table)",
          );
        }
        return { sub: 'delete-matching', common: r.common, filter };
      }
      rejectFilterOnly(r, 'delete');
      return { sub: 'delete', common: r.common, key: withFamily(toKey(r, 'delete'), r) };
    }
    case 'flush': {
      const options: { family?: Family; mark?: number; markMask?: number } = {};
      if (r.family) options.family = r.family;
      if (r.mark) {
        options.mark = r.mark.value;
        if (r.mark.mask !== undefined) options.markMask = r.mark.mask;
      }
      return { sub: 'flush', common: r.common, options };
    }
    case 'stats':
    case 'count':
      return { sub: s, common: r.common };
  }
}

function withFamily<T extends FlowKey>(key: T, r: Interpreted): T {
  if (r.family) key.family = r.family;
  return key;
}
