/** Fast IPv4/IPv6 text conversion for tuples (RFC 5952 output, as inet_ntop). */

export function formatIPv4(view: DataView, at: number): string {
  return `${view.getUint8(at)}.${view.getUint8(at + 1)}.${view.getUint8(at + 2)}.${view.getUint8(at + 3)}`;
}

export function formatIPv6(view: DataView, at: number): string {
  const words = new Array<number>(8);
  for (let i = 0; i < 8; i++) words[i] = view.getUint16(at + i * 2, false);
  // IPv4-mapped (::ffff:a.b.c.d), printed as inet_ntop does.
  if (
    words[0] === 0 &&
    words[1] === 0 &&
    words[2] === 0 &&
    words[3] === 0 &&
    words[4] === 0 &&
    words[5] === 0xffff
  ) {
    return `::ffff:${formatIPv4(view, at + 12)}`;
  }
  // Longest run of zero words (length >= 2) is compressed; the first wins ties.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestStart = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    out += words[i]!.toString(16);
    if (i < 7) out += ':';
  }
  return out;
}

// The addresses of one request are parsed several times (orig, then the
// inverted reply) and a few (the local address) recur across requests: a
// tiny ring compared by string identity catches those without hashing.
const RING = 8;
const ringKeys: (string | undefined)[] = new Array<string | undefined>(RING).fill(undefined);
const ringValues: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(RING).fill(
  undefined,
);
let ringNext = 0;

/** Parses an IPv4 or IPv6 address into 4 or 16 bytes; undefined if invalid.
 * Recent results are shared: treat the returned bytes as read-only. */
export function parseIP(text: string): Uint8Array | undefined {
  for (let i = 0; i < RING; i++) if (ringKeys[i] === text) return ringValues[i];
  const bytes = parseIPv4(text) ?? parseIPv6(text);
  ringKeys[ringNext] = text;
  ringValues[ringNext] = bytes;
  ringNext = (ringNext + 1) % RING;
  return bytes;
}

/** Dotted quad, four decimal parts of 1-3 digits each, no sign or spaces. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const len = text.length;
  if (len < 7 || len > 15) return undefined;
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return undefined;
    } else if (c === 46 && digits > 0 && part < 3) {
      out[part++] = value;
      value = 0;
      digits = 0;
    } else return undefined;
  }
  if (part !== 3 || digits === 0) return undefined;
  out[3] = value;
  return out;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * RFC 4291 text: eight groups of 1-4 hex digits, one "::" for a run of zero
 * groups, optionally a dotted IPv4 address in the last 32 bits. One pass, no
 * intermediate strings.
 */
export function parseIPv6(text: string): Uint8Array | undefined {
  const len = text.length;
  if (len < 2 || len > 45) return undefined;
  const words = new Uint16Array(8);
  let count = 0; // groups written
  let gap = -1; // group index where "::" stands
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return undefined;
    gap = 0;
    i = 2;
    if (i === len) return new Uint8Array(16);
  }
  let tail: Uint8Array | undefined;
  while (i < len) {
    if (count >= 8) return undefined;
    // An embedded IPv4 address ends the text.
    let j = i;
    let digits = 0;
    let value = 0;
    while (j < len && digits <= 4) {
      const h = hexValue(text.charCodeAt(j));
      if (h < 0) break;
      value = value * 16 + h;
      digits++;
      j++;
    }
    if (j < len && text.charCodeAt(j) === 46) {
      tail = parseIPv4(text.slice(i));
      if (!tail || count > 6) return undefined;
      i = len;
      break;
    }
    if (digits === 0 || digits > 4) return undefined;
    words[count++] = value;
    i = j;
    if (i === len) break;
    if (text.charCodeAt(i) !== 58) return undefined;
    i++;
    if (i < len && text.charCodeAt(i) === 58) {
      if (gap >= 0) return undefined;
      gap = count;
      i++;
      if (i === len) break;
    } else if (i === len) return undefined; // a trailing single ':'
  }
  const needed = tail ? 6 : 8;
  if (gap < 0 ? count !== needed : count >= needed) return undefined;
  const out = new Uint8Array(16);
  const shift = needed - count;
  for (let w = 0; w < count; w++) {
    const at = gap >= 0 && w >= gap ? w + shift : w;
    out[at * 2] = words[w]! >> 8;
    out[at * 2 + 1] = words[w]! & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

/** Normalises an address to the canonical text the decoder produces. */
export function canonicalIP(text: string): string | undefined {
  const bytes = parseIP(text);
  if (!bytes) return undefined;
  const view = new DataView(bytes.buffer);
  return bytes.length === 4 ? formatIPv4(view, 0) : formatIPv6(view, 0);
}
