import type { Flow } from '../conntrack/types.js';
import type { RawAttribute } from '../netlink/attributes.js';
import { ctInfoName } from './decode.js';
import type { VerdictKind, VerdictOptions } from './encode.js';
import { NfQueueError } from './errors.js';
import { WAITING, type PendingEntry } from './outstanding.js';
import type {
  ConntrackInfoName,
  HardwareAddress,
  PacketTimestamp,
  QueuedPacket,
  SkbInfo,
  VlanInfo,
} from './types.js';

/** The options a verdict method takes. */
export type PacketVerdictOptions = VerdictOptions;

/** A verdict's options plus the target of a `queue` verdict. */
export type TargetedVerdictOptions = VerdictOptions & { queue?: number; bypass?: boolean };

/** What records a packet's verdict: its queue. */
export interface VerdictTaker {
  decideEntry(entry: PendingEntry, kind: VerdictKind, options?: TargetedVerdictOptions): void;
}

/**
 * One queued packet. Its attributes are read-only; its fate is decided once,
 * with accept/drop/repeat/queue/stop (or by the deadline).
 *
 * `payload` is a zero-copy view into the socket's receive buffer, valid
 * while the onPacket callback runs; reading it later throws STALE_VIEW. Call
 * `copy()` (or `copyPayload()`) inside the callback to keep it. Packets from
 * the async iterator are copies already.
 */
export class NfQueuePacket {
  private live = true;
  private readonly detached: boolean;

  /** @internal */
  constructor(
    private readonly owner: VerdictTaker,
    private readonly entry: PendingEntry,
    private readonly data: QueuedPacket,
    detached = false,
  ) {
    this.detached = detached;
  }

  get queueNumber(): number {
    return this.data.queue;
  }
  get family(): number {
    return this.data.family;
  }
  get id(): number {
    return this.data.id;
  }
  get hwProtocol(): number {
    return this.data.hwProtocol;
  }
  get hook(): number {
    return this.data.hook;
  }
  get mark(): number | undefined {
    return this.data.mark;
  }
  get timestamp(): PacketTimestamp | undefined {
    return this.data.timestamp;
  }
  get indev(): number | undefined {
    return this.data.indev;
  }
  get outdev(): number | undefined {
    return this.data.outdev;
  }
  get physindev(): number | undefined {
    return this.data.physindev;
  }
  get physoutdev(): number | undefined {
    return this.data.physoutdev;
  }
  get hwaddr(): HardwareAddress | undefined {
    return this.data.hwaddr;
  }
  get ct(): Flow | undefined {
    return this.data.ct;
  }
  get ctInfo(): number | undefined {
    return this.data.ctInfo;
  }
  get ctInfoName(): ConntrackInfoName | undefined {
    return this.data.ctInfo === undefined ? undefined : ctInfoName(this.data.ctInfo);
  }
  get capLen(): number | undefined {
    return this.data.capLen;
  }
  get skbInfo(): SkbInfo | undefined {
    return this.data.skbInfo;
  }
  get uid(): number | undefined {
    return this.data.uid;
  }
  get gid(): number | undefined {
    return this.data.gid;
  }
  get secctx(): string | undefined {
    return this.data.secctx;
  }
  get vlan(): VlanInfo | undefined {
    return this.data.vlan;
  }
  get l2hdr(): Uint8Array | undefined {
    return this.data.l2hdr;
  }
  get priority(): number | undefined {
    return this.data.priority;
  }
  get exp(): Uint8Array | undefined {
    return this.data.exp;
  }
  get unknown(): RawAttribute[] | undefined {
    return this.data.unknown;
  }

  /** The packet bytes from the network header (see the class comment). */
  get payload(): Uint8Array | undefined {
    if (!this.live && !this.detached) {
      throw new NfQueueError(
        'STALE_VIEW',
        `payload of packet ${this.id} read after its callback returned; use packet.copy() inside the callback`,
        { queue: this.data.queue, ids: [this.id] },
      );
    }
    return this.data.payload;
  }

  /** A copy of the payload that stays valid. */
  copyPayload(): Uint8Array | undefined {
    return this.payload?.slice();
  }

  /** A copy of this packet whose payload stays valid; verdicts on either decide the same packet. */
  copy(): NfQueuePacket {
    const payload = this.payload;
    const data: QueuedPacket = { ...this.data };
    if (payload) data.payload = payload.slice();
    return new NfQueuePacket(this.owner, this.entry, data, true);
  }

  /** Every attribute as a plain object (payload copied). */
  toObject(): QueuedPacket {
    const out: QueuedPacket = { ...this.data };
    const payload = this.payload;
    if (payload) out.payload = payload.slice();
    return out;
  }

  /** True once a verdict was given (by the caller, the deadline or close). */
  get decided(): boolean {
    return this.entry.state !== WAITING;
  }
  /** The verdict was given by the deadline or by close(). */
  get decidedByDefault(): boolean {
    return this.decided && this.entry.byDeadline;
  }

  /** @internal: ends the zero-copy window. */
  endView(): void {
    this.live = false;
  }

  verdict(kind: VerdictKind, options?: TargetedVerdictOptions): void {
    this.owner.decideEntry(this.entry, kind, options);
  }
  accept(options?: PacketVerdictOptions): void {
    this.owner.decideEntry(this.entry, 'accept', options);
  }
  drop(options?: PacketVerdictOptions): void {
    this.owner.decideEntry(this.entry, 'drop', options);
  }
  /** Re-runs the hook from its start (give it a mark your queue rule skips, or it comes back). */
  repeat(options?: PacketVerdictOptions): void {
    this.owner.decideEntry(this.entry, 'repeat', options);
  }
  /** Sends the packet to another queue; with `bypass`, accepts it if nobody listens there. */
  queue(queue: number, options?: PacketVerdictOptions & { bypass?: boolean }): void {
    this.owner.decideEntry(this.entry, 'queue', { ...options, queue });
  }
  /** Accepts and skips the remaining hook functions (NF_STOP). */
  stop(options?: PacketVerdictOptions): void {
    this.owner.decideEntry(this.entry, 'stop', options);
  }
}
