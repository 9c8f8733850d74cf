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
import { IPPROTO, type SctpState, type TcpState } from '../conntrack/constants.js';
import { labelBits } from '../conntrack/decode.js';
import { invertTuple } from '../conntrack/encode.js';
import type { Family, Flow, Tuple } from '../conntrack/types.js';
import { CliUsageError } from './command.js';
import {
  REPLY,
  SUBCOMMANDS,
  interpret,
  type CommonOptions,
  type Interpreted,
  type OptionName,
  type Subcommand,
} from './conntrack-options.js';
import { PORT_PROTOS, isIcmpProto } from './conntrack-values.js';

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
