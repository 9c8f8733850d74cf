import {
  AF_UNSPEC,
  NFNL_SUBSYS_QUEUE,
  NLA_F_NESTED,
  NLM_F_REQUEST,
  nfnlMsgType,
} from '../netlink/constants.js';
import { HOST_LITTLE_ENDIAN } from '../netlink/endian.js';
import { GrowableBuffer } from '../netlink/growable-buffer.js';
import { checkU32, NetlinkWriter } from '../netlink/writer.js';
import { CTA_LABELS, CTA_LABELS_MASK, CTA_MARK } from '../conntrack/constants.js';
import * as Q from './constants.js';

export const NFQNL_CONFIG_TYPE = nfnlMsgType(NFNL_SUBSYS_QUEUE, Q.NFQNL_MSG_CONFIG);
export const NFQNL_VERDICT_TYPE = nfnlMsgType(NFNL_SUBSYS_QUEUE, Q.NFQNL_MSG_VERDICT);
export const NFQNL_VERDICT_BATCH_TYPE = nfnlMsgType(NFNL_SUBSYS_QUEUE, Q.NFQNL_MSG_VERDICT_BATCH);

/** Largest NFQA_PAYLOAD a verdict can carry (the attribute length is a u16). */
export const MAX_VERDICT_PAYLOAD = 0xffff - 4;

export type CopyMode = 'none' | 'meta' | 'packet';

export function copyModeValue(mode: CopyMode): number {
  switch (mode) {
    case 'none':
      return Q.NFQNL_COPY_NONE;
    case 'meta':
      return Q.NFQNL_COPY_META;
    case 'packet':
      return Q.NFQNL_COPY_PACKET;
  }
}

function checkQueue(queue: number): void {
  if (!Number.isInteger(queue) || queue < 0 || queue > 0xffff) {
    throw new RangeError(`queue number ${queue} out of range 0..65535`);
  }
}

function configMessage(queue: number, body: (w: NetlinkWriter) => void): Uint8Array {
  checkQueue(queue);
  const w = new NetlinkWriter(64);
  w.beginMessage(NFQNL_CONFIG_TYPE, NLM_F_REQUEST).nfgenmsg(AF_UNSPEC, 0, queue);
  body(w);
  return w.endMessage().finish();
}

/** struct nfqnl_msg_config_cmd: command u8, _pad u8, pf be16. */
export function configCommand(command: number, pf = 0): Uint8Array {
  const cmd = new Uint8Array(4);
  cmd[0] = command;
  new DataView(cmd.buffer).setUint16(2, pf, false);
  return cmd;
}

/** NFQNL_MSG_CONFIG with NFQA_CFG_CMD (bind or unbind). */
export function encodeConfigCommand(queue: number, command: number, pf = 0): Uint8Array {
  return configMessage(queue, (w) => w.bytes(Q.NFQA_CFG_CMD, configCommand(command, pf)));
}

/** struct nfqnl_msg_config_params: copy_range be32, copy_mode u8, packed (5 bytes). */
export function configParams(copyRange: number, copyMode: number): Uint8Array {
  checkU32(copyRange, 'copy range');
  const params = new Uint8Array(5);
  new DataView(params.buffer).setUint32(0, copyRange, false);
  params[4] = copyMode;
  return params;
}

export interface ConfigSettings {
  /** NFQA_CFG_CMD, written first: binding and configuring in one message
   * leaves no window in which the kernel queues packets with default params. */
  command?: number;
  copyMode?: number;
  copyRange?: number;
  maxQueueLength?: number;
  /** NFQA_CFG_FLAGS value and NFQA_CFG_MASK (which flags to change). */
  flags?: { value: number; mask: number };
}

