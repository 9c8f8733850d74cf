import type { KernelErrorDetails } from '../netlink/nfnl-instance.js';
import { CodedError } from '../common/coded-error.js';

export type NfQueueErrorCode =
  /** A verdict for an id that is not waiting (never seen, or already decided). */
  | 'UNKNOWN_PACKET'
  /** A verdict for a packet that was already given one (by the caller or the deadline). */
  | 'ALREADY_DECIDED'
  /** The queue is closed. */
  | 'CLOSED'
  /** The payload view was read after its callback returned (copy it inside). */
  | 'STALE_VIEW'
  /** The kernel cannot do what the verdict asks (connmark without conntrack glue). */
  | 'UNSUPPORTED'
  /** The kernel refused a verdict that was sent (it reports errno and the ids). */
  | 'VERDICT_REFUSED'
  /** Sending verdicts failed (the socket refused the datagram). */
  | 'SEND_FAILED'
  /** Binding or configuring the queue failed. */
  | 'CONFIG_FAILED'
  /** Queued packets were lost: the socket's receive buffer overflowed (ENOBUFS). */
  | 'LOST'
  /** A packet message could not be decoded. */
  | 'DECODE'
  /** Reading the socket failed for good: no more packets arrive (close and reopen). */
  | 'SOCKET'
  /** A packet listener threw. */
  | 'LISTENER';

/** Every error of the NFQUEUE library: `code` says which. */
export class NfQueueError extends CodedError<
  NfQueueErrorCode,
  { queue?: number; ids?: number[] } & KernelErrorDetails
> {
  override readonly name = 'NfQueueError';
}
