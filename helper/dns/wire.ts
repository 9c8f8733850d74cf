import { formatIPv4, formatIPv6 } from '../common/ip.js';
import * as D from './constants.js';
import { DnsParseError } from './errors.js';

export interface DnsQuestion {
  /** Lower case, dot-separated, no trailing dot ('' for the root). */
  name: string;
  type: number;
  /** The class with the mDNS unicast-response bit masked off. */
  class: number;
}

export type DnsRecordData =
  | { kind: 'a'; address: string }
  | { kind: 'aaaa'; address: string }
  | { kind: 'cname'; target: string }
  /** A type this parser does not decode: skipped, its rdata bounds-checked only. */
  | { kind: 'other'; length: number };

export interface DnsRecord {
  name: string;
  type: number;
  /** The class with the mDNS cache-flush bit masked off. */
  class: number;
  /** Seconds (u32 on the wire; RFC 2181 says treat values with the top bit set as 0). */
  ttl: number;
  data: DnsRecordData;
}

export interface DnsMessage {
  id: number;
  /** QR: a response. */
  response: boolean;
  opcode: number;
  authoritative: boolean;
  /** TC: the server cut the message (the client retries over TCP). */
  truncated: boolean;
  recursionDesired: boolean;
  recursionAvailable: boolean;
  authenticData: boolean;
  checkingDisabled: boolean;
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

/** Hops a name may take through compression pointers; the strictly-backward rule
 * already bounds them, this bounds the work on a hostile 64 KiB message. */
const MAX_POINTER_HOPS = 64;

function label(bytes: Uint8Array, start: number, end: number): string {
  let out = '';
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    if (c >= 0x41 && c <= 0x5a) out += String.fromCharCode(c + 0x20);
    else if (c === 0x2e || c === 0x5c) out += `\\${String.fromCharCode(c)}`;
    else if (c > 0x20 && c < 0x7f) out += String.fromCharCode(c);
    // Anything else as \DDD, as dig prints it.
    else out += `\\${c.toString().padStart(3, '0')}`;
  }
  return out;
}

/**
 * Reads a (possibly compressed) name at `at`. Pointers may only go strictly
 * backwards, each before the previous target, which is what every compressor
 * produces (it can only point at names already written) and makes loops impossible.
 * Returns the name and the offset after it in the original position.
 */
export function readName(
  bytes: Uint8Array,
  at: number,
  messageStart: number,
  end: number,
): { name: string; next: number } {
  const labels: string[] = [];
  let next = -1;
  let wireLength = 1;
  let limit = at; // a pointer must target strictly before this
  let hops = 0;
  for (;;) {
    if (at >= end) throw new DnsParseError('TRUNCATED', at, 'name runs past the end');
    const len = bytes[at]!;
    if (len === 0) {
      if (next < 0) next = at + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (at + 1 >= end) throw new DnsParseError('TRUNCATED', at, 'pointer cut short');
      const target = messageStart + (((len & 0x3f) << 8) | bytes[at + 1]!);
      if (next < 0) next = at + 2;
      if (target >= limit || target < messageStart || ++hops > MAX_POINTER_HOPS) {
        throw new DnsParseError(
          'BAD_POINTER',
          at,
          `compression pointer to ${target - messageStart} does not point before ${limit - messageStart}`,
        );
      }
      limit = target;
      at = target;
      continue;
    }
    if (kind !== 0) {
      throw new DnsParseError('BAD_LABEL', at, `label type 0x${kind.toString(16)}`);
    }
    if (at + 1 + len > end) throw new DnsParseError('TRUNCATED', at, 'label runs past the end');
    wireLength += len + 1;
    if (wireLength > D.DNS_MAX_NAME) {
      throw new DnsParseError('NAME_TOO_LONG', at, `name longer than ${D.DNS_MAX_NAME} bytes`);
    }
    labels.push(label(bytes, at + 1, at + 1 + len));
    at += 1 + len;
  }
  return { name: labels.join('.'), next };
}

/** Reads a DNS message in bytes[offset, offset + length). Throws DnsParseError
 * on malformed input; never reads outside that range. */
