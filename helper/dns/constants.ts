/** DNS wire constants (RFC 1035, 3596, 6762) with their registry names. */

export const DNS_HEADER_LEN = 12;
/** Longest name on the wire, length bytes included (RFC 1035 2.3.4). */
export const DNS_MAX_NAME = 255;

// RR TYPEs that the parser decodes; others are kept as 'other' with their type.
export const TYPE_A = 1;
export const TYPE_CNAME = 5;
export const TYPE_AAAA = 28;

export const CLASS_IN = 1;
/** mDNS (RFC 6762 10.2): the top bit of a record's class is the cache-flush bit,
 * of a question's class the unicast-response bit. */
export const CLASS_TOP_BIT = 0x8000;

export const OPCODE_QUERY = 0;

export const RCODE_NOERROR = 0;

export const DNS_PORT = 53;
export const MDNS_PORT = 5353;
