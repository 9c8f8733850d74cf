/**
 * conntrack-tools' (libnetfilter_conntrack's) text form of an entry, for the
 * default output and `-o extended` / `-o id`: byte for byte what
 * `conntrack -L` prints.
 */
import { IPPROTO, STATUS_BITS, TCP_STATES } from '../conntrack/constants.js';
import type { Flow, Tuple } from '../conntrack/types.js';
import type { CpuStats } from '../conntrack/stats.js';
import type { Expectation } from '../conntrack/expect.js';
import { labelBits } from '../conntrack/decode.js';

const L4_NAMES: Record<number, string> = {
  [IPPROTO.tcp]: 'tcp',
  [IPPROTO.udp]: 'udp',
  [IPPROTO.udplite]: 'udplite',
  [IPPROTO.icmp]: 'icmp',
  [IPPROTO.icmpv6]: 'icmpv6',
  [IPPROTO.sctp]: 'sctp',
  [IPPROTO.dccp]: 'dccp',
  [IPPROTO.gre]: 'gre',
};

/** Protocols whose tuples libnetfilter_conntrack prints with sport/dport. */
const PORT_PROTOS = new Set<number>([
  IPPROTO.tcp,
  IPPROTO.udp,
  IPPROTO.udplite,
  IPPROTO.sctp,
  IPPROTO.dccp,
]);

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

/** `--json` form of an expectation (with the event type for -E expect). */
export function expectationJsonLine(e: Expectation, event?: string): string {
  return (
    JSON.stringify({ ...(event !== undefined ? { event } : {}), ...e }, (_k, v: unknown) =>
      typeof v === 'bigint'
        ? v.toString()
        : v instanceof Uint8Array
          ? Buffer.from(v).toString('hex')
          : v,
    ) + '\n'
  );
}

/** The protocols conntrack-tools 1.4.7 registers an extension for (`-p NAME` in `-o save`). */
const SAVE_PROTO_NAMES: Record<number, string> = {
  [IPPROTO.tcp]: 'tcp',
  [IPPROTO.udp]: 'udp',
  [IPPROTO.udplite]: 'udplite',
  [IPPROTO.sctp]: 'sctp',
  [IPPROTO.dccp]: 'dccp',
  [IPPROTO.icmp]: 'icmp',
  [IPPROTO.icmpv6]: 'icmpv6',
  [IPPROTO.gre]: 'gre',
};

function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/** conntrack_status_map of ct_save_snprintf(), in bit order. */
const SAVE_STATUS: [number, string][] = [
  [STATUS_BITS.EXPECTED, 'EXPECTED'],
  [STATUS_BITS.SEEN_REPLY, 'SEEN_REPLY'],
  [STATUS_BITS.ASSURED, 'ASSURED'],
  [STATUS_BITS.FIXED_TIMEOUT, 'FIXED_TIMEOUT'],
];

/**
 * One entry as `conntrack -L -o save` (ct_save_snprintf() of 1.4.7) prints
 * it: `-A`, then -t, -u (only EXPECTED, SEEN_REPLY, ASSURED, FIXED_TIMEOUT;
 * `UNSET` without them), -c, -w, --orig-zone, --reply-zone, the addresses
 * (-g / -n instead of -r / -q when the entry is DNATed / SNATed), then
 * `-p NAME` and the protocol's options (none for dccp), or `-p NUMBER`.
 * The mark, labels and helper are not part of it, as in 1.4.7.
 */
