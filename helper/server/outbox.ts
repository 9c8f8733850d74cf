/**
 * One client's outbound queue. publish() runs in the helper's verdict loop,
 * so nothing here may wait for a client: frames are queued and a pump hands
 * them to the socket only while its buffer is below a high-water mark.
 *
 * Per topic:
 * - responses, prompts, verdicts and notices: FIFO, never merged;
 * - stats, state: only the latest is kept;
 * - flows: changes are merged per flow id and flushed at most once per
 *   `flowIntervalMs`; the snapshot and each flush are turned into frames
 *   lazily, one chunk at a time as the socket drains, so a 100,000-flow
 *   snapshot is never held encoded.
 * Only FIFO frames count against `maxQueuedBytes` (the merged forms are
 * bounded by the number of flows); passing the bound is reported to the
 * connection, which cuts the client off from events or closes it.
 */
import type { FlowsDelta } from '../protocol/messages.js';
import type { Flow } from '../protocol/model.js';

/** The socket as the outbox sees it (a net.Socket in the server, a double in tests). */
export interface OutboxSink {
  write(frame: Buffer): void;
  /** Bytes given to write() and not yet taken by the kernel. */
  readonly pendingBytes: number;
}

export interface OutboxOptions {
  maxQueuedBytes: number;
  highWaterBytes: number;
  flowIntervalMs: number;
  chunkTargetBytes: number;
  maxFrameBytes: number;
}

export interface OutboxHooks {
  /** Queued bytes would pass the bound. For an event, it was not queued. */
  overflow(kind: ItemKind): void;
  /** One flow alone does not fit a frame: it was left out. */
  oversizeItem(topic: string, bytes: number): void;
  /** Encoding failed (a publisher bug, e.g. a bigint in a flow): the flow
   * state was dropped, and the pump goes on with the rest. */
  encodeError(error: Error): void;
}

/** Responses and notices are never dropped by a cut-off; events are. */
export type ItemKind = 'response' | 'notice' | 'event';

type Pending = { op: 'added' | 'updated'; flow: Flow } | { op: 'removed' };

interface SnapshotCursor {
  flows: Flow[];
  index: number;
  begun: boolean;
}

interface DeltaCursor {
  entries: [number, Pending][];
  index: number;
}

/** Room for the envelope around a chunk's items. */
const ENVELOPE_BYTES = 256;

function eventJson(topic: string, dataJson: string): string {
  return `{"type":"event","topic":${JSON.stringify(topic)},"data":${dataJson}}`;
}

function frameOf(json: string): Buffer {
  const length = Buffer.byteLength(json, 'utf8');
  const frame = Buffer.allocUnsafe(4 + length);
  frame.writeUInt32BE(length, 0);
  frame.write(json, 4, 'utf8');
  return frame;
}

export class Outbox {
  private fifo: { frame: Buffer; kind: ItemKind }[] = [];
  private head = 0;
  private fifoBytes = 0;
  private readonly latest = new Map<string, Buffer>();
  private snapshot: SnapshotCursor | null = null;
  private pendingFlows = new Map<number, Pending>();
  private delta: DeltaCursor | null = null;
  private lastFlowFlush = -Infinity;
  private flowTimer: NodeJS.Timeout | null = null;
  private pumpScheduled = false;
  private closed = false;
  private handedBytes = 0;

  constructor(
    private readonly sink: OutboxSink,
    private readonly options: OutboxOptions,
    private readonly hooks: OutboxHooks,
  ) {}

  /** FIFO bytes plus what the socket still holds. */
  get queuedBytes(): number {
    return this.fifoBytes + this.sink.pendingBytes;
  }

  /** Bytes the socket has passed to the kernel so far: grows while the
   * client reads, stays put while it does not. */
  get flushedBytes(): number {
    return this.handedBytes - this.sink.pendingBytes;
  }

  /** Frames waiting in the FIFO (not yet handed to the socket). */
  get queuedFrames(): number {
    return this.fifo.length - this.head;
  }

