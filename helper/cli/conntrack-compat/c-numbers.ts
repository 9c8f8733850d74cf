/**
 * The C library's number readers as conntrack-tools uses them, quirks
 * included: garbage reads as 0, values wrap instead of failing.
 */

/** strtoul(s, &end, base 0): the value of the longest valid prefix, and where it ends. */
export function strtoul(text: string): { value: number; end: number } {
  let i = 0;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  let negative = false;
  if (text[i] === '+' || text[i] === '-') {
    negative = text[i] === '-';
    i++;
  }
  let base = 10;
  if (
    text[i] === '0' &&
    (text[i + 1] === 'x' || text[i + 1] === 'X') &&
    /[0-9a-f]/i.test(text[i + 2] ?? '')
  ) {
    base = 16;
    i += 2;
  } else if (text[i] === '0') base = 8;
  const start = i;
  let value = 0n;
  for (; i < text.length; i++) {
    const d = parseInt(text[i]!, base);
    if (Number.isNaN(d)) break;
    value = value * BigInt(base) + BigInt(d);
  }
  if (i === start && base !== 8) return { value: 0, end: 0 };
  const max = 0xffffffffffffffffn;
  if (value > max) value = max;
  if (negative) value = (max + 1n - value) & max;
  // Values above 2^53 lose precision here; callers truncate to 32 bits or less.
  return { value: Number(value & 0xffffffffn), end: i };
}

/** atoi(): leading decimal digits (with sign), 0 when there are none. */
export function atoi(text: string): number {
  const m = /^\s*([+-]?)(\d+)/.exec(text);
  if (!m) return 0;
  const v = Number(m[2]!.slice(-12)) | 0;
  return m[1] === '-' ? -v : v;
}

/** A 32-bit value with its four bytes in reverse order. */
export function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}
