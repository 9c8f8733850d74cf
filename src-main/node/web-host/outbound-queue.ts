/**
 * One page's outbound messages, in order, with a bounded backlog: messages
 * count against maxBufferedBytes, and a flows snapshot is serialised a chunk
 * at a time as the socket drains (a whole table in one message could be tens
 * of MiB), so a delta never overtakes the snapshot it follows. A page that
 * does not read is cut off (it reconnects and gets a fresh snapshot), like
 * the helper's slow-consumer cut-off.
 */
import type { WebSocket } from 'ws';
import type { Flow, PushChannel, PushChannels } from '../../common/api.js';
import { WS_FLOWS_PER_CHUNK, type WsServerMessage } from '../../common/web-protocol.js';

export interface OutboundLimits {
  /** Unsent messages beyond this: cut off. */
  maxBufferedBytes: number;
  /** The pump stops handing data to a socket holding this much. */
  highWaterBytes: number;
}

type Item = { text: string } | { next: () => string | null };

export class OutboundQueue {
  private readonly items: Item[] = [];
  private queuedBytes = 0;
  private pumpTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ws: WebSocket,
    private readonly limits: OutboundLimits,
    private readonly log: (message: string) => void,
  ) {}

  send(m: WsServerMessage): void {
    this.enqueue({ text: JSON.stringify(m) });
  }

  push<K extends PushChannel>(channel: K, payload: PushChannels[K]): void {
    if (channel === 'flows') {
      const e = payload as PushChannels['flows'];
      if (e.kind === 'snapshot') return this.enqueue(flowsChunks(e.flows));
    }
    this.send({ type: 'push', channel, payload });
  }

  /** The socket closed: nothing more is sent. */
  clear(): void {
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.items.length = 0;
  }

  private enqueue(item: Item): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if ('text' in item) {
      this.queuedBytes += item.text.length;
      if (this.queuedBytes > this.limits.maxBufferedBytes) return this.cutOff();
    }
    this.items.push(item);
    this.pump();
  }

  private pump(): void {
    const ws = this.ws;
    while (
      this.items.length > 0 &&
      ws.readyState === ws.OPEN &&
      ws.bufferedAmount < this.limits.highWaterBytes
    ) {
      const head = this.items[0]!;
      if ('text' in head) {
        this.items.shift();
        this.queuedBytes -= head.text.length;
        ws.send(head.text);
      } else {
        const text = head.next();
        if (text === null) this.items.shift();
        else ws.send(text);
      }
    }
    if (this.items.length > 0 && ws.readyState === ws.OPEN && this.pumpTimer === null) {
      this.pumpTimer = setTimeout(() => {
        this.pumpTimer = null;
        this.pump();
      }, 5);
    }
  }

  private cutOff(): void {
    // A close frame would wait behind the data it does not read: cut it.
    this.log('web host: a page is not reading its messages; cutting it off');
    this.items.length = 0;
    this.queuedBytes = 0;
    this.ws.terminate();
  }
}

/** A flows snapshot as `flows-chunk` messages, made as the page reads them. */
function flowsChunks(flows: Flow[]): Item {
  let i = 0;
  let done = false;
  return {
    next: () => {
      if (done) return null;
      const chunk = flows.slice(i, i + WS_FLOWS_PER_CHUNK);
      i += WS_FLOWS_PER_CHUNK;
      done = i >= flows.length;
      return JSON.stringify({ type: 'flows-chunk', flows: chunk, last: done });
    },
  };
}
