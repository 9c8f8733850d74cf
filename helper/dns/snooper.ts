import { NfLog, type NfLogOptions } from '../nflog/log.js';
import type { NfLogError } from '../nflog/errors.js';
import { PacketParseError } from '../packet/errors.js';
import { parsePacket, type ParsedPacket } from '../packet/parse.js';
import { extractMappings, type DnsMapping } from './answers.js';
import { DnsCache, type DnsCacheOptions, type DnsLookup } from './cache.js';
import * as D from './constants.js';
import { DnsParseError } from './errors.js';
import { parseDnsMessage, splitTcpDns, type DnsMessage } from './wire.js';
import { emitError } from '../common/emit-error.js';
import { callEach, subscribe } from '../common/listeners.js';

/** Why a logged packet gave no names. */
export type DnsRejectReason =
  /** Not a parseable IPv4/IPv6 packet with a UDP or TCP header. */
  | 'notIp'
  /** A later IP fragment (no transport header; the kernel reassembles only with conntrack). */
  | 'fragment'
  /** Not from a DNS source port (53, or 5353 with mdns). */
  | 'notDnsPort'
  /** No transport payload (copy mode meta, or a TCP handshake/ACK segment). */
  | 'noPayload'
  /** The copy range cut the packet. */
  | 'captureTruncated'
  /** A TCP segment without a whole length-prefixed message (split across segments). */
  | 'tcpIncomplete'
  /** Not a well-formed DNS message. */
  | 'malformed'
  /** A query, not a response. */
  | 'notResponse'
  /** An opcode other than QUERY (NOTIFY, UPDATE...). */
  | 'notQuery'
  /** An error response (NXDOMAIN, SERVFAIL...). */
  | 'rcode';

const REASONS: readonly DnsRejectReason[] = [
  'notIp',
  'fragment',
  'notDnsPort',
  'noPayload',
  'captureTruncated',
  'tcpIncomplete',
  'malformed',
  'notResponse',
  'notQuery',
  'rcode',
];

export interface DnsSnooperCounters {
  /** Packets handed to the snooper. */
  packets: number;
  /** DNS messages that parsed (responses or not). */
  parsed: number;
  /** Responses whose answers went into the cache. */
  responses: number;
  /** IP -> name mappings added or refreshed. */
  mappings: number;
  /** Address records no question led to (ignored). */
  unrelated: number;
  /** Packets or messages that gave nothing, by reason (sum in `rejected`). */
  rejected: number;
  reasons: Record<DnsRejectReason, number>;
  /** NFLOG reported lost packets (ENOBUFS): some answers were never seen. */
  lost: number;
}

/** A mapping as seen on the wire: which server answered which client. */
export interface SnoopedMapping extends DnsMapping {
  server: string;
  client: string;
}

export type SnoopResult =
  | { accepted: true; mappings: SnoopedMapping[] }
  | { accepted: false; reason: DnsRejectReason; error?: Error };

export interface DnsSnooperOptions {
  /** The cache to fill, or options for a new one. */
  cache?: DnsCache | DnsCacheOptions;
  /** Also read mDNS (source port 5353). Default false. */
  mdns?: boolean;
  /** Drop expired names this often (ms); 0 disables it. Default 60,000. */
  pruneIntervalMs?: number;
}

export interface DnsSnooperOpenOptions extends DnsSnooperOptions {
  /** The NFLOG group the firewall rules log DNS responses to. */
  group: number;
  /** Read the group inside this network namespace. */
  netns?: string;
  /** More NFLOG options (rcvbuf, a test transport...). */
  nflog?: Omit<NfLogOptions, 'group' | 'netns'>;
}

/**
 * Fills a DnsCache from DNS responses seen on the machine: IP packets (from
 * an NFLOG group, or handed in with handlePacket) are parsed with
 * helper/packet, UDP and TCP payloads from source port 53 (and 5353 with
 * mdns) are parsed as DNS, and each response's answers become IP -> name
 * mappings. Counts what it saw, parsed and rejected, and why.
 *
 *     const snooper = await DnsSnooper.open({ group: 2053 });
 *     ...
 *     snooper.cache.lookup('198.18.0.10')?.name;   // 'www.example.com'
 */
export class DnsSnooper {
  readonly cache: DnsCache;
  readonly counters: DnsSnooperCounters;
  private readonly ports: Set<number>;
  private readonly mappingListeners: ((m: SnoopedMapping) => void)[] = [];
  private readonly errorListeners: ((e: Error) => void)[] = [];
  private readonly pruneTimer: NodeJS.Timeout | undefined;
  private log: NfLog | undefined;

  constructor(options: DnsSnooperOptions = {}) {
    this.cache = options.cache instanceof DnsCache ? options.cache : new DnsCache(options.cache);
    this.ports = new Set(options.mdns ? [D.DNS_PORT, D.MDNS_PORT] : [D.DNS_PORT]);
    const reasons = Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<
      DnsRejectReason,
      number
    >;
    this.counters = {
      packets: 0,
      parsed: 0,
      responses: 0,
      mappings: 0,
      unrelated: 0,
      rejected: 0,
      reasons,
      lost: 0,
    };
    const every = options.pruneIntervalMs ?? 60_000;
    if (every > 0) {
      this.pruneTimer = setInterval(() => this.cache.prune(), every);
      this.pruneTimer.unref();
    }
  }

