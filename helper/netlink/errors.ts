import { errnoName } from './errno.js';

/** The extended ACK the kernel attaches to an error or warning (NETLINK_EXT_ACK). */
export interface ExtendedAck {
  /** NLMSGERR_ATTR_MSG: the kernel's human-readable reason. */
  message?: string;
  /** NLMSGERR_ATTR_OFFS: byte offset of the offending attribute in the request. */
  offset?: number;
  cookie?: Uint8Array;
  /** NLMSGERR_ATTR_MISS_TYPE: the attribute type that was required but missing. */
  missingType?: number;
  /** NLMSGERR_ATTR_MISS_NEST: offset of the nest that lacks it. */
  missingNest?: number;
}

/** A request the kernel refused: errno, its name, and the extended ACK. */
export class NetlinkError extends Error {
  override readonly name = 'NetlinkError';
  readonly code: string;
  constructor(
    readonly errno: number,
    readonly operation: string,
    readonly extack: ExtendedAck = {},
  ) {
    const code = errnoName(errno);
    const detail = extack.message ? `: ${extack.message}` : '';
    super(`${operation}: ${code}${detail}`);
    this.code = code;
  }
}

/** Bytes that are not a well-formed netlink message or attribute. */
export class NetlinkDecodeError extends Error {
  override readonly name = 'NetlinkDecodeError';
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(`netlink decode error at byte ${offset}: ${reason}`);
  }
}

export class NetlinkTimeoutError extends Error {
  override readonly name = 'NetlinkTimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
  ) {
    super(`${operation}: no answer from the kernel within ${timeoutMs} ms`);
  }
}

/** The kernel set NLM_F_DUMP_INTR: the table changed during the dump, so
 * entries may have been skipped or repeated. Retry for a consistent view. */
export class DumpInterruptedError extends Error {
  override readonly name = 'DumpInterruptedError';
  readonly code = 'EINTR';
  constructor(readonly operation: string) {
    super(`${operation}: dump interrupted by a concurrent change (NLM_F_DUMP_INTR); retry`);
  }
}

/** The request was cancelled by its AbortSignal or the connection was closed. */
export class NetlinkAbortError extends Error {
  override readonly name = 'AbortError';
  readonly code = 'ABORT_ERR';
  constructor(operation: string, reason?: string) {
    super(`${operation}: ${reason ?? 'aborted'}`);
  }
}
