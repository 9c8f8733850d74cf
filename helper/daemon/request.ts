/**
 * Builds the ConnectionRequest the decider sees from a connection's first queued
 * packet. Pure: the socket owner (uid, process) and the host name are filled in
 * afterwards by the interceptor from the attributor and the DNS cache.
 */
import { parsePacket, PacketParseError, type PacketParseOptions } from '../packet/index.js';
import type { ConnectionRequest, Direction, Protocol } from '../protocol/model.js';
import { DaemonError } from './errors.js';
import type { ConnectionTuple } from './ports.js';

const NO_TCP_OPTIONS: PacketParseOptions = { tcpOptions: false };

/** Netfilter hooks as NFQUEUE reports them. */
export const HOOK_PRE_ROUTING = 0;
export const HOOK_LOCAL_IN = 1;
export const HOOK_FORWARD = 2;
export const HOOK_LOCAL_OUT = 3;
export const HOOK_POST_ROUTING = 4;

const PROTOCOL_NAMES: ReadonlyMap<number, Protocol> = new Map([
  [1, 'icmp'],
  [6, 'tcp'],
  [17, 'udp'],
  [33, 'dccp'],
  [47, 'gre'],
  [58, 'icmpv6'],
  [132, 'sctp'],
  [136, 'udplite'],
]);

/** The model's protocol name for an IP protocol number ('other' when it has none). */
export function protocolName(protocolNumber: number): Protocol {
  return PROTOCOL_NAMES.get(protocolNumber) ?? 'other';
}

/** Protocols whose header starts with 16-bit source and destination ports. */
const PORTS_FIRST = new Set([6, 17, 33, 132, 136]);

/** The metadata of a queued packet that a request needs (a subset of NfQueuePacket). */
export interface QueuedMeta {
  hook: number;
  indev?: number | undefined;
  outdev?: number | undefined;
}

/** Our rules queue OUTPUT (locally generated) and INPUT (to a local socket) only. */
export function directionOf(hook: number): Direction {
  if (hook === HOOK_LOCAL_OUT || hook === HOOK_POST_ROUTING) return 'outbound';
  if (hook === HOOK_LOCAL_IN || hook === HOOK_PRE_ROUTING) return 'inbound';
  throw new DaemonError(
    'UNSUPPORTED_HOOK',
    `packet from netfilter hook ${hook} (not queued by Portcullis)`,
  );
}

/**
 * A request from the packet bytes (from the IP header on, as NFQUEUE delivers them).
 * Throws DaemonError MALFORMED_PACKET (cause: the PacketParseError) or UNSUPPORTED_HOOK.
 */
export function buildRequest(
  meta: QueuedMeta,
  payload: Uint8Array | undefined,
  time: number,
  /** Filled with what tells a retransmit from a new attempt (answered-attempts.ts). */
  attempt?: { tcpSeq: number | null },
): ConnectionRequest {
  const direction = directionOf(meta.hook);
  if (payload === undefined || payload.byteLength === 0) {
    throw new DaemonError(
      'MALFORMED_PACKET',
      'queued packet has no payload (copy mode must be packet)',
    );
  }
  let parsed;
  try {
    // Ports and flags are all a request needs: TCP options are not decoded.
    parsed = parsePacket(payload, 0, NO_TCP_OPTIONS);
  } catch (error) {
    if (error instanceof PacketParseError) {
      throw new DaemonError('MALFORMED_PACKET', `unparsable packet: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
  const { ip, protocol } = parsed;
  let sport: number | null = null;
  let dport: number | null = null;
  if (attempt) attempt.tcpSeq = parsed.tcp ? parsed.tcp.seq : null;
  if (parsed.tcp) {
    sport = parsed.tcp.srcPort;
    dport = parsed.tcp.dstPort;
  } else if (parsed.udp) {
    sport = parsed.udp.srcPort;
    dport = parsed.udp.dstPort;
  } else if (PORTS_FIRST.has(protocol) && !ip.laterFragment && parsed.l4Length >= 4) {
    // UDP-Lite, SCTP and DCCP: the helper/packet parser has no header for them, but
    // all three start with the two ports, which is all a request needs.
    const at = parsed.l4Offset;
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    sport = view.getUint16(at);
    dport = view.getUint16(at + 2);
  }
  const icmp = parsed.icmp ?? parsed.icmpv6;
  return {
    time,
    direction,
    family: ip.version === 4 ? 'ipv4' : 'ipv6',
    protocol: protocolName(protocol),
    protocolNumber: protocol,
    src: ip.src,
    dst: ip.dst,
    sport,
    dport,
    icmpType: icmp ? icmp.type : null,
    icmpCode: icmp ? icmp.code : null,
    inIfindex: meta.indev ?? null,
    outIfindex: meta.outdev ?? null,
    host: null,
    uid: null,
    process: null,
  };
}

/** The original-direction tuple of a request or of a model Flow (what sock_diag and conntrack key on). */
export function requestTuple(
  r: Pick<ConnectionRequest, 'family' | 'protocolNumber' | 'src' | 'dst' | 'sport' | 'dport'>,
): ConnectionTuple {
  return {
    family: r.family,
    protocol: r.protocolNumber,
    src: r.src,
    dst: r.dst,
    sport: r.sport,
    dport: r.dport,
  };
}

/** The same tuple from a request and from its conntrack entry gives the same key. */
export { tupleKey } from '../common/tuple-key.js';
