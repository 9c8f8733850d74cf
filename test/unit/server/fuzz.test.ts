import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../../helper/protocol/framing.js';
import { PROTOCOL_VERSION, methods } from '../../../helper/protocol/messages.js';
import { RawClient, TOKEN, startHarness, type Harness } from '../../support/ipc-harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ maxFrameBytes: 8192, chunkTargetBytes: 2048, handshakeTimeoutMs: 500 });
});
afterAll(async () => {
  await h.stop();
});

const methodNames = Object.keys(methods);

/** What a confused or hostile client might send, one item at a time. */
const junk = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => ({ bytes: Buffer.from(b) })),
  fc.jsonValue({ maxDepth: 3 }).map((x) => ({ bytes: encodeFrame(x) })),
  fc.nat({ max: 0xffffffff }).map((n) => {
    const b = Buffer.alloc(4 + 16);
    b.writeUInt32BE(n, 0);
    return { bytes: b };
  }),
  fc
    .record({
      id: fc.oneof(fc.nat(), fc.integer(), fc.string()),
      method: fc.oneof(fc.constantFrom(...methodNames), fc.string()),
      params: fc.oneof(fc.anything({ maxDepth: 2 }), fc.constant(undefined)),
    })
    .map((r) => ({ bytes: encodeFrame({ type: 'request', ...r }) })),
  fc
    .record({
      protocol: fc.record({ major: fc.integer({ min: -1, max: 3 }), minor: fc.nat(5) }),
      token: fc.oneof(fc.constant(TOKEN), fc.string()),
    })
    .map((r) => ({ bytes: encodeFrame({ type: 'hello', build: 'fuzz', ...r }) })),
);

describe('IpcServer fuzz', () => {
  it('survives random frames on many connections and then serves a well-behaved client', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(junk, { maxLength: 20 }), async (hello, items) => {
        const raw = await RawClient.connect(h.path);
        if (hello) raw.hello();
        for (const item of items) raw.sendBytes(item.bytes);
        // Whatever came back must be frames of the protocol, never a crash.
        await new Promise((r) => setTimeout(r, 5));
        raw.socket.destroy();
        await raw.closedPromise;
        for (const f of raw.frames) {
          expect(['hello', 'response', 'error', 'event']).toContain((f as { type: string }).type);
        }
      }),
      { numRuns: 150 },
    );
    const c = await h.client();
    expect(c.server.protocol).toEqual(PROTOCOL_VERSION);
    expect((await c.call('stats.get')).conntrackMax).toBe(65536);
    const rule = await c.call('rules.add', {
      action: 'allow',
      match: { exe: '/usr/bin/ssh' },
      duration: { kind: 'forever' },
    });
    expect(rule.match.exe).toBe('/usr/bin/ssh');
    expect(h.logs.filter((l) => l.level === 'error')).toEqual([]);
  }, 60_000);
});
