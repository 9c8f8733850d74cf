#!/usr/bin/env node
// Draws the Portcullis icon (a gate: vertical bars with spikes, cross bars, in a
// rounded square) as PNG files build/icons/NxN.png, the layout electron-builder
// wants for Linux. No image library: the PNG is written by hand (zlib + CRC).
// Run with `npm run icons`; the output is committed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const SIZES = [16, 24, 32, 48, 64, 128, 256, 512];
const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'build', 'icons');

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function png(size, pixel) {
  const raw = Buffer.alloc((size * 4 + 1) * size);
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      const [r, g, b, a] = pixel(x, y);
      const o = y * (size * 4 + 1) + 1 + x * 4;
      raw[o] = r;
      raw[o + 1] = g;
      raw[o + 2] = b;
      raw[o + 3] = a;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Coverage of one point (u, v in 0..1) by the shape: 0 none, 1 background, 2 gate. */
function shape(u, v) {
  const r = 0.18; // corner radius
  const cx = Math.min(Math.max(u, r), 1 - r);
  const cy = Math.min(Math.max(v, r), 1 - r);
  if ((u - cx) ** 2 + (v - cy) ** 2 > r * r) return 0;
  const bars = [0.26, 0.42, 0.58, 0.74];
  const w = 0.055;
  for (const bx of bars) {
    const d = Math.abs(u - bx);
    // a bar from the top to a spike at the bottom
    if (v >= 0.2 && v <= 0.72 && d <= w) return 2;
    if (v > 0.72 && v <= 0.84 && d <= w * (1 - (v - 0.72) / 0.12)) return 2;
  }
  for (const by of [0.3, 0.5]) {
    if (Math.abs(v - by) <= w * 0.8 && u >= 0.2 && u <= 0.8) return 2;
  }
  if (v >= 0.14 && v <= 0.2 && u >= 0.16 && u <= 0.84) return 2; // lintel
  return 1;
}

function pixel(size) {
  const ss = 4; // 4x4 supersampling for smooth edges
  return (x, y) => {
    let bg = 0;
    let fg = 0;
    for (let i = 0; i < ss; i++) {
      for (let j = 0; j < ss; j++) {
        const s = shape((x + (i + 0.5) / ss) / size, (y + (j + 0.5) / ss) / size);
        if (s === 1) bg++;
        if (s === 2) fg++;
      }
    }
    const n = ss * ss;
    const a = (bg + fg) / n;
    if (a === 0) return [0, 0, 0, 0];
    const f = fg / (bg + fg);
    const mix = (c0, c1) => Math.round(c0 * (1 - f) + c1 * f);
    return [mix(0x1f, 0xe9), mix(0x3a, 0xef), mix(0x5f, 0xf5), Math.round(a * 255)];
  };
}

mkdirSync(out, { recursive: true });
for (const size of SIZES) {
  writeFileSync(join(out, `${size}x${size}.png`), png(size, pixel(size)));
}
console.log(`make-icons: ${SIZES.length} sizes in ${out}`);
