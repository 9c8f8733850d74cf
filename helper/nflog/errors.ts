import type { KernelErrorDetails } from '../netlink/nfnl-instance.js';
import { CodedError } from '../common/coded-error.js';

export type NfLogErrorCode =
  /** Binding or configuring the group failed (the kernel's errno is in details). */
  | 'CONFIG_FAILED'
  /** Logged packets were lost: the socket's receive buffer overflowed (ENOBUFS). */
  | 'LOST'
  /** A packet message could not be decoded. */
  | 'DECODE'
  /** Reading the socket failed for good: no more packets arrive (close and reopen). */
  | 'SOCKET'
  /** A packet listener threw. */
  | 'LISTENER'
  /** The log is closed. */
  | 'CLOSED';

/** Every error of the NFLOG library: `code` says which. */
export class NfLogError extends CodedError<
  NfLogErrorCode,
  { group?: number } & KernelErrorDetails
> {
  override readonly name = 'NfLogError';
}
