import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as C from '../../../helper/attribution/constants.js';
import { decodeDiagMessage } from '../../../helper/attribution/diag-codec.js';
import {
  cgroupPath,
  parseCgroup,
  parseCmdline,
  parseFlatpakInfo,
  parsePasswd,
  parseStat,
  parseStatus,
  socketInode,
} from '../../../helper/attribution/proc-parse.js';
import { NetlinkDecodeError } from '../../../helper/netlink/errors.js';
import { forEachMessage } from '../../../helper/netlink/message.js';
import { diagReply } from '../../support/diag-reply.js';

/** Decodes every message of a datagram; only NetlinkDecodeError may escape,
 * and a decoded socket is well-typed. */
function decodeAll(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    forEachMessage(view, 0, bytes.byteLength, (msg) => {
      try {
        const s = decodeDiagMessage(msg, 'tcp');
        expect(['ipv4', 'ipv6']).toContain(s.family);
        expect(typeof s.cookie).toBe('bigint');
        expect(Number.isInteger(s.inode) && s.inode >= 0).toBe(true);
      } catch (e) {
        if (!(e instanceof NetlinkDecodeError)) throw e;
      }
    });
  } catch (e) {
    if (!(e instanceof NetlinkDecodeError)) throw e;
  }
}

/** Valid replies with random header fields and random attributes. */
const wellFormed = fc
  .record({
    family: fc.constantFrom('ipv4' as const, 'ipv6' as const),
    stateNo: fc.integer({ min: 0, max: 255 }),
    sport: fc.integer({ min: 0, max: 65535 }),
    dport: fc.integer({ min: 0, max: 65535 }),
    uid: fc.nat(),
    inode: fc.nat(),
    cookie: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    attrs: fc.array(
      fc.record({
        type: fc.integer({ min: 0, max: 30 }),
        value: fc.uint8Array({ maxLength: 24 }),
      }),
      { maxLength: 8 },
    ),
  })
  .map((r) =>
    diagReply(
      {
        family: r.family,
        stateNo: r.stateNo,
        sport: r.sport,
        dport: r.dport,
        uid: r.uid,
        inode: r.inode,
        cookie: r.cookie,
        src: r.family === 'ipv4' ? '10.0.0.1' : '2001:db8::1',
      },
      (w) => {
        for (const a of r.attrs) w.bytes(a.type, a.value);
      },
    ),
  );

describe('inet_diag decoder fuzzing: bad input yields NetlinkDecodeError, never a crash', () => {
  it('random bytes behind a SOCK_DIAG_BY_FAMILY header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (body) => {
        const bytes = new Uint8Array(16 + body.length);
        const v = new DataView(bytes.buffer);
        v.setUint32(0, bytes.length, true);
        v.setUint16(4, C.SOCK_DIAG_BY_FAMILY, true);
        bytes.set(body, 16);
        decodeAll(bytes);
      }),
      { numRuns: 3000 },
    );
  });

  it('every truncation of a well-formed reply (with nlmsg_len patched to fit)', () => {
    fc.assert(
      fc.property(wellFormed, (bytes) => {
        for (let cut = 0; cut <= bytes.length; cut++) {
          const copy = bytes.slice(0, cut);
          if (cut >= 4) new DataView(copy.buffer).setUint32(0, cut, true);
          decodeAll(copy);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('single-byte mutations of a well-formed reply', () => {
    fc.assert(
      fc.property(wellFormed, fc.nat(), fc.integer({ min: 0, max: 255 }), (bytes, at, value) => {
        const copy = bytes.slice();
        copy[at % copy.length] = value;
        decodeAll(copy);
      }),
      { numRuns: 3000 },
    );
  });

  it('reads stay inside the message: the poison around it never changes the result', () => {
    const outcome = (view: DataView, length: number): unknown => {
      let result: unknown;
      forEachMessage(view, 0, length, (msg) => {
        try {
          result = decodeDiagMessage(msg, 'udp');
        } catch (e) {
          if (!(e instanceof NetlinkDecodeError)) throw e;
          result = e.reason;
        }
      });
      return result;
    };
    fc.assert(
      fc.property(wellFormed, (bytes) => {
        const big = new Uint8Array(bytes.length + 64).fill(0xee);
        big.set(bytes, 32);
        const alone = bytes.slice();
        expect(outcome(new DataView(big.buffer, 32, bytes.length), bytes.length)).toEqual(
          outcome(new DataView(alone.buffer), alone.length),
        );
      }),
      { numRuns: 300 },
    );
  });
});

describe('/proc and passwd parsers on untrusted text never throw', () => {
  const anyText = fc.string({ unit: 'binary', maxLength: 400 });
  it('random text', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        parseStat(text);
        parseStatus(text);
        parseCmdline(text);
        socketInode(text);
        parsePasswd(text);
        cgroupPath(text);
        parseCgroup(text);
        parseFlatpakInfo(text);
      }),
      { numRuns: 3000 },
    );
  });

  it('stat: any comm (spaces, parentheses, newlines) round-trips', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 15 }),
        fc.integer({ min: 1, max: 4194304 }),
        fc.nat(),
        fc.nat(),
        (comm, pid, ppid, start) => {
          const fields = [
            'S',
            String(ppid),
            ...Array.from({ length: 17 }, (_, i) => String(i)),
            String(start),
            '0',
            '0',
          ];
          const stat = parseStat(`${pid} (${comm}) ${fields.join(' ')}\n`);
          expect(stat).toEqual({ pid, comm, state: 'S', ppid, startTime: start });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('cmdline: any argv without NUL round-trips', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !s.includes('\0')),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        (argv) => {
          expect(parseCmdline(`${argv.join('\0')}\0`)).toEqual(argv);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('cgroup: random path components around a container scope still find it', () => {
    const component = fc.stringMatching(/^[a-z0-9@._-]{1,20}$/);
    fc.assert(
      fc.property(
        fc.array(component, { maxLength: 5 }),
        fc.stringMatching(/^[0-9a-f]{64}$/),
        fc.array(component, { maxLength: 2 }),
        (before, id, after) => {
          const safe = (cs: string[]) =>
            cs.filter(
              (c) =>
                !/^(docker|libpod|crio|cri-containerd)-|^kubepods|^docker$|^[0-9a-f]{64}$/.test(c),
            );
          const path = [
            '',
            ...safe(before),
            `docker-${id}.scope`,
            ...safe(after).map((c) => `${c}x`),
          ].join('/');
          const info = parseCgroup(`0::${path}\n`);
          expect(info?.container).toEqual({ runtime: 'docker', id });
        },
      ),
      { numRuns: 1000 },
    );
  });
});
