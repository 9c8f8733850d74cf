import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDoneMessage, parseErrorMessage } from '../../../helper/netlink/ack.js';
import { AttributeReader } from '../../../helper/netlink/attributes.js';
import { NLMSG_DONE, NLMSG_ERROR } from '../../../helper/netlink/constants.js';
import { NetlinkDecodeError } from '../../../helper/netlink/errors.js';
import {
  decodeNfGenMsg,
  forEachMessage,
  nfAttributes,
  type NetlinkMessage,
} from '../../../helper/netlink/message.js';
import { NetlinkWriter } from '../../../helper/netlink/writer.js';
import { decodeCpuStats, decodeGlobalStats } from '../../../helper/conntrack/stats.js';

/** Walks every attribute, recursing into anything that parses as a nest and
 * touching every accessor, so that any out-of-bounds read would surface. */
function walk(ad: AttributeReader, depth = 0): number {
  let n = 0;
  while (ad.next()) {
    n++;
    for (const read of [
      () => ad.u8(),
      () => ad.u16be(),
      () => ad.u32be(),
      () => ad.u64be(),
      () => ad.string(),
    ]) {
      try {
        read();
      } catch (e) {
        if (!(e instanceof NetlinkDecodeError)) throw e;
      }
    }
    ad.bytes();
    if (depth < 4 && ad.valueLength >= 4) {
      try {
        n += walk(ad.nested(), depth + 1);
      } catch (e) {
        if (!(e instanceof NetlinkDecodeError)) throw e;
      }
    }
  }
  return n;
}

/** Everything a receiver does with a datagram; only NetlinkDecodeError may escape. */
function decodeAll(bytes: Uint8Array, offset: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const each = (msg: NetlinkMessage) => {
    const attempts = [
      () => (msg.type === NLMSG_ERROR ? parseErrorMessage(msg) : undefined),
      () => (msg.type === NLMSG_DONE ? parseDoneMessage(msg) : undefined),
      () => decodeNfGenMsg(msg),
      () => walk(nfAttributes(msg)),
      () => walk(new AttributeReader(msg.view, msg.offset + 16, msg.offset + msg.length)),
      () => decodeCpuStats(msg),
      () => decodeGlobalStats(msg),
      () => parseErrorMessage(msg),
      () => parseDoneMessage(msg),
    ];
    for (const attempt of attempts) {
      try {
        attempt();
      } catch (e) {
        if (!(e instanceof NetlinkDecodeError)) throw e;
      }
    }
  };
  try {
    forEachMessage(view, offset, bytes.byteLength, each);
  } catch (e) {
    if (!(e instanceof NetlinkDecodeError)) throw e;
  }
}

/** A valid message with random nested attributes, as a seed for mutation. */
const wellFormed = fc
  .array(
    fc.record({
      type: fc.integer({ min: 0, max: 0x3fff }),
      kind: fc.constantFrom('u8', 'u16', 'u32', 'u64', 'str', 'bytes', 'nest'),
      n: fc.nat(),
      s: fc.string({ maxLength: 20 }),
      b: fc.uint8Array({ maxLength: 40 }),
    }),
    { maxLength: 12 },
  )
  .map((attrs) => {
    const w = new NetlinkWriter().beginMessage(0x0101, 2, 1, 0).nfgenmsg(2, 0, 1);
    let open: ReturnType<NetlinkWriter['beginNest']>[] = [];
    for (const a of attrs) {
      switch (a.kind) {
        case 'u8':
          w.u8(a.type, a.n & 0xff);
          break;
        case 'u16':
          w.u16be(a.type, a.n & 0xffff);
          break;
        case 'u32':
          w.u32be(a.type, a.n);
          break;
        case 'u64':
          w.u64be(a.type, BigInt(a.n) << 20n);
          break;
        case 'str':
          w.string(a.type, a.s);
          break;
        case 'bytes':
          w.bytes(a.type, a.b);
          break;
        case 'nest':
          if (open.length < 3) open.push(w.beginNest(a.type));
          else w.endNest(open.pop()!);
          break;
      }
    }
    while (open.length) w.endNest(open.pop()!);
    open = [];
    return w.endMessage().finish();
  });

describe('decoder fuzzing: bad input yields NetlinkDecodeError, never a crash', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.nat(8), (bytes, offset) => {
        decodeAll(bytes, Math.min(offset, bytes.length));
      }),
      { numRuns: 3000 },
    );
  });

  it('random bytes behind a plausible header', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(NLMSG_ERROR, NLMSG_DONE, 0x0101, 0x0104, 0x0300),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ maxLength: 300 }),
        (type, flags, body) => {
          const bytes = new Uint8Array(16 + body.length);
          const v = new DataView(bytes.buffer);
          v.setUint32(0, bytes.length, true);
          v.setUint16(4, type, true);
          v.setUint16(6, flags, true);
          bytes.set(body, 16);
          decodeAll(bytes, 0);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('every truncation of a well-formed message', () => {
    fc.assert(
      fc.property(wellFormed, (bytes) => {
        for (let cut = 0; cut <= bytes.length; cut++) decodeAll(bytes.subarray(0, cut), 0);
      }),
      { numRuns: 300 },
    );
  });

  it('single-byte mutations of a well-formed message', () => {
    fc.assert(
      fc.property(wellFormed, fc.nat(), fc.integer({ min: 0, max: 255 }), (bytes, at, value) => {
        const copy = bytes.slice();
        copy[at % copy.length] = value;
        decodeAll(copy, 0);
      }),
      { numRuns: 3000 },
    );
  });

  it('reads never leave the slice they were given', () => {
    // A message inside a larger buffer whose surroundings are poison: a reader
    // that strays outside its slice would pick up 0xee bytes.
    fc.assert(
      fc.property(wellFormed, (bytes) => {
        const big = new Uint8Array(bytes.length + 64).fill(0xee);
        big.set(bytes, 32);
        const slice = big.subarray(32, 32 + bytes.length);
        const view = new DataView(slice.buffer, slice.byteOffset, slice.byteLength);
        forEachMessage(view, 0, slice.byteLength, (msg) => {
          const ad = nfAttributes(msg);
          while (ad.next()) {
            const value = ad.bytes();
            expect(value.byteOffset + value.byteLength).toBeLessThanOrEqual(32 + bytes.length);
            expect(value.byteOffset).toBeGreaterThanOrEqual(32);
          }
        });
      }),
      { numRuns: 500 },
    );
  });
});
