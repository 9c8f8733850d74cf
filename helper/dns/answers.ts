import * as D from './constants.js';
import type { DnsMessage, DnsRecord } from './wire.js';

/** One address a response ties to a name. */
export interface DnsMapping {
  /** The address as conntrack and helper/packet print it. */
  ip: string;
  name: string;
  /** Seconds: the smallest TTL on the way from `name` to the address record. */
  ttl: number;
  /** `name` is what the client asked for (the question), not a CNAME target. */
  queried: boolean;
}

export interface ExtractedMappings {
  mappings: DnsMapping[];
  /** Address records that no question leads to (ignored: the client would not use them). */
  unrelated: number;
}

/** A CNAME chain longer than this is cut (resolvers give up at about 8-16). */
const MAX_CHAIN = 16;

function addressOf(r: DnsRecord): string | undefined {
  return r.data.kind === 'a' || r.data.kind === 'aaaa' ? r.data.address : undefined;
}

/**
 * The IP -> name mappings of a response. With questions (unicast DNS), each
 * question's CNAME chain is followed through the answer section, and every
 * address owned by a name on the chain is attributed to each name before it
 * on the chain: the question name (what the client asked for, `queried`), the
 * intermediate names and the final name. The TTL of a mapping is the smallest
 * TTL along its part of the chain, as a resolver's cache would keep it.
 * Without questions (mDNS announcements and answers, RFC 6762 6), every
 * address record of the answer and additional sections maps to its owner.
 * The caller decides whether the message is a response worth reading.
 */
export function extractMappings(message: DnsMessage): ExtractedMappings {
  const addresses = (records: DnsRecord[]) =>
    records.filter((r) => r.class === D.CLASS_IN && addressOf(r) !== undefined);
  const mappings: DnsMapping[] = [];
  const questions = message.questions.filter((q) => q.class === D.CLASS_IN);
  if (questions.length === 0) {
    for (const r of addresses([...message.answers, ...message.additionals])) {
      mappings.push({ ip: addressOf(r)!, name: r.name, ttl: r.ttl, queried: false });
    }
    return { mappings, unrelated: 0 };
  }
  const cnames = new Map<string, DnsRecord & { data: { kind: 'cname' } }>();
  for (const r of message.answers) {
    // A name has at most one CNAME (RFC 2181 10.1); keep the first.
    if (r.data.kind === 'cname' && !cnames.has(r.name)) {
      cnames.set(r.name, r as DnsRecord & { data: { kind: 'cname' } });
    }
  }
  const answers = addresses(message.answers);
  const used = new Set<DnsRecord>();
  for (const q of [...new Set(questions.map((q) => q.name))]) {
    // chain[i] = a name; ttls[i] = the TTL of the CNAME from chain[i] to chain[i + 1].
    const chain = [q];
    const ttls: number[] = [];
    for (
      let link = cnames.get(q);
      link && chain.length < MAX_CHAIN;
      link = cnames.get(link.data.target)
    ) {
      if (chain.includes(link.data.target)) break; // a CNAME loop
      ttls.push(link.ttl);
      chain.push(link.data.target);
    }
    for (const r of answers) {
      const k = chain.indexOf(r.name);
      if (k < 0) continue;
      used.add(r);
      let ttl = r.ttl;
      for (let i = k; i >= 0; i--) {
        if (i < k) ttl = Math.min(ttl, ttls[i]!);
        mappings.push({ ip: addressOf(r)!, name: chain[i]!, ttl, queried: i === 0 });
      }
    }
  }
  return { mappings, unrelated: answers.length - used.size };
}
