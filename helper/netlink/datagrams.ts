/** The wire side of sending: request headers, ACK barriers, and packing requests into datagrams. */
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_NOOP } from './constants.js';
import { HOST_LITTLE_ENDIAN } from './endian.js';
import type { Pending } from './requests.js';

/** Size of the NLMSG_NOOP barrier message (a bare nlmsghdr). */
const BARRIER_BYTES = 16;

/** Sets a request's flags (REQUEST, ACK unless silent, DUMP), sequence number and port 0. */
export function writeRequestHeader(
  message: Uint8Array,
  seq: number,
  silent: boolean,
  dump: boolean,
): void {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const base = view.getUint16(6, HOST_LITTLE_ENDIAN) | NLM_F_REQUEST;
  const flags = silent ? base & ~NLM_F_ACK : base | NLM_F_ACK;
  view.setUint16(6, dump ? flags | NLM_F_DUMP : flags, HOST_LITTLE_ENDIAN);
  view.setUint32(8, seq, HOST_LITTLE_ENDIAN);
  view.setUint32(12, 0, HOST_LITTLE_ENDIAN);
}

/**
 * A NLMSG_NOOP (ACK flag set when stamped): the kernel handles a datagram's messages
 * in order, so its ACK means every silent request before it succeeded (a refusal
 * would have been answered before it).
 */
export function barrierMessage(): Uint8Array {
  const message = new Uint8Array(BARRIER_BYTES);
  const view = new DataView(message.buffer);
  view.setUint32(0, BARRIER_BYTES, HOST_LITTLE_ENDIAN);
  view.setUint16(4, NLMSG_NOOP, HOST_LITTLE_ENDIAN);
  return message;
}

/**
 * Packs stamped requests, in order, into datagrams of at most `maxDatagram` bytes.
 * A datagram with silent requests ends with the barrier `barrierFor` makes for them.
 */
export function packDatagrams(
  requests: readonly Pending[],
  maxDatagram: number,
  barrierFor: (silent: Pending[]) => Pending,
): Uint8Array[] {
  const datagrams: Uint8Array[] = [];
  let group: Pending[] = [];
  let size = 0;
  const seal = () => {
    if (group.length === 0) return;
    const silent = group.filter((g) => g.silent);
    if (silent.length > 0) {
      const barrier = barrierFor(silent);
      group.push(barrier);
      size += barrier.message.byteLength;
    }
    if (group.length === 1) datagrams.push(group[0]!.message);
    else {
      const out = new Uint8Array(size);
      let at = 0;
      for (const g of group) {
        out.set(g.message, at);
        at += (g.message.byteLength + 3) & ~3;
      }
      datagrams.push(out);
    }
    group = [];
    size = 0;
  };
  let groupSilent = false;
  for (const p of requests) {
    const len = (p.message.byteLength + 3) & ~3;
    // Room is kept for a barrier after silent requests.
    const reserve = groupSilent || p.silent ? BARRIER_BYTES : 0;
    if (size + len + reserve > maxDatagram) {
      seal();
      groupSilent = false;
    }
    group.push(p);
    size += len;
    groupSilent ||= p.silent;
  }
  seal();
  return datagrams;
}