/** NFQNL_MSG_CONFIG with params, queue length and flags (each only if given). */
export function encodeConfig(queue: number, settings: ConfigSettings): Uint8Array {
  return configMessage(queue, (w) => {
    if (settings.command !== undefined) w.bytes(Q.NFQA_CFG_CMD, configCommand(settings.command));
    if (settings.copyMode !== undefined) {
      w.bytes(Q.NFQA_CFG_PARAMS, configParams(settings.copyRange ?? 0xffff, settings.copyMode));
    }
    if (settings.maxQueueLength !== undefined) {
      checkU32(settings.maxQueueLength, 'queue length');
      w.u32be(Q.NFQA_CFG_QUEUE_MAXLEN, settings.maxQueueLength);
    }
    if (settings.flags) {
      checkU32(settings.flags.value, 'flags');
      checkU32(settings.flags.mask, 'flag mask');
      w.u32be(Q.NFQA_CFG_MASK, settings.flags.mask);
      w.u32be(Q.NFQA_CFG_FLAGS, settings.flags.value);
    }
  });
}

export type VerdictKind = 'accept' | 'drop' | 'repeat' | 'queue' | 'stop';

/** What a verdict may change besides the packet's fate. */
export interface VerdictOptions {
  /** NFQA_MARK: the packet mark (skb->mark). */
  mark?: number;
  /** NFQA_CT { CTA_MARK }: the connection mark. Needs the kernel's nfqueue
   * conntrack glue (CONFIG_NETFILTER_NETLINK_GLUE_CT); without it the kernel
   * ignores it silently, so NfQueue refuses it when it knows the glue is absent. */
  connmark?: number;
  /** NFQA_CT { CTA_LABELS, CTA_LABELS_MASK }: connection labels (same glue). */
  connlabels?: { labels: Uint8Array; mask?: Uint8Array };
  /** NFQA_PAYLOAD: replaces the packet (from the network header). Fix the
   * checksums first (helper/packet: recomputeChecksums). */
  payload?: Uint8Array;
  /** NFQA_PRIORITY: skb->priority (Linux 6.1+; older kernels ignore it). */
  priority?: number;
}

/** The 32-bit verdict for a kind (queue: NF_QUEUE | number << 16). */
export function verdictValue(kind: VerdictKind, queueTo = 0, bypass = false): number {
  switch (kind) {
    case 'accept':
      return Q.NF_ACCEPT;
    case 'drop':
      return Q.NF_DROP;
    case 'repeat':
      return Q.NF_REPEAT;
    case 'stop':
      return Q.NF_STOP;
    case 'queue':
      checkQueue(queueTo);
      return Q.nfQueueVerdict(queueTo, bypass);
  }
}

/** Checks options once, before a verdict is recorded, so that a bad option
 * throws at the caller instead of failing later in the sender. */
export function validateVerdictOptions(o: VerdictOptions | undefined): void {
  if (!o) return;
  if (o.mark !== undefined) checkU32(o.mark, 'mark');
  if (o.connmark !== undefined) checkU32(o.connmark, 'connmark');
  if (o.priority !== undefined) checkU32(o.priority, 'priority');
  if (o.payload !== undefined && o.payload.byteLength > MAX_VERDICT_PAYLOAD) {
    throw new RangeError(`payload of ${o.payload.byteLength} bytes > ${MAX_VERDICT_PAYLOAD}`);
  }
  if (o.connlabels) {
    const { labels, mask } = o.connlabels;
    if (labels.byteLength === 0 || labels.byteLength > 16 || labels.byteLength % 4 !== 0) {
      throw new RangeError('connlabels must be 4, 8, 12 or 16 bytes');
    }
    if (mask && mask.byteLength !== labels.byteLength) {
      throw new RangeError('connlabels mask must be as long as the labels');
    }
  }
}

/** True when the verdict changes nothing but the fate (batchable). */
export function isPlainVerdict(o: VerdictOptions | undefined): boolean {
  return (
    !o ||
    (o.mark === undefined &&
      o.connmark === undefined &&
      o.connlabels === undefined &&
      o.payload === undefined &&
      o.priority === undefined)
  );
}

/**
 * Appends verdict messages (no NLM_F_ACK: the kernel answers only errors)
 * into one reusable buffer, so that a burst of verdicts is one datagram and
 * one syscall. Hand-encoded: this is the hot path.
 */
export class VerdictBuffer extends GrowableBuffer {
  /** Messages in the buffer. */
  count = 0;

  constructor(initialSize = 4096) {
    super(initialSize);
  }

