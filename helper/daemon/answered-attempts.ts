/**
 * Denied attempts, so that their retransmits get the same answer without a second
 * decision. A dropped first packet never confirms its conntrack entry, so the
 * kernel queues a retransmitted SYN, or the next datagram of the same socket, as
 * if it were new: without this, one attempt became several prompts and history
 * rows. Allowed attempts need nothing: their conntrack entry carries the verdict.
 *
 * A TCP attempt is its tuple and its SYN's sequence number, which every
 * retransmit repeats and a new connection from a reused port does not; a
 * datagram attempt is its tuple, for a shorter while.
 */
import { setNewest } from '../common/bounded-map.js';
import type { Verdict } from './verdict.js';

/** Longer than Linux's SYN retries take by default (tcp_syn_retries 6: 127 s). */
export const TCP_ATTEMPT_MS = 130_000;
/** A datagram flow is asked again after this, so that a rule added meanwhile applies. */
export const DATAGRAM_ATTEMPT_MS = 30_000;

export class AnsweredAttempts {
  private readonly entries = new Map<string, { until: number; verdict: Verdict }>();

  constructor(
    private readonly max = 4096,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** `tcpSeq`: the SYN's sequence number, null for other protocols. */
  remember(tupleKey: string, tcpSeq: number | null, verdict: Verdict): void {
    const ttl = tcpSeq === null ? DATAGRAM_ATTEMPT_MS : TCP_ATTEMPT_MS;
    setNewest(this.entries, key(tupleKey, tcpSeq), { until: this.now() + ttl, verdict }, this.max);
  }

  /** The answer a retransmit of this attempt gets, or null for a new attempt. */
  answerFor(tupleKey: string, tcpSeq: number | null): Verdict | null {
    if (this.entries.size === 0) return null;
    const k = key(tupleKey, tcpSeq);
    const e = this.entries.get(k);
    if (!e) return null;
    if (e.until <= this.now()) {
      this.entries.delete(k);
      return null;
    }
    return e.verdict;
  }
}

function key(tupleKey: string, tcpSeq: number | null): string {
  return tcpSeq === null ? tupleKey : `${tupleKey}#${tcpSeq}`;
}
