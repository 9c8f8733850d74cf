import { PacketParseError } from './errors.js';
import { parseIcmp, parseIcmpv6, type IcmpHeader } from './icmp.js';
import { parseIPv4, type IPv4Header } from './ipv4.js';
import { parseIPv6, type IPv6Header } from './ipv6.js';
import { parseTcp, tcpFlagsText, type TcpHeader } from './tcp.js';
import { parseUdp, type UdpHeader } from './udp.js';

const NO_TCP_OPTIONS = { options: false } as const;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;

export interface ParsedPacket {
  ip: IPv4Header | IPv6Header;
  /** The upper-layer protocol number. */
  protocol: number;
  tcp?: TcpHeader;
  udp?: UdpHeader;
  icmp?: IcmpHeader;
  icmpv6?: IcmpHeader;
  /** Offset and length of the upper-layer bytes in the buffer. */
  l4Offset: number;
  l4Length: number;
}

/**
 * Parses an IP packet (IPv4 or IPv6 by the version nibble, as NFQUEUE
 * delivers it: from the network header on) and its TCP, UDP, ICMP or ICMPv6
 * header. Later fragments and unknown protocols have no upper-layer header.
 * Throws PacketParseError on malformed bytes.
 */
export interface PacketParseOptions {
  /** Decode TCP options (default true); see TcpParseOptions. */
  tcpOptions?: boolean;
}

export function parsePacket(
  bytes: Uint8Array,
  offset = 0,
  options: PacketParseOptions = {},
): ParsedPacket {
  if (offset < 0 || offset >= bytes.byteLength)
    throw new PacketParseError('TRUNCATED', 'packet', offset, 'no bytes');
  const version = bytes[offset]! >> 4;
  let ip: IPv4Header | IPv6Header;
  if (version === 4) ip = parseIPv4(bytes, offset);
  else if (version === 6) ip = parseIPv6(bytes, offset);
  else throw new PacketParseError('BAD_VERSION', 'packet', offset, `IP version ${version}`);
  const protocol = ip.protocol;
  const out: ParsedPacket = {
    ip,
    protocol,
    l4Offset: ip.payloadOffset,
    l4Length: ip.payloadLength,
  };
  if (ip.laterFragment) return out;
  const at = ip.payloadOffset;
  const len = ip.payloadLength;
  switch (protocol) {
    case IPPROTO_TCP:
      out.tcp = parseTcp(bytes, at, len, options.tcpOptions === false ? NO_TCP_OPTIONS : {});
      break;
    case IPPROTO_UDP:
      out.udp = parseUdp(bytes, at, len, ip.truncated);
      break;
    case IPPROTO_ICMP:
      if (ip.version === 4) out.icmp = parseIcmp(bytes, at, len);
      break;
    case IPPROTO_ICMPV6:
      if (ip.version === 6) out.icmpv6 = parseIcmpv6(bytes, at, len);
      break;
  }
  return out;
}

function hostPort(addr: string, port: number, v6: boolean): string {
  return v6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** One line for display ("tcp 10.0.0.1:5000 -> 10.0.0.2:443 SYN"); never throws. */
export function summarizePacket(bytes: Uint8Array): string {
  let p: ParsedPacket;
  try {
    p = parsePacket(bytes);
  } catch (error) {
    return `malformed packet (${(error as Error).message})`;
  }
  const v6 = p.ip.version === 6;
  const { src, dst } = p.ip;
  if (p.tcp) {
    return `tcp ${hostPort(src, p.tcp.srcPort, v6)} -> ${hostPort(dst, p.tcp.dstPort, v6)} ${tcpFlagsText(p.tcp.flagBits)} len ${p.tcp.payloadLength}`;
  }
  if (p.udp)
    return `udp ${hostPort(src, p.udp.srcPort, v6)} -> ${hostPort(dst, p.udp.dstPort, v6)} len ${p.udp.payloadLength}`;
  const icmp = p.icmp ?? p.icmpv6;
  if (icmp) return `${v6 ? 'icmpv6' : 'icmp'} ${src} -> ${dst} ${icmp.name} code ${icmp.code}`;
  return `proto ${p.protocol} ${src} -> ${dst}${p.ip.laterFragment ? ' fragment' : ''} len ${p.l4Length}`;
}
