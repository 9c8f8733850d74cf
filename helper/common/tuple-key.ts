/**
 * The map key of a connection's 5-tuple. The packet path, the attributor and the
 * flow table each key caches by tuple, and a decision's key must equal the key of
 * the conntrack entry it created, so there is one way to write it.
 */

/** A 5-tuple with its family; the protocol as a number or a name, as the caller has it. */
export interface TupleFields {
  /** With the family: IPv4 text in an IPv6 tuple is a dual-stack socket's, another key. */
  family: string;
  protocol: number | string;
  src: string;
  sport: number | null | undefined;
  dst: string;
  dport: number | null | undefined;
}

/** "/" never occurs in an address or a port, so distinct tuples give distinct keys. */
export function tupleKey(t: TupleFields): string {
  return `${t.family}/${t.protocol}/${t.src}/${t.sport ?? '-'}/${t.dst}/${t.dport ?? '-'}`;
}