  /** Reads the DNS answers logged so far into the cache now (see NfLog.pollNow). */
  pollNow(): boolean {
    return this.log?.pollNow() ?? false;
  }

  /** Binds the NFLOG group and snoops every packet logged to it. */
  static async open(options: DnsSnooperOpenOptions): Promise<DnsSnooper> {
    const snooper = new DnsSnooper(options);
    try {
      snooper.log = await NfLog.open({
        ...options.nflog,
        group: options.group,
        netns: options.netns,
        copyMode: 'packet',
        // Each answer must reach the cache before the program that asked connects:
        // send every packet at once rather than batching (the instance default is 100).
        qthresh: options.nflog?.qthresh ?? 1,
        // Parsed inside the callback; nothing keeps the payload.
        zeroCopy: true,
      });
    } catch (error) {
      snooper.stopTimer();
      throw error;
    }
    const log = snooper.log;
    log.onPacket((p) => {
      if (p.payload) snooper.handlePacket(p.payload);
      else snooper.reject('noPayload');
    });
    log.onLost(() => snooper.counters.lost++);
    log.onError((e: NfLogError) => snooper.emitError(e));
    return snooper;
  }

  /** The NFLOG group's own counters, when the snooper reads one. */
  get nflog(): NfLog | undefined {
    return this.log;
  }

  lookup(ip: string): DnsLookup | undefined {
    return this.cache.lookup(ip);
  }

  /** Every mapping as it is added. Returns an unsubscribe function. */
  onMapping(listener: (m: SnoopedMapping) => void): () => void {
    return subscribe(this.mappingListeners, listener);
  }

  /** NFLOG errors (decode failures, a dead socket) and mapping listener exceptions. */
  onError(listener: (e: Error) => void): () => void {
    return subscribe(this.errorListeners, listener);
  }

  private emitError(error: Error): void {
    emitError(this.errorListeners, error, 'DnsSnooperWarning');
  }

  private reject(reason: DnsRejectReason, error?: Error): SnoopResult {
    this.counters.rejected++;
    this.counters.reasons[reason]++;
    return error ? { accepted: false, reason, error } : { accepted: false, reason };
  }

  /** Reads one IP packet (from the network header on). Never throws on bad input. */
  handlePacket(bytes: Uint8Array): SnoopResult {
    this.counters.packets++;
    let p: ParsedPacket;
    try {
      p = parsePacket(bytes);
    } catch (error) {
      if (error instanceof PacketParseError) return this.reject('notIp', error);
      throw error;
    }
    if (p.ip.laterFragment) return this.reject('fragment');
    const l4 = p.udp ?? p.tcp;
    if (!l4) return this.reject('notIp');
    if (!this.ports.has(l4.srcPort)) return this.reject('notDnsPort');
    if (p.ip.truncated) return this.reject('captureTruncated');
    if (l4.payloadLength === 0) return this.reject('noPayload');
    const server = p.ip.src;
    const client = p.ip.dst;
    if (p.udp) return this.handleMessage(bytes, l4.payloadOffset, l4.payloadLength, server, client);
    const split = splitTcpDns(bytes, l4.payloadOffset, l4.payloadLength);
    if (split.messages.length === 0) return this.reject('tcpIncomplete');
    const all: SnoopedMapping[] = [];
    let last: SnoopResult | undefined;
    for (const m of split.messages) {
      last = this.handleMessage(bytes, m.offset, m.length, server, client);
      if (last.accepted) all.push(...last.mappings);
    }
    if (split.incomplete) this.reject('tcpIncomplete');
    return all.length > 0 || last?.accepted ? { accepted: true, mappings: all } : last!;
  }

  private handleMessage(
    bytes: Uint8Array,
    offset: number,
    length: number,
    server: string,
    client: string,
  ): SnoopResult {
    let message: DnsMessage;
    try {
      message = parseDnsMessage(bytes, offset, length);
    } catch (error) {
      if (error instanceof DnsParseError) return this.reject('malformed', error);
      throw error;
    }
    this.counters.parsed++;
    return this.handleDnsMessage(message, server, client);
  }

  /** Feeds a parsed message (from another source: a resolver's log, a test). */
  handleDnsMessage(message: DnsMessage, server: string, client: string): SnoopResult {
    if (!message.response) return this.reject('notResponse');
    if (message.opcode !== D.OPCODE_QUERY) return this.reject('notQuery');
    if (message.rcode !== D.RCODE_NOERROR) return this.reject('rcode');
    const { mappings, unrelated } = extractMappings(message);
    this.counters.responses++;
    this.counters.unrelated += unrelated;
    const out: SnoopedMapping[] = [];
    for (const m of mappings) {
      this.cache.add(m);
      this.counters.mappings++;
      const snooped = { ...m, server, client };
      out.push(snooped);
      callEach(this.mappingListeners, snooped, (error) => this.emitError(error as Error));
    }
    return { accepted: true, mappings: out };
  }

  private stopTimer(): void {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
  }

  /** Stops reading (unbinds the NFLOG group); the cache stays usable. Idempotent. */
  async close(): Promise<void> {
    this.stopTimer();
    const log = this.log;
    this.log = undefined;
    await log?.close();
  }
}
