import type { NetlinkTransport } from '../netlink/socket.js';
import { countVerdict, type NfQueueCounters } from './counters.js';
import { VerdictBuffer, type VerdictOptions } from './encode.js';
import { NfQueueError } from './errors.js';
import type { OutstandingTable, VerdictOpSink } from './outstanding.js';

const MAX_DATAGRAM = 65536;
const RESOLVED = Promise.resolve();

/**
 * Sends a queue's recorded verdicts: all those of one tick in one datagram
 * (split at 64 KiB), coalesced by the table, without NLM_F_ACK (only errors
 * come back, see the queue's kernel error handling).
 */
export class VerdictSender implements VerdictOpSink {
  private readonly buffer = new VerdictBuffer();
  /** Ids of the verdicts in the datagram being built (reported if it fails),
   * [0, idCount): never shortened, see OutstandingTable's arrival list. */
  private readonly ids: number[] = [];
  private idCount = 0;
  private scheduled = false;

  constructor(
    private readonly queue: number,
    private readonly table: OutstandingTable,
    private readonly transport: NetlinkTransport,
    private readonly counters: NfQueueCounters,
    private readonly report: (error: NfQueueError) => void,
  ) {}

  /** Flushes at the end of the current tick. */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // A reaction on a settled promise: a microtask without queueMicrotask's
    // per-call AsyncResource and bound function (measured as GC pressure).
    void RESOLVED.then(this.flushTask);
  }

  private readonly flushTask = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /** Sends every recorded verdict now. */
  flush(): void {
    if (this.table.drainTo(this) > 0) this.send();
  }

  /** @internal: one message from the table's drain. */
  op(
    batch: boolean,
    verdict: number,
    id: number,
    _firstId: number,
    count: number,
    options: VerdictOptions | undefined,
  ): void {
    const size = 32 + (options?.payload ? options.payload.byteLength + 8 : 0) + 64;
    if (this.buffer.length > 0 && this.buffer.length + size > MAX_DATAGRAM) this.send();
    this.buffer.append(this.queue, verdict, id, batch, options);
    this.ids[this.idCount++] = id;
    countVerdict(this.counters, verdict, count, batch);
  }

  private send(): void {
    if (this.buffer.length === 0) return;
    try {
      this.transport.send(this.buffer.bytes());
      this.counters.datagramsSent++;
    } catch (error) {
      this.counters.sendErrors++;
      this.report(
        new NfQueueError(
          'SEND_FAILED',
          `queue ${this.queue}: sending verdicts failed: ${(error as Error).message}`,
          {
            queue: this.queue,
            ids: this.ids.slice(0, this.idCount),
            cause: error,
          },
        ),
      );
    } finally {
      this.buffer.reset();
      this.idCount = 0;
    }
  }
}