  /** Nothing waits anywhere: the client has read everything it was sent. */
  get drained(): boolean {
    return (
      this.queuedBytes === 0 &&
      this.latest.size === 0 &&
      this.snapshot === null &&
      this.delta === null &&
      this.pendingFlows.size === 0
    );
  }

  /** Queues a frame. Returns false when an event was refused by the bound. */
  enqueue(frame: Buffer, kind: ItemKind): boolean {
    if (this.closed) return false;
    if (this.queuedBytes + frame.length > this.options.maxQueuedBytes) {
      if (kind === 'event') {
        this.hooks.overflow(kind);
        return false;
      }
      // A notice or response is queued anyway (it is small and is never
      // dropped); the connection decides whether the client survives.
      this.push(frame, kind);
      this.hooks.overflow(kind);
      return true;
    }
    this.push(frame, kind);
    return true;
  }

  /** stats/state: replaces any unsent frame of the same topic. */
  setLatest(topic: string, frame: Buffer): void {
    if (this.closed) return;
    this.latest.set(topic, frame);
    this.schedule();
  }

  /** Starts a flow snapshot (begin, chunks, end); deltas merged from now on
   * follow it. */
  startSnapshot(flows: Flow[]): void {
    if (this.closed) return;
    this.snapshot = { flows, index: 0, begun: false };
    this.pendingFlows.clear();
    this.delta = null;
    this.schedule();
  }

  /** Merges published flow changes per flow id (see docs/protocol.md). */
  mergeFlows(delta: FlowsDelta): void {
    if (this.closed) return;
    const pending = this.pendingFlows;
    for (const flow of delta.added) {
      const prev = pending.get(flow.id);
      pending.set(flow.id, {
        op: prev === undefined || prev.op === 'added' ? 'added' : 'updated',
        flow,
      });
    }
    for (const flow of delta.updated) {
      const prev = pending.get(flow.id);
      pending.set(flow.id, { op: prev?.op === 'added' ? 'added' : 'updated', flow });
    }
    for (const id of delta.removed) {
      // Added and removed before the client heard of it: nothing to say.
      if (pending.get(id)?.op === 'added') pending.delete(id);
      else pending.set(id, { op: 'removed' });
    }
    this.schedule();
  }

  /** The cut-off: drops every queued or merged event, keeps responses and notices. */
  dropEvents(): void {
    const kept = this.fifo.slice(this.head).filter((item) => item.kind !== 'event');
    this.fifo = kept;
    this.head = 0;
    this.fifoBytes = kept.reduce((n, item) => n + item.frame.length, 0);
    this.latest.clear();
    this.snapshot = null;
    this.delta = null;
    this.pendingFlows.clear();
    if (this.flowTimer) clearTimeout(this.flowTimer);
    this.flowTimer = null;
  }

  /** Drops flow state only (unsubscribe from `flows`). */
  dropFlows(): void {
    this.snapshot = null;
    this.delta = null;
    this.pendingFlows.clear();
  }

  dropLatest(topic: string): void {
    this.latest.delete(topic);
  }

  close(): void {
    this.closed = true;
    if (this.flowTimer) clearTimeout(this.flowTimer);
    this.flowTimer = null;
    this.fifo = [];
    this.head = 0;
    this.fifoBytes = 0;
    this.latest.clear();
    this.dropFlows();
  }

  /** Pumps on the next turn of the event loop, never inside publish(). */
  schedule(): void {
    if (this.pumpScheduled || this.closed) return;
    this.pumpScheduled = true;
    setImmediate(() => this.pump());
  }

  /** Hands frames to the socket while its buffer is below the high-water
   * mark; the connection calls it again on 'drain'. */
  pump(): void {
    this.pumpScheduled = false;
    while (!this.closed && this.sink.pendingBytes < this.options.highWaterBytes) {
      let frame: Buffer | undefined;
      try {
        frame = this.next();
      } catch (error) {
        // Runs from setImmediate: a throw here would take the helper down.
        this.dropFlows();
        this.hooks.encodeError(error as Error);
        continue;
      }
      if (!frame) break;
      this.handedBytes += frame.length;
      this.sink.write(frame);
    }
  }

