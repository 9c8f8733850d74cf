/**
 * libnetfilter_conntrack's protocol names, which are also the protocols
 * conntrack-tools 1.4.7 has an extension for (`-p NAME` in `-o save`).
 */
import { IPPROTO } from '../../conntrack/constants.js';

export const L4_NAMES: Record<number, string> = {
  [IPPROTO.tcp]: 'tcp',
  [IPPROTO.udp]: 'udp',
  [IPPROTO.udplite]: 'udplite',
  [IPPROTO.icmp]: 'icmp',
  [IPPROTO.icmpv6]: 'icmpv6',
  [IPPROTO.sctp]: 'sctp',
  [IPPROTO.dccp]: 'dccp',
  [IPPROTO.gre]: 'gre',
};

/** Protocols whose tuples libnetfilter_conntrack prints with sport/dport. */
export const PORT_PROTOS = new Set<number>([
  IPPROTO.tcp,
  IPPROTO.udp,
  IPPROTO.udplite,
  IPPROTO.sctp,
  IPPROTO.dccp,
]);
