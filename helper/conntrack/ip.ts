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

const cache = new Map<string, Uint8Array | undefined>();
const CACHE_LIMIT = 4096;

/** Parses an IPv4 or IPv6 address into 4 or 16 bytes; undefined if invalid.
 * Results are cached (a flow's addresses are parsed several times per
 * request); treat the returned bytes as read-only. */
export function parseIP(text: string): Uint8Array | undefined {
  let bytes = cache.get(text);
  if (bytes !== undefined || cache.has(text)) return bytes;
  bytes = parseIPv4(text) ?? parseIPv6(text);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(text, bytes);
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

export function parseIPv6(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length < 2) return undefined;
  let head = text;
  const tailBytes: number[] = [];
  // An embedded IPv4 address in the last 32 bits (::ffff:1.2.3.4).
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (!v4) return undefined;
    tailBytes.push(...v4);
    head = text.slice(0, lastColon + 1);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const double = head.indexOf('::');
  if (double !== head.lastIndexOf('::')) return undefined;
  const toWords = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    for (const w of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(w)) return undefined;
      out.push(parseInt(w, 16));
    }
    return out;
  };
  const wordsNeeded = tailBytes.length ? 6 : 8;
  let words: number[];
  if (double >= 0) {
    const left = toWords(head.slice(0, double));
    const right = toWords(head.slice(double + 2));
    if (!left || !right || left.length + right.length >= wordsNeeded) return undefined;
    words = [
      ...left,
      ...new Array<number>(wordsNeeded - left.length - right.length).fill(0),
      ...right,
    ];
  } else {
    const all = toWords(head);
    if (!all || all.length !== wordsNeeded) return undefined;
    words = all;
  }
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  out.set(tailBytes, 12);
  return out;
}

/** Normalises an address to the canonical text the decoder produces. */
export function canonicalIP(text: string): string | undefined {
  const bytes = parseIP(text);
  if (!bytes) return undefined;
  const view = new DataView(bytes.buffer);
  return bytes.length === 4 ? formatIPv4(view, 0) : formatIPv6(view, 0);
}
