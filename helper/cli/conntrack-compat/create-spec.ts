/** -I / -A: the entry a command line describes, for the conntrack library. */
import type { CreateSpec } from '../../conntrack/client.js';
import { invertTuple } from '../../conntrack/encode.js';
import type { Tuple } from '../../conntrack/types.js';
import type { CompatArgs } from './args.js';
import { bswap32 } from './c-numbers.js';
import { CompatUsageError } from './errors.js';

/** A tuple with its addresses and protocol, or 1.4.7's message naming the missing option. */
export function completeTuple(t: Partial<Tuple>, what: string): Tuple {
  if (t.src === undefined || t.dst === undefined || t.proto === undefined) {
    throw new CompatUsageError(`you have to specify \`--${what}'`);
  }
  return { ...t } as Tuple;
}

export function createSpec(a: CompatArgs): CreateSpec {
  const hasOrig = a.orig.src !== undefined && a.orig.dst !== undefined;
  let orig: Tuple;
  let reply: Tuple | undefined;
  if (hasOrig) {
    orig = completeTuple(a.orig, 'src');
    if (Object.keys(a.reply).some((k) => k !== 'proto')) {
      reply = { ...invertTuple(orig), ...a.reply };
    }
  } else {
    const r: Partial<Tuple> = { ...a.reply, proto: a.proto! };
    reply = completeTuple(r, 'reply-src');
    orig = invertTuple(reply);
  }
  // --orig-zone / --reply-zone: CTA_TUPLE_ZONE of that direction only (the
  // library always sends both tuples; the reply is completed from the original).
  if (a.origZone !== undefined || a.replyZone !== undefined) {
    const base = reply ?? invertTuple(orig);
    delete base.zone;
    reply = { ...base, ...(a.replyZone !== undefined ? { zone: a.replyZone } : {}) };
    if (a.origZone !== undefined) orig = { ...orig, zone: a.origZone };
  }
  const spec: CreateSpec = { orig, timeout: a.timeout ?? 0 };
  if (reply) spec.reply = reply;
  if (a.status !== undefined) spec.status = a.status;
  if (a.mark) spec.mark = a.mark.value;
  if (a.zone !== undefined) spec.zone = a.zone;
  if (a.state !== undefined) spec.tcpState = a.state;
  if (a.sctpState !== undefined) {
    spec.sctpState = a.sctpState;
    // 1.4.7 sets htonl(atoi()) and the library htonl()s again: the kernel
    // gets the tag's bytes in host (little-endian) order.
    spec.sctpVtagOrig = bswap32(a.vtagOrig ?? 0);
    spec.sctpVtagReply = bswap32(a.vtagReply ?? 0);
  }
  if (a.dccpState !== undefined) spec.dccpState = a.dccpState;
  if (a.dccpRole !== undefined) spec.dccpRole = a.dccpRole === 'client' ? 0 : 1;
  if (a.labelModify !== undefined) spec.labels = a.labelModify;
  for (const [key, nat] of [
    ['natSrc', a.natSrc],
    ['natDst', a.natDst],
  ] as const) {
    if (!nat) continue;
    spec[key] = {
      minIp: nat.ip,
      maxIp: nat.ip,
      ...(nat.port !== undefined ? { minPort: nat.port, maxPort: nat.port } : {}),
    };
  }
  return spec;
}
