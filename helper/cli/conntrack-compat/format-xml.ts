/**
 * libnetfilter_conntrack's XML (`-o xml`) of entries and expectations, with
 * its quirks, and the documents' first lines.
 */
import { IPPROTO, STATUS_BITS, TCP_STATES } from '../../conntrack/constants.js';
import type { Expectation } from '../../conntrack/expect-decode.js';
import type { Flow, Tuple } from '../../conntrack/types.js';
import { L4_NAMES, PORT_PROTOS } from './protocol-names.js';

/** __snprintf_localtime_xml(): `<when>` with the local time (-o xml,timestamp). */
function xmlWhen(date = new Date()): string {
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

/** The ports (or GRE keys) of a tuple; nothing for other protocols. */
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

function xmlTuple(f: Flow, dir: 'orig' | 'reply'): string {
  const t = f[dir];
  const l3 = f.family === 'ipv4' ? 2 : 10;
  let out = `<meta direction="${dir === 'orig' ? 'original' : 'reply'}">`;
  out += `<layer3 protonum="${l3}" protoname="${f.family}"><src>${t.src}</src><dst>${t.dst}</dst></layer3>`;
  out += `<layer4 protonum="${t.proto}" protoname="${L4_NAMES[t.proto] ?? 'unknown'}">`;
  out += xmlPorts(t, t.proto);
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