  private push(frame: Buffer, kind: ItemKind): void {
    this.fifo.push({ frame, kind });
    this.fifoBytes += frame.length;
    this.schedule();
  }

  private next(): Buffer | undefined {
    if (this.head < this.fifo.length) {
      const item = this.fifo[this.head++]!;
      this.fifoBytes -= item.frame.length;
      if (this.head > 1024 && this.head * 2 > this.fifo.length) {
        this.fifo = this.fifo.slice(this.head);
        this.head = 0;
      }
      return item.frame;
    }
    for (const [topic, frame] of this.latest) {
      this.latest.delete(topic);
      return frame;
    }
    if (this.snapshot) return this.nextSnapshotFrame(this.snapshot);
    return this.nextDeltaFrame();
  }

  private nextSnapshotFrame(cursor: SnapshotCursor): Buffer {
    if (!cursor.begun) {
      cursor.begun = true;
      return frameOf(
        eventJson('flows', `{"kind":"snapshot-begin","total":${cursor.flows.length}}`),
      );
    }
    if (cursor.index >= cursor.flows.length) {
      this.snapshot = null;
      return frameOf(eventJson('flows', '{"kind":"snapshot-end"}'));
    }
    const parts: string[] = [];
    let bytes = 0;
    while (cursor.index < cursor.flows.length && bytes < this.options.chunkTargetBytes) {
      const item = this.itemJson(cursor.flows[cursor.index]!);
      if (item && parts.length > 0 && !this.fits(bytes + item.bytes)) break;
      cursor.index++;
      if (!item) continue;
      parts.push(item.json);
      bytes += item.bytes + 1;
    }
    return frameOf(eventJson('flows', `{"kind":"snapshot-chunk","flows":[${parts.join(',')}]}`));
  }

  private nextDeltaFrame(): Buffer | undefined {
    if (!this.delta) {
      if (this.pendingFlows.size === 0) return undefined;
      const now = Date.now();
      const due = this.lastFlowFlush + this.options.flowIntervalMs;
      if (now < due) {
        // Too soon: keep merging, and come back when the interval is over.
        this.flowTimer ??= setTimeout(() => {
          this.flowTimer = null;
          this.schedule();
        }, due - now);
        return undefined;
      }
      this.lastFlowFlush = now;
      this.delta = { entries: [...this.pendingFlows], index: 0 };
      this.pendingFlows = new Map();
    }
    const cursor = this.delta;
    const added: string[] = [];
    const updated: string[] = [];
    const removed: number[] = [];
    let bytes = 0;
    while (cursor.index < cursor.entries.length && bytes < this.options.chunkTargetBytes) {
      const [id, change] = cursor.entries[cursor.index]!;
      if (change.op === 'removed') {
        if (!this.fits(bytes + 11)) break;
        cursor.index++;
        removed.push(id);
        bytes += 11;
        continue;
      }
      const item = this.itemJson(change.flow);
      if (item && bytes > 0 && !this.fits(bytes + item.bytes)) break;
      cursor.index++;
      if (!item) continue;
      (change.op === 'added' ? added : updated).push(item.json);
      bytes += item.bytes + 1;
    }
    if (cursor.index >= cursor.entries.length) this.delta = null;
    if (added.length + updated.length + removed.length === 0) return this.nextDeltaFrame();
    return frameOf(
      eventJson(
        'flows',
        `{"kind":"delta","added":[${added.join(',')}],"updated":[${updated.join(',')}],"removed":[${removed.join(',')}]}`,
      ),
    );
  }

  private fits(bytes: number): boolean {
    return bytes + ENVELOPE_BYTES <= this.options.maxFrameBytes;
  }

  /** One flow's JSON and its UTF-8 size, or undefined (reported) when it
   * alone would not fit a frame. */
  private itemJson(flow: Flow): { json: string; bytes: number } | undefined {
    const json = JSON.stringify(flow);
    const bytes = Buffer.byteLength(json, 'utf8');
    if (!this.fits(bytes)) {
      this.hooks.oversizeItem('flows', bytes);
      return undefined;
    }
    return { json, bytes };
  }
}