export function formatCompatSave(f: Flow, prefix = '-A'): string {
  const o: string[] = [prefix];
  if (f.timeout !== undefined) o.push('-t', String(f.timeout));
  const status = SAVE_STATUS.filter(([bit]) => f.status & bit).map(([, name]) => name);
  o.push('-u', status.length ? status.join(',') : 'UNSET');
  if (f.secmark !== undefined) o.push('-c', String(f.secmark));
  if (f.zone !== undefined) o.push('-w', String(f.zone));
  if (f.orig.zone !== undefined) o.push('--orig-zone', String(f.orig.zone));
  if (f.reply.zone !== undefined) o.push('--reply-zone', String(f.reply.zone));
  o.push('-s', f.orig.src, '-d', f.orig.dst);
  const dnat = (f.status & STATUS_BITS.DST_NAT_DONE) !== 0 && f.reply.src !== f.orig.dst;
  const snat = (f.status & STATUS_BITS.SRC_NAT_DONE) !== 0 && f.reply.dst !== f.orig.src;
  o.push(dnat ? '-g' : '-r', f.reply.src, snat ? '-n' : '-q', f.reply.dst);
  const proto = f.orig.proto;
  const name = SAVE_PROTO_NAMES[proto];
  o.push('-p', name ?? String(proto));
  const num = (flag: string, v: number | undefined) => {
    if (v !== undefined) o.push(flag, String(v));
  };
  switch (proto) {
    case IPPROTO.tcp:
    case IPPROTO.udp:
    case IPPROTO.udplite:
    case IPPROTO.sctp:
      num('--sport', f.orig.srcPort);
      num('--dport', f.orig.dstPort);
      num('--reply-port-src', f.reply.srcPort);
      num('--reply-port-dst', f.reply.dstPort);
      if (proto === IPPROTO.tcp && f.tcp) o.push('--state', f.tcp.state);
      if (proto === IPPROTO.sctp && f.sctp) {
        o.push('--state', f.sctp.state);
        // 1.4.7 prints ntohl() of the tags the library decodes in host order.
        num('--orig-vtag', f.sctp.vtagOrig === undefined ? undefined : bswap32(f.sctp.vtagOrig));
        num('--reply-vtag', f.sctp.vtagReply === undefined ? undefined : bswap32(f.sctp.vtagReply));
      }
      break;
    case IPPROTO.gre:
      num('--srckey', f.orig.srcPort);
      num('--dstkey', f.orig.dstPort);
      num('--reply-key-src', f.reply.srcPort);
      num('--reply-key-dst', f.reply.dstPort);
      break;
    case IPPROTO.icmp:
    case IPPROTO.icmpv6: {
      const p = proto === IPPROTO.icmp ? '--icmp' : '--icmpv6';
      num(`${p}-type`, f.orig.icmpType);
      num(`${p}-code`, f.orig.icmpCode);
      num(`${p}-id`, f.orig.icmpId);
      break;
    }
    default:
      break;
  }
  return o.join(' ');
}

/** __snprintf_localtime_xml(): `<when>` with the local time (-o xml,timestamp). */
export function xmlWhen(date = new Date()): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `<when><hour>${date.getHours()}</hour><min>${two(date.getMinutes())}</min>` +
    `<sec>${two(date.getSeconds())}</sec><wday>${date.getDay() + 1}</wday>` +
    `<day>${date.getDate()}</day><month>${date.getMonth() + 1}</month>` +
    `<year>${date.getFullYear()}</year></when>`
  );
}

/** The XML document's first lines, printed before the first entry (-L, -G, -E). */
export const XML_HEADER = '<?xml version="1.0" encoding="utf-8"?>\n<conntrack>\n';

function xmlTuple(f: Flow, dir: 'orig' | 'reply'): string {
  const t = f[dir];
  const l3 = f.family === 'ipv4' ? 2 : 10;
  let out = `<meta direction="${dir === 'orig' ? 'original' : 'reply'}">`;
  out += `<layer3 protonum="${l3}" protoname="${f.family}"><src>${t.src}</src><dst>${t.dst}</dst></layer3>`;
  out += `<layer4 protonum="${t.proto}" protoname="${L4_NAMES[t.proto] ?? 'unknown'}">`;
  if (PORT_PROTOS.has(t.proto)) {
    out += `<sport>${t.srcPort ?? 0}</sport><dport>${t.dstPort ?? 0}</dport>`;
  } else if (t.proto === IPPROTO.gre) {
    out += `<srckey>0x${(t.srcPort ?? 0).toString(16)}</srckey>`;
    out += `<dstkey>0x${(t.dstPort ?? 0).toString(16)}</dstkey>`;
  }
  // ICMP type, code and id are not part of libnetfilter_conntrack's XML.
  out += '</layer4>';
  if (t.zone !== undefined) out += `<zone>${t.zone}</zone>`;
  const c = dir === 'orig' ? f.countersOrig : f.countersReply;
  if (f.countersOrig && c) {
    out += `<counters><packets>${c.packets}</packets><bytes>${c.bytes}</bytes></counters>`;
  }
  return out + '</meta>';
}

/**
 * One entry as libnetfilter_conntrack's XML (`-o xml`), without the
 * newline: `<flow [type="new|update|destroy"]>`, the two directions, then
 * the independent part. Its quirks are kept: SCTP and DCCP states are named
 * from the TCP state table by number, ICMP fields are left out.
 * `ktimestamp`: the `<timestamp>` block (`-o xml,ktimestamp`).
 */
