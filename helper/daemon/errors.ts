export type DaemonErrorCode =
  /** The queued packet has no payload (copy mode meta) or cannot be parsed. */
  | 'MALFORMED_PACKET'
  /** The packet came from a hook the daemon does not queue (FORWARD, ingress...). */
  | 'UNSUPPORTED_HOOK'
  /** start() on a running daemon part, or an operation after stop(). */
  | 'BAD_STATE'
  /** A flow id that is not in the table. */
  | 'UNKNOWN_FLOW'
  /** A bad option value (queue number, timeout, policy). */
  | 'INVALID_OPTION';

/** Every error of helper/daemon: `code` says which; `cause` keeps the underlying error. */
export class DaemonError extends Error {
  override readonly name = 'DaemonError';
  constructor(
    readonly code: DaemonErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