export function parseDnsMessage(
  bytes: Uint8Array,
  offset = 0,
  length = bytes.byteLength - offset,
): DnsMessage {
  const start = offset;
  const end = offset + length;
  if (start < 0 || length < 0 || end > bytes.byteLength) {
    throw new DnsParseError('TRUNCATED', start, 'range outside the buffer');
  }
  if (length < D.DNS_HEADER_LEN) {
    throw new DnsParseError('TRUNCATED', start, `${length} bytes, a header needs 12`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => view.getUint16(at, false);
  const flags = u16(start + 2);
  const counts = [u16(start + 4), u16(start + 6), u16(start + 8), u16(start + 10)] as const;
  const message: DnsMessage = {
    id: u16(start),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    recursionDesired: (flags & 0x0100) !== 0,
    recursionAvailable: (flags & 0x0080) !== 0,
    authenticData: (flags & 0x0020) !== 0,
    checkingDisabled: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  };
  let at = start + D.DNS_HEADER_LEN;
  for (let i = 0; i < counts[0]; i++) {
    const { name, next } = readName(bytes, at, start, end);
    if (next + 4 > end) throw new DnsParseError('TRUNCATED', next, 'question cut short');
    message.questions.push({ name, type: u16(next), class: u16(next + 2) & ~D.CLASS_TOP_BIT });
    at = next + 4;
  }
  const sections = [message.answers, message.authorities, message.additionals];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const { record, next } = readRecord(bytes, view, at, start, end);
      sections[s]!.push(record);
      at = next;
    }
  }
  return message;
}

function readRecord(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  start: number,
  end: number,
): { record: DnsRecord; next: number } {
  const { name, next } = readName(bytes, at, start, end);
  if (next + 10 > end) throw new DnsParseError('TRUNCATED', next, 'record header cut short');
  const type = view.getUint16(next, false);
  const cls = view.getUint16(next + 2, false) & ~D.CLASS_TOP_BIT;
  const rawTtl = view.getUint32(next + 4, false);
  const rdlength = view.getUint16(next + 8, false);
  const rdata = next + 10;
  const rdataEnd = rdata + rdlength;
  if (rdataEnd > end) throw new DnsParseError('TRUNCATED', rdata, 'rdata runs past the end');
  let data: DnsRecordData;
  const sized = (n: number) => {
    if (rdlength !== n) {
      throw new DnsParseError(
        'BAD_RDATA',
        rdata,
        `type ${type} rdata of ${rdlength} bytes, not ${n}`,
      );
    }
  };
  if (type === D.TYPE_A && cls === D.CLASS_IN) {
    sized(4);
    data = { kind: 'a', address: formatIPv4(view, rdata) };
  } else if (type === D.TYPE_AAAA && cls === D.CLASS_IN) {
    sized(16);
    data = { kind: 'aaaa', address: formatIPv6(view, rdata) };
  } else if (type === D.TYPE_CNAME) {
    // The target's own bytes must fill the rdata exactly (pointers may go anywhere before).
    const target = readName(bytes, rdata, start, rdataEnd);
    if (target.next !== rdataEnd) {
      throw new DnsParseError('BAD_RDATA', rdata, 'CNAME target does not fill its rdata');
    }
    data = { kind: 'cname', target: target.name };
  } else {
    data = { kind: 'other', length: rdlength };
  }
  return {
    record: { name, type, class: cls, ttl: rawTtl > 0x7fffffff ? 0 : rawTtl, data },
    next: rdataEnd,
  };
}

/**
 * Splits a TCP segment's payload into DNS messages (RFC 1035 4.2.2: each with a
 * 2-byte length prefix). Only whole messages are returned: a message that
 * continues in a later segment (this parser does not reassemble streams) is
 * reported as `incomplete`, and so is any trailing partial message.
 */
export function splitTcpDns(
  bytes: Uint8Array,
  offset = 0,
  length = bytes.byteLength - offset,
): { messages: { offset: number; length: number }[]; incomplete: boolean } {
  const end = offset + length;
  const messages: { offset: number; length: number }[] = [];
  let at = offset;
  while (at < end) {
    if (end - at < 2) return { messages, incomplete: true };
    const n = (bytes[at]! << 8) | bytes[at + 1]!;
    if (at + 2 + n > end) return { messages, incomplete: true };
    messages.push({ offset: at + 2, length: n });
    at += 2 + n;
  }
  return { messages, incomplete: false };
}
