/**
 * Frames on the IPC stream: a u32 big-endian byte length, then that many
 * bytes of UTF-8 JSON. The decoder accepts any chunking of the stream and
 * never buffers more than one frame of at most `maxFrameBytes` (plus its
 * header): an oversized length is reported as soon as the header arrives and
 * its body is skipped as it streams past, without being stored.
 */
import { MAX_FRAME_BYTES } from './messages.js';

export const HEADER_BYTES = 4;

export type FrameErrorCode = 'frame-too-large' | 'bad-frame';

export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly code: FrameErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** One item out of the decoder: a complete payload, or the length of a frame
 * that was too large (its body is being skipped). */
export type Decoded = { kind: 'frame'; payload: Buffer } | { kind: 'oversized'; length: number };

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes of an oversized body still to throw away. */
  private skipping = 0;

  /** May be raised later (the server allows only small frames before Hello);
   * it applies from the next frame header on. */
  constructor(public maxFrameBytes: number = MAX_FRAME_BYTES) {}

  /** Bytes held, waiting for the rest of their frame (at most header + max). */
  get buffered(): number {
    return this.size;
  }

  /** Feeds bytes in; returns the frames (and oversize reports) they complete. */
  push(data: Uint8Array): Decoded[] {
    const out: Decoded[] = [];
    let chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    while (chunk.length > 0) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, chunk.length);
        this.skipping -= n;
        chunk = chunk.subarray(n);
        continue;
      }
      this.chunks.push(chunk);
      this.size += chunk.length;
      chunk = Buffer.alloc(0);
      // Drain every complete frame now held; leftovers after an oversize
      // header go back through the skip path above.
      for (;;) {
        if (this.size < HEADER_BYTES) break;
        const length = this.peekLength();
        if (length > this.maxFrameBytes) {
          const rest = this.take(this.size).subarray(HEADER_BYTES);
          out.push({ kind: 'oversized', length });
          this.skipping = length;
          chunk = rest;
          break;
        }
        if (this.size < HEADER_BYTES + length) break;
        const frame = this.take(HEADER_BYTES + length);
        out.push({ kind: 'frame', payload: frame.subarray(HEADER_BYTES) });
      }
    }
    return out;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= HEADER_BYTES) return first.readUInt32BE(0);
    const head = Buffer.concat(this.chunks, Math.min(this.size, 16));
    return head.readUInt32BE(0);
  }

  /** Removes and returns the first n held bytes (n <= size). */
  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    const taken = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return taken;
  }
}

/** Prefixes an already serialized JSON text with its length. */
export function encodeJsonFrame(json: string, maxFrameBytes: number = MAX_FRAME_BYTES): Buffer {
  const length = Buffer.byteLength(json, 'utf8');
  if (length > maxFrameBytes) {
    throw new FrameError(
      'frame-too-large',
      `frame of ${length} bytes exceeds the ${maxFrameBytes}-byte limit`,
    );
  }
  const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
  frame.writeUInt32BE(length, 0);
  frame.write(json, HEADER_BYTES, 'utf8');
  return frame;
}

/** Serializes a value into one frame; throws FrameError when too large. */
export function encodeFrame(value: unknown, maxFrameBytes: number = MAX_FRAME_BYTES): Buffer {
  return encodeJsonFrame(JSON.stringify(value), maxFrameBytes);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The JSON value of a payload; FrameError('bad-frame') for invalid UTF-8 or JSON. */
export function parseFramePayload(payload: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    throw new FrameError('bad-frame', 'frame is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new FrameError('bad-frame', `frame is not JSON: ${(error as Error).message}`);
  }
}