  private attrHeader(at: number, len: number, type: number): void {
    this.view.setUint16(at, len, HOST_LITTLE_ENDIAN);
    this.view.setUint16(at + 2, type, HOST_LITTLE_ENDIAN);
  }

  private u32beAttr(type: number, value: number): void {
    const at = this.reserve(8);
    this.attrHeader(at, 8, type);
    this.view.setUint32(at + 4, value >>> 0, false);
  }

  private bytesAttr(type: number, value: Uint8Array): void {
    const padded = (4 + value.byteLength + 3) & ~3;
    const at = this.reserve(padded);
    this.attrHeader(at, 4 + value.byteLength, type);
    this.buf.set(value, at + 4);
    this.buf.fill(0, at + 4 + value.byteLength, at + padded);
  }

  /**
   * One NFQNL_MSG_VERDICT (or NFQNL_MSG_VERDICT_BATCH: every packet with an
   * id up to `id` in queue order). Options must be validated already.
   */
  append(queue: number, verdict: number, id: number, batch = false, o?: VerdictOptions): this {
    const start = this.reserve(16 + 4 + 12);
    const v = this.view;
    v.setUint16(
      start + 4,
      batch ? NFQNL_VERDICT_BATCH_TYPE : NFQNL_VERDICT_TYPE,
      HOST_LITTLE_ENDIAN,
    );
    v.setUint16(start + 6, NLM_F_REQUEST, HOST_LITTLE_ENDIAN);
    v.setUint32(start + 8, 0, HOST_LITTLE_ENDIAN);
    v.setUint32(start + 12, 0, HOST_LITTLE_ENDIAN);
    // nfgenmsg: family AF_UNSPEC, version 0, res_id (queue) big endian
    v.setUint8(start + 16, AF_UNSPEC);
    v.setUint8(start + 17, 0);
    v.setUint16(start + 18, queue, false);
    // NFQA_VERDICT_HDR { verdict be32, id be32 }
    this.attrHeader(start + 20, 12, Q.NFQA_VERDICT_HDR);
    v.setUint32(start + 24, verdict >>> 0, false);
    v.setUint32(start + 28, id >>> 0, false);
    if (o) {
      if (o.mark !== undefined) this.u32beAttr(Q.NFQA_MARK, o.mark);
      if (o.priority !== undefined) this.u32beAttr(Q.NFQA_PRIORITY, o.priority);
      if (o.connmark !== undefined || o.connlabels !== undefined) {
        const nest = this.reserve(4);
        if (o.connmark !== undefined) this.u32beAttr(CTA_MARK, o.connmark);
        if (o.connlabels) {
          this.bytesAttr(CTA_LABELS, o.connlabels.labels);
          this.bytesAttr(
            CTA_LABELS_MASK,
            o.connlabels.mask ?? new Uint8Array(o.connlabels.labels.byteLength).fill(0xff),
          );
        }
        this.attrHeader(nest, this.len - nest, Q.NFQA_CT | NLA_F_NESTED);
      }
      if (o.payload !== undefined) this.bytesAttr(Q.NFQA_PAYLOAD, o.payload);
    }
    this.view.setUint32(start, this.len - start, HOST_LITTLE_ENDIAN);
    this.count++;
    return this;
  }

  /** The messages so far, as a view (valid until the next append or reset). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  reset(): this {
    this.len = 0;
    this.count = 0;
    return this;
  }
}

/** One NFQNL_MSG_VERDICT as a new buffer (for tests and one-off use). */
export function encodeVerdict(
  queue: number,
  verdict: number,
  id: number,
  options?: VerdictOptions,
): Uint8Array {
  checkQueue(queue);
  validateVerdictOptions(options);
  return new VerdictBuffer(64).append(queue, verdict, id, false, options).bytes().slice();
}

/** One NFQNL_MSG_VERDICT_BATCH: `verdict` (and mark) for every queued id <= `id`. */
export function encodeVerdictBatch(
  queue: number,
  verdict: number,
  id: number,
  mark?: number,
): Uint8Array {
  checkQueue(queue);
  const o = mark === undefined ? undefined : { mark };
  validateVerdictOptions(o);
  return new VerdictBuffer(64).append(queue, verdict, id, true, o).bytes().slice();
}
