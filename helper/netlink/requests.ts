/** The bookkeeping records of NetlinkConnection: one per request in flight or queued, one per batch. */
import type { NetlinkMessage } from './message.js';

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Name used in errors ("ctnetlink get"). */
  operation?: string;
}

/** What a settled request hands back. */
export interface RequestOutcome {
  replies: NetlinkMessage[];
  messages: number;
  interrupted: boolean;
}

export interface Pending {
  seq: number;
  operation: string;
  timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  message: Uint8Array;
  /** A dump's messages go to onMessage; a request's replies are collected. */
  dump: boolean;
  onMessage: (msg: NetlinkMessage) => void;
  /** The async iterator needs messages that outlive the receive slab. */
  copy: boolean;
  replies: NetlinkMessage[];
  messages: number;
  interrupted: boolean;
  /** Abandoned (aborted/broken off): drop what still arrives until the end. */
  discarding: boolean;
  resolve: (result: RequestOutcome) => void;
  reject: (error: Error) => void;
  /** Set for the members of a requestBatch(). */
  batch: Batch | undefined;
  index: number;
  /** Sent without NLM_F_ACK: success is known from the barrier after it. */
  silent: boolean;
  /** A barrier (NLMSG_NOOP with an ACK) settles these when it is answered. */
  barrierFor: Pending[] | undefined;
}

/** The outcome of requestBatch(). */
export interface BatchResult {
  /** Requests the kernel acknowledged without error. */
  ok: number;
  /** Requests that were refused (NetlinkError) or could not be built, by position. */
  errors: { index: number; error: Error }[];
}

export interface Batch {
  source: Iterator<Uint8Array | Error>;
  ackEach: boolean;
  next: number;
  exhausted: boolean;
  outstanding: number;
  ok: number;
  errors: { index: number; error: Error }[];
  operation: string;
  timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  progress: number;
  done: boolean;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  resolve: (result: BatchResult) => void;
  reject: (error: Error) => void;
}

/** A request in its initial state; callers give what differs. */
export function newPending(
  operation: string,
  message: Uint8Array,
  fields: Partial<Pending> = {},
): Pending {
  return {
    seq: 0,
    operation,
    timeoutMs: 0,
    timer: undefined,
    signal: undefined,
    onAbort: undefined,
    message,
    dump: false,
    onMessage: () => {},
    copy: false,
    replies: [],
    messages: 0,
    interrupted: false,
    discarding: false,
    resolve: () => {},
    reject: () => {},
    batch: undefined,
    index: 0,
    silent: false,
    barrierFor: undefined,
    ...fields,
  };
}
