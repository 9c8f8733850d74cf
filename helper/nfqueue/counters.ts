import * as Q from './constants.js';

export interface NfQueueCounters {
  received: number;
  accepted: number;
  dropped: number;
  repeated: number;
  queued: number;
  stopped: number;
  /** Packets that got the default verdict at their deadline. */
  deadline: number;
  /** Packets that got the default verdict when the queue was closed. */
  closeVerdicts: number;
  /** Verdict messages sent (a batch counts once). */
  verdictMessages: number;
  batchMessages: number;
  datagramsSent: number;
  /** Times the kernel reported lost messages (ENOBUFS or truncation). */
  enobufs: number;
  decodeErrors: number;
  /** Verdicts the kernel refused. */
  kernelErrors: number;
  listenerErrors: number;
  sendErrors: number;
}

export function newCounters(): NfQueueCounters {
  return {
    received: 0,
    accepted: 0,
    dropped: 0,
    repeated: 0,
    queued: 0,
    stopped: 0,
    deadline: 0,
    closeVerdicts: 0,
    verdictMessages: 0,
    batchMessages: 0,
    datagramsSent: 0,
    enobufs: 0,
    decodeErrors: 0,
    kernelErrors: 0,
    listenerErrors: 0,
    sendErrors: 0,
  };
}

/** Counts one verdict message that decides `count` packets. */
export function countVerdict(
  c: NfQueueCounters,
  verdict: number,
  count: number,
  batch: boolean,
): void {
  c.verdictMessages++;
  if (batch) c.batchMessages++;
  switch (verdict & Q.NF_VERDICT_MASK) {
    case Q.NF_ACCEPT:
      c.accepted += count;
      break;
    case Q.NF_DROP:
      c.dropped += count;
      break;
    case Q.NF_REPEAT:
      c.repeated += count;
      break;
    case Q.NF_QUEUE:
      c.queued += count;
      break;
    case Q.NF_STOP:
      c.stopped += count;
      break;
  }
}