export function formatCompatXml(
  f: Flow,
  type?: 'new' | 'update' | 'destroy',
  ktimestamp = false,
  nowSeconds = Math.floor(Date.now() / 1000),
  when = false,
): string {
  let out = type ? `<flow type="${type}">` : '<flow>';
  out += xmlTuple(f, 'orig') + xmlTuple(f, 'reply');
  const stateNumber = f.tcp?.stateNumber ?? f.sctp?.stateNumber ?? f.dccp?.stateNumber;
  let meta = '';
  if (f.tcp) meta += `<state>${f.tcp.state}</state>`;
  else if (stateNumber !== undefined) {
    meta += `<state>${(TCP_STATES as readonly string[])[stateNumber] ?? 'NONE'}</state>`;
  }
  if (f.timeout !== undefined) meta += `<timeout>${f.timeout}</timeout>`;
  if (f.mark !== undefined) meta += `<mark>${f.mark}</mark>`;
  if (f.secmark !== undefined) meta += `<secmark>${f.secmark}</secmark>`;
  if (f.secctx !== undefined) meta += `<secctx>${f.secctx}</secctx>`;
  if (f.zone !== undefined) meta += `<zone>${f.zone}</zone>`;
  if (f.use !== undefined) meta += `<use>${f.use}</use>`;
  if (f.id !== undefined) meta += `<id>${f.id}</id>`;
  if (f.status & STATUS_BITS.ASSURED) meta += '<assured/>';
  if (!(f.status & STATUS_BITS.SEEN_REPLY)) meta += '<unreplied/>';
  const start = f.timestampStart;
  const stop = f.timestampStop;
  if (ktimestamp && (start !== undefined || stop !== undefined)) {
    meta += '<timestamp>';
    if (start !== undefined) meta += `<start>${start}</start>`;
    if (stop !== undefined) meta += `<stop>${stop}</stop>`;
    meta += '</timestamp>';
  }
  if (start !== undefined && stop !== undefined) {
    meta += `<deltatime>${(stop - start) / 1_000_000_000n}</deltatime>`;
  } else if (start !== undefined) {
    meta += `<deltatime>${BigInt(nowSeconds) - start / 1_000_000_000n}</deltatime>`;
  }
  // The independent part is there whenever the kernel sent status (always).
  out += `<meta direction="independent">${meta}</meta>`;
  if (when) out += xmlWhen();
  if (f.helper !== undefined) out += `<helper>${f.helper.name}</helper>`;
  return out + '</flow>';
}

/** The expectation XML document's first lines (-L/-G/-E expect -o xml). */
export const XML_EXPECT_HEADER = '<?xml version="1.0" encoding="utf-8"?>\n<expect>\n';

function xmlPorts(t: Partial<Tuple>, proto: number): string {
  if (PORT_PROTOS.has(proto))
    return `<sport>${t.srcPort ?? 0}</sport><dport>${t.dstPort ?? 0}</dport>`;
  if (proto === IPPROTO.gre) {
    return (
      `<srckey>0x${(t.srcPort ?? 0).toString(16)}</srckey>` +
      `<dstkey>0x${(t.dstPort ?? 0).toString(16)}</dstkey>`
    );
  }
  return '';
}

/**
 * One expectation as libnetfilter_conntrack's XML: `<flow>` (`type=` for
 * events), `<layer3>` and `<layer4>` each with `<expected>`, `<mask>` and
 * `<master>`, then `<meta>` (helper-name, timeout, class, zone, flags).
 */
export function formatCompatExpectationXml(
  e: Expectation,
  type?: 'new' | 'update' | 'destroy',
  when = false,
): string {
  const t = e.tuple;
  const m: Partial<Tuple> = { ...t, ...e.mask };
  let out = type ? `<flow type="${type}">` : '<flow>';
  out += `<layer3 protonum="${e.family === 'ipv4' ? 2 : 10}" protoname="${e.family}">`;
  out += `<expected><src>${t.src}</src><dst>${t.dst}</dst></expected>`;
  out += `<mask><src>${m.src}</src><dst>${m.dst}</dst></mask>`;
  out += `<master><src>${e.master.src}</src><dst>${e.master.dst}</dst></master></layer3>`;
  out += `<layer4 protonum="${t.proto}" protoname="${L4_NAMES[t.proto] ?? 'unknown'}">`;
  out += `<expected>${xmlPorts(t, t.proto)}</expected>`;
  out += `<mask>${xmlPorts(m, m.proto ?? t.proto)}</mask>`;
  out += `<master>${xmlPorts(e.master, e.master.proto)}</master></layer4>`;
  out += '<meta>';
  if (e.helper !== undefined) out += `<helper-name>${e.helper}</helper-name>`;
  if (e.timeout !== undefined) out += `<timeout>${e.timeout}</timeout>`;
  if (e.class !== undefined) out += `<class>${e.class}</class>`;
  if (e.zone !== undefined) out += `<zone>${e.zone}</zone>`;
  if (when) out += xmlWhen();
  if (e.flagNames.includes('PERMANENT')) out += '<permanent/>';
  if (e.flagNames.includes('INACTIVE')) out += '<inactive/>';
  if (e.flagNames.includes('USERSPACE')) out += '<userspace/>';
  return out + '</meta></flow>';
}
