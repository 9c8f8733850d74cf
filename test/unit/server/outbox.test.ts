import { describe, expect, it } from 'vitest';
import { FrameDecoder, parseFramePayload } from '../../../helper/protocol/framing.js';
import type { FlowsEvent } from '../../../helper/protocol/messages.js';
import { Outbox, type ItemKind, type OutboxOptions } from '../../../helper/server/outbox.js';
import { makeFlow, makeHistoryEntry } from '../../support/fake-helper-service.js';

/** A socket double: takes everything until `blocked`, then holds it. */
class Sink {
  written: Buffer[] = [];
  held = 0;
  blocked = false;
  write(frame: Buffer): void {
    if (this.blocked) this.held += frame.length;
    else this.written.push(frame);
  }
  get pendingBytes(): number {
    return this.held;
  }
  events(): { topic: string; data: FlowsEvent }[] {
    const d = new FrameDecoder();
    return this.written.flatMap((b) =>
      d.push(b).map((x) => parseFramePayload((x as { payload: Buffer }).payload)),
    ) as { topic: string; data: FlowsEvent }[];
  }
}

const OPTIONS: OutboxOptions = {
  maxQueuedBytes: 10_000,
  highWaterBytes: 64 * 1024,
  flowIntervalMs: 0,
  chunkTargetBytes: 2000,
  maxFrameBytes: 8192,
};

function make(options: Partial<OutboxOptions> = {}) {
  const sink = new Sink();
  const overflows: ItemKind[] = [];
  const oversize: number[] = [];
  const errors: Error[] = [];
  const box = new Outbox(
    sink,
    { ...OPTIONS, ...options },
    {
      overflow: (k) => void overflows.push(k),
      oversizeItem: (_t, n) => void oversize.push(n),
      encodeError: (e) => void errors.push(e),
    },
  );
  return { sink, box, overflows, oversize, errors };
}

describe('Outbox flow merging', () => {
  it('merges per id: removed then added is an update, updated then removed a removal', () => {
    const { sink, box } = make();
    box.mergeFlows({ added: [], updated: [], removed: [1] });
    box.mergeFlows({ added: [makeFlow(1, { mark: 7 })], updated: [], removed: [] });
    box.mergeFlows({ added: [], updated: [makeFlow(2)], removed: [] });
    box.mergeFlows({ added: [], updated: [], removed: [2] });
    box.mergeFlows({ added: [makeFlow(3)], updated: [makeFlow(3, { mark: 1 })], removed: [] });
    box.pump();
    const [e] = sink.events();
    expect(e!.data).toMatchObject({ kind: 'delta', removed: [2] });
    const delta = e!.data as Extract<FlowsEvent, { kind: 'delta' }>;
    expect(delta.updated.map((f) => [f.id, f.mark])).toEqual([[1, 7]]);
    expect(delta.added.map((f) => [f.id, f.mark])).toEqual([[3, 1]]);
  });

  it('splits a large delta into frames under the limit and leaves out a flow too big for any', () => {
    const { sink, box, oversize } = make();
    const huge = makeFlow(999, {
      host: 'x'.repeat(4000),
      process: {
        ...makeHistoryEntry(1).request.process!,
        cmdline: Array.from({ length: 10 }, () => 'y'.repeat(1000)),
      },
    });
    const big = makeFlow(998, { host: 'h'.repeat(4000) });
    box.mergeFlows({
      added: [...Array.from({ length: 200 }, (_, i) => makeFlow(i + 1)), huge, big],
      updated: [],
      removed: [],
    });
    box.pump();
    const sizes = sink.written.map((b) => b.length - 4);
    expect(sizes.length).toBeGreaterThan(5);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(8192);
    const ids = sink
      .events()
      .flatMap((e) => (e.data as { added: { id: number }[] }).added.map((f) => f.id));
    expect(new Set(ids).size).toBe(201); // 200 + big; huge is left out
    expect(ids).toContain(998);
    expect(oversize).toHaveLength(1);
  });

  it('stops at the high-water mark and resumes when pumped again', () => {
    const { sink, box } = make({ highWaterBytes: 16 * 1024 });
    box.startSnapshot(Array.from({ length: 500 }, (_, i) => makeFlow(i + 1)));
    sink.blocked = true;
    box.pump();
    // One frame was handed over (it is now "in the socket"), then it stopped.
    expect(sink.held).toBeGreaterThan(0);
    expect(box.drained).toBe(false);
    sink.blocked = false;
    sink.held = 0;
    box.pump();
    const kinds = sink.events().map((e) => e.data.kind);
    expect(kinds[0]).toBe('snapshot-chunk'); // begin went to the blocked socket
    expect(kinds.at(-1)).toBe('snapshot-end');
    expect(box.drained).toBe(true);
  });
});

describe('Outbox publisher bugs', () => {
  it('reports a flow that cannot be encoded, drops the flow state and keeps pumping', () => {
    const { sink, box, errors } = make();
    const bad = makeFlow(1) as unknown as Record<string, unknown>;
    bad['bytesIn'] = 10n; // JSON.stringify throws on bigint
    box.mergeFlows({
      added: [bad as unknown as ReturnType<typeof makeFlow>],
      updated: [],
      removed: [],
    });
    box.enqueue(Buffer.from([0, 0, 0, 2, 0x7b, 0x7d]), 'response');
    expect(() => box.pump()).not.toThrow();
    expect(errors).toHaveLength(1);
    expect(sink.written).toHaveLength(1);
    expect(box.drained).toBe(true);
  });
});

describe('Outbox bound', () => {
  it('refuses an event past the bound and reports it; responses are queued and reported', () => {
    const { box, overflows } = make({ maxQueuedBytes: 100 });
    expect(box.enqueue(Buffer.alloc(60), 'event')).toBe(true);
    expect(box.enqueue(Buffer.alloc(60), 'event')).toBe(false);
    expect(overflows).toEqual(['event']);
    expect(box.enqueue(Buffer.alloc(60), 'response')).toBe(true);
    expect(overflows).toEqual(['event', 'response']);
    box.dropEvents();
    expect(box.queuedFrames).toBe(1); // the response survives a cut-off
    expect(box.queuedBytes).toBe(60);
  });
});
