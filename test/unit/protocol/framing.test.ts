import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FrameDecoder,
  FrameError,
  HEADER_BYTES,
  encodeFrame,
  encodeJsonFrame,
  parseFramePayload,
  type Decoded,
} from '../../../helper/protocol/framing.js';
import { MAX_FRAME_BYTES } from '../../../helper/protocol/messages.js';

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

function decodeAll(decoder: FrameDecoder, chunks: Buffer[]): Decoded[] {
  return chunks.flatMap((c) => decoder.push(c));
}

describe('frame encoder', () => {
  it('writes a big-endian u32 length before the UTF-8 JSON', () => {
    const frame = encodeFrame({ a: 'é' });
    const json = '{"a":"é"}';
    expect(frame.readUInt32BE(0)).toBe(Buffer.byteLength(json));
    expect(frame.subarray(HEADER_BYTES).toString('utf8')).toBe(json);
  });

  it('refuses a frame over the limit with a typed error', () => {
    expect(() => encodeJsonFrame('"' + 'x'.repeat(20) + '"', 16)).toThrow(FrameError);
    try {
      encodeFrame('x'.repeat(MAX_FRAME_BYTES));
    } catch (error) {
      expect((error as FrameError).code).toBe('frame-too-large');
    }
    expect(encodeJsonFrame('"' + 'x'.repeat(14) + '"', 16).length).toBe(16 + HEADER_BYTES);
  });
});

describe('frame decoder', () => {
  it('decodes frames split at every byte and frames glued together', () => {
    const values = [{ a: 1 }, { b: 'two' }, [], 'three', { nested: { deep: [1, 2, 3] } }];
    const stream = Buffer.concat(values.map((x) => encodeFrame(x)));
    const d = new FrameDecoder();
    const out = decodeAll(
      d,
      [...stream].map((b) => Buffer.from([b])),
    );
    expect(out.map((o) => (o.kind === 'frame' ? parseFramePayload(o.payload) : o))).toEqual(values);
    expect(d.buffered).toBe(0);
    const glued = new FrameDecoder().push(stream);
    expect(glued).toHaveLength(values.length);
  });

  it('reports an oversized frame from its header alone and skips its body unbuffered', () => {
    const d = new FrameDecoder(64);
    const big = Buffer.alloc(HEADER_BYTES + 10_000, 0x41);
    big.writeUInt32BE(10_000, 0);
    const after = encodeFrame({ ok: true });
    const out: Decoded[] = [];
    out.push(...d.push(big.subarray(0, HEADER_BYTES)));
    expect(out).toEqual([{ kind: 'oversized', length: 10_000 }]);
    for (let i = HEADER_BYTES; i < big.length; i += 333) {
      out.push(...d.push(big.subarray(i, Math.min(i + 333, big.length))));
      expect(d.buffered).toBeLessThanOrEqual(64 + HEADER_BYTES);
    }
    out.push(...d.push(after));
    expect(out).toHaveLength(2);
    expect(out[1]!.kind).toBe('frame');
    expect(parseFramePayload((out[1] as { payload: Buffer }).payload)).toEqual({ ok: true });
  });

  it('accepts a frame of exactly the maximum and refuses one byte more', () => {
    const d = new FrameDecoder(8);
    const exact = encodeJsonFrame('"123456"', 8);
    const over = Buffer.alloc(HEADER_BYTES + 9, 0x20);
    over.writeUInt32BE(9, 0);
    const out = d.push(Buffer.concat([exact, over]));
    expect(out.map((o) => o.kind)).toEqual(['frame', 'oversized']);
  });

  it('parses payloads as strict UTF-8 JSON with typed errors', () => {
    expect(() => parseFramePayload(Buffer.from('{nope'))).toThrow(/not JSON/);
    expect(() => parseFramePayload(Buffer.from([0xff, 0xfe]))).toThrow(/UTF-8/);
    try {
      parseFramePayload(Buffer.from(''));
    } catch (error) {
      expect(error).toBeInstanceOf(FrameError);
      expect((error as FrameError).code).toBe('bad-frame');
    }
  });

  it('fuzz: any chunking of any frames decodes to the same values', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: 0, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (values, cuts) => {
          const encoded = values.map((x) => encodeFrame(x));
          const stream = Buffer.concat(encoded);
          const d = new FrameDecoder();
          const out = decodeAll(d, splitAt(stream, cuts));
          expect(out.map((o) => (o.kind === 'frame' ? o.payload.toString('utf8') : null))).toEqual(
            encoded.map((f) => f.subarray(HEADER_BYTES).toString('utf8')),
          );
          expect(d.buffered).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fuzz: random bytes never throw and never grow the buffer past one frame', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 30 }), (chunks) => {
        const d = new FrameDecoder(128);
        for (const c of chunks) {
          for (const item of d.push(c)) {
            if (item.kind === 'frame') expect(item.payload.length).toBeLessThanOrEqual(128);
            else expect(item.length).toBeGreaterThan(128);
          }
          expect(d.buffered).toBeLessThan(128 + HEADER_BYTES + 300);
          expect(d.buffered).toBeLessThanOrEqual(128 + HEADER_BYTES);
        }
      }),
      { numRuns: 500 },
    );
  });
});
