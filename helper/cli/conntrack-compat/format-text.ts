/**
 * conntrack-tools' (libnetfilter_conntrack's) text form of an entry, for the
 * default output and `-o extended` / `-o id`: byte for byte what
 * `conntrack -L` prints; and of an expectation, the `-S` statistics, and the
 * clocks `-o timestamp` puts before a line.
 */
import { IPPROTO, STATUS_BITS } from '../../conntrack/constants.js';
import { labelBits } from '../../conntrack/decode.js';
import type { Expectation } from '../../conntrack/expect-decode.js';
import type { CpuStats } from '../../conntrack/stats.js';
import type { Flow, Tuple } from '../../conntrack/types.js';
import { L4_NAMES, PORT_PROTOS } from './protocol-names.js';

export interface FormatOptions {
  extended: boolean;
  id: boolean;
  /** With a label map loaded: ` labels=a,b` at the end (bits without a name are left out). */
  labelNames?: ReadonlyMap<number, string>;
  /** -o ktimestamp: `[start=...] [stop=...]` (ctime() form, local time). */
  ktimestamp?: boolean;
  /** The clock for `delta-time=` of live entries (seconds); now by default. */
  nowSeconds?: number;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** ctime() without its newline: `Wed Jun 30 21:49:08 1993`, local time. */
export function ctime(seconds: number): string {
  const d = new Date(seconds * 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${d.getFullYear()}`
  );
}

const NS_PER_S = 1_000_000_000n;

function tuple(t: Tuple, zoneName: string): string {
  let out = `src=${t.src} dst=${t.dst} `;
  if (PORT_PROTOS.has(t.proto)) out += `sport=${t.srcPort ?? 0} dport=${t.dstPort ?? 0} `;
  else if (t.proto === IPPROTO.icmp || t.proto === IPPROTO.icmpv6) {
    out += `type=${t.icmpType ?? 0} code=${t.icmpCode ?? 0} id=${t.icmpId ?? 0} `;
  } else if (t.proto === IPPROTO.gre) {
    out += `srckey=0x${(t.srcPort ?? 0).toString(16)} dstkey=0x${(t.dstPort ?? 0).toString(16)} `;
  }
  if (t.zone !== undefined) out += `${zoneName}=${t.zone} `;
  return out;
}

/** One line, without the newline, as `conntrack -L [-o extended,id]` prints it. */
export function formatCompatFlow(f: Flow, o: FormatOptions): string {
  let out = '';
  if (o.extended) {
    out += `${f.family.padEnd(8)} ${f.family === 'ipv4' ? 2 : 10} `;
  }
  const proto = f.orig.proto;
  out += `${(L4_NAMES[proto] ?? 'unknown').padEnd(8)} ${proto} `;
  if (f.timeout !== undefined) out += `${f.timeout} `;
  const state = f.tcp?.state ?? f.sctp?.state ?? f.dccp?.state;
  if (state !== undefined) out += `${state} `;
  out += tuple(f.orig, 'zone-orig');
  if (f.countersOrig) {
    out += `packets=${f.countersOrig.packets} bytes=${f.countersOrig.bytes} `;
  }
  if (!(f.status & STATUS_BITS.SEEN_REPLY)) out += '[UNREPLIED] ';
  out += tuple(f.reply, 'zone-reply');
  if (f.countersReply) {
    out += `packets=${f.countersReply.packets} bytes=${f.countersReply.bytes} `;
  }
  if (f.status & STATUS_BITS.ASSURED) out += '[ASSURED] ';
  if (f.status & STATUS_BITS.OFFLOAD) out += '[OFFLOAD] ';
  if (f.status & STATUS_BITS.HW_OFFLOAD) out += '[HW_OFFLOAD] ';
  if (f.mark !== undefined) out += `mark=${f.mark} `;
  if (f.secmark !== undefined && f.secmark !== 0) out += `secmark=${f.secmark} `;
  if (f.secctx !== undefined) out += `secctx=${f.secctx} `;
  if (f.zone !== undefined) out += `zone=${f.zone} `;
  const start = f.timestampStart;
  const stop = f.timestampStop;
  if (start !== undefined) {
    // __snprintf_timestamp_delta(): up to the stop, or up to now.
    const end =
      stop !== undefined && stop !== 0n
        ? stop / NS_PER_S
        : BigInt(o.nowSeconds ?? Math.floor(Date.now() / 1000));
    out += `delta-time=${end - start / NS_PER_S} `;
  }
  if (o.ktimestamp) {
    if (start !== undefined) out += `[start=${ctime(Number(start / NS_PER_S))}] `;
    if (stop !== undefined) out += `[stop=${ctime(Number(stop / NS_PER_S))}] `;
  }
  if (f.helper !== undefined) out += `helper=${f.helper.name} `;
  if (f.use !== undefined) out += `use=${f.use} `;
  if (o.id && f.id !== undefined) out += `id=${f.id} `;
  out = out.trimEnd();
  if (o.labelNames && f.labels) {
    const names = labelBits(f.labels)
      .map((b) => o.labelNames!.get(b))
      .filter((n): n is string => n !== undefined && n !== '');
    if (names.length) out += ` labels=${names.join(',')}`;
  }
  return out;
}

/** `conntrack -S`: one line per CPU. */
export function formatCompatStats(rows: readonly CpuStats[]): string {
  const fields: [keyof CpuStats, string][] = [
    ['found', 'found'],
    ['invalid', 'invalid'],
    ['insert', 'insert'],
    ['insertFailed', 'insert_failed'],
    ['drop', 'drop'],
    ['earlyDrop', 'early_drop'],
    ['error', 'error'],
    ['searchRestart', 'search_restart'],
    ['clashResolve', 'clash_resolve'],
    ['chainTooLong', 'chaintoolong'],
  ];
  return rows
    .map(
      (r) =>
        `cpu=${String(r.cpu).padEnd(4)}\t` +
        fields
          .filter(([k]) => r[k] !== undefined)
          .map(([k, name]) => `${name}=${r[k]} `)
          .join('') +
        '\n',
    )
    .join('');
}

/** One expectation as `conntrack -L expect` prints it (every -o flag prints the same). */
export function formatCompatExpectation(e: Expectation): string {
  let out = e.timeout !== undefined ? `${e.timeout} ` : '';
  const t = e.tuple;
  out += `proto=${t.proto} `;
  out += tuple(t, 'zone');
  const mask: Tuple = { ...t, ...e.mask, proto: t.proto };
  delete mask.zone;
  out += tuple(mask, 'zone').replace('src=', 'mask-src=').replace('dst=', 'mask-dst=');
  out += tuple(e.master, 'zone').replace('src=', 'master-src=').replace('dst=', 'master-dst=');
  if (e.zone !== undefined) out += `zone=${e.zone} `;
  const flags = e.flagNames.filter(
    (f) => f === 'PERMANENT' || f === 'INACTIVE' || f === 'USERSPACE',
  );
  if (flags.length) out += `${flags.join(',')} `;
  if (e.class !== undefined) out += `class=${e.class} `;
  if (e.helper !== undefined) out += `helper=${e.helper} `;
  return out.trimEnd();
}

/** `[%-.8ld.%-.6ld]\t`: the wall clock when the event was read (-o timestamp). */
export function wallClockPrefix(): string {
  const ms = Date.now();
  const sec = String(Math.floor(ms / 1000)).padStart(8, '0');
  return `[${sec}.${String((ms % 1000) * 1000).padStart(6, '0')}]\t`;
}

/** `[%-8ld.%-6ld]\t`: the expectation callbacks' clock, padded with blanks on the right. */
export function expectClockPrefix(): string {
  const ms = Date.now();
  const sec = String(Math.floor(ms / 1000)).padEnd(8, ' ');
  return `[${sec}.${String((ms % 1000) * 1000).padEnd(6, ' ')}]\t`;
}
