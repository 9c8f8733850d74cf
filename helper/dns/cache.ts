import { canonicalIP } from '../common/ip.js';
import { evictOldest } from '../common/bounded-map.js';
import type { DnsMapping } from './answers.js';

export interface DnsCacheOptions {
  /** Addresses kept; the least recently used go first. Default 8192. */
  maxAddresses?: number;
  /** Names kept per address (a CDN address serves many); the oldest go first. Default 16. */
  maxNamesPerAddress?: number;
  /** TTLs are clamped to [minTtl, maxTtl] seconds. A low minimum would forget a
   * name before the program that asked for it has connected (TTL 0 answers
   * exist); a high maximum keeps stale names. Defaults 60 and 86400. */
  minTtl?: number;
  maxTtl?: number;
  /** Milliseconds on a monotonic clock (injection seam for tests). Default performance.now. */
  now?: () => number;
}

/** One name an address is known by. */
export interface DnsNameEntry {
  name: string;
  /** When it expires, on the cache's clock (ms). */
  expiresAt: number;
  /** When it was last seen in a response, on the cache's clock (ms). */
  seenAt: number;
  /** A client asked for this name (a question name), rather than reaching it by CNAME. */
  queried: boolean;
}

export interface DnsLookup {
  ip: string;
  /** The best name: the most recently seen name a client asked for (else the most
   * recently seen name). */
  name: string;
  /** Every live name, best first, then most recent first. */
  names: string[];
  entries: DnsNameEntry[];
}

export interface DnsCacheStats {
  addresses: number;
  /** Mappings added or refreshed. */
  added: number;
  /** Addresses evicted because the cache was full. */
  evicted: number;
  /** Names dropped because their address had too many. */
  namesEvicted: number;
  /** Names that expired. */
  expired: number;
}

interface AddressEntry {
  names: Map<string, DnsNameEntry & { order: number }>;
}

/** The canonical text of an address; IPv4-mapped IPv6 (an AF_INET6 socket talking
 * IPv4) is the IPv4 address, as it is on the wire and in conntrack. */
export function addressKey(ip: string): string | undefined {
  const text = canonicalIP(ip);
  if (text?.startsWith('::ffff:') && text.includes('.')) return text.slice(7);
  return text;
}

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}`);
}

/**
 * IP address -> the names DNS answers gave it, with per-name TTL expiry (clamped)
 * and a bounded size (least recently used addresses are evicted). Lookups accept
 * any spelling of an address ('::FFFF:192.0.2.1' finds 192.0.2.1).
 */
export class DnsCache {
  private readonly entries = new Map<string, AddressEntry>();
  private readonly maxAddresses: number;
  private readonly maxNames: number;
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly now: () => number;
  /** Orders mappings seen within the same millisecond. */
  private order = 0;
  private readonly counts = { added: 0, evicted: 0, namesEvicted: 0, expired: 0 };

  constructor(options: DnsCacheOptions = {}) {
    this.maxAddresses = options.maxAddresses ?? 8192;
    this.maxNames = options.maxNamesPerAddress ?? 16;
    this.minTtl = options.minTtl ?? 60;
    this.maxTtl = options.maxTtl ?? 86400;
    checkCount('maxAddresses', this.maxAddresses, 1);
    checkCount('maxNamesPerAddress', this.maxNames, 1);
    if (!(this.minTtl >= 0 && this.maxTtl >= this.minTtl)) {
      throw new RangeError('need 0 <= minTtl <= maxTtl');
    }
    this.now = options.now ?? (() => performance.now());
  }

  get size(): number {
    return this.entries.size;
  }

  get stats(): DnsCacheStats {
    return { addresses: this.entries.size, ...this.counts };
  }

  /** The TTL the cache applies to `ttl` seconds. */
  clampTtl(ttl: number): number {
    return Math.min(this.maxTtl, Math.max(this.minTtl, ttl));
  }

  /** Records that `ip` is known as `name` for `ttl` seconds (clamped). */
  add(mapping: DnsMapping): void {
    const ip = addressKey(mapping.ip);
    if (ip === undefined) throw new RangeError(`not an IP address: ${mapping.ip}`);
    const now = this.now();
    let entry = this.entries.get(ip);
    if (entry)
      this.entries.delete(ip); // re-inserted last: most recently used
    else entry = { names: new Map() };
    this.entries.set(ip, entry);
    const name = mapping.name.toLowerCase();
    const old = entry.names.get(name);
    const expiresAt = now + this.clampTtl(mapping.ttl) * 1000;
    entry.names.delete(name);
    entry.names.set(name, {
      name,
      // A shorter TTL in a later answer does not cut what an earlier one granted.
      expiresAt: Math.max(expiresAt, old?.expiresAt ?? 0),
      seenAt: now,
      queried: mapping.queried || (old?.queried ?? false),
      order: ++this.order,
    });
    this.counts.added++;
    if (entry.names.size > this.maxNames) {
      const oldest = entry.names.keys().next().value!;
      entry.names.delete(oldest);
      this.counts.namesEvicted++;
    }
    this.counts.evicted += evictOldest(this.entries, this.maxAddresses);
  }

  addAll(mappings: Iterable<DnsMapping>): void {
    for (const m of mappings) this.add(m);
  }

  /** The names of `ip` that have not expired, or undefined. Counts as a use (LRU). */
  lookup(ip: string): DnsLookup | undefined {
    const key = addressKey(ip);
    if (key === undefined) return undefined;
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.expire(key, entry, this.now());
    if (entry.names.size === 0) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    const live = [...entry.names.values()].sort((a, b) => b.order - a.order);
    const best = live.find((e) => e.queried) ?? live[0]!;
    const ordered = [best, ...live.filter((e) => e !== best)];
    return {
      ip: key,
      name: best.name,
      names: ordered.map((e) => e.name),
      entries: ordered.map(({ name, expiresAt, seenAt, queried }) => ({
        name,
        expiresAt,
        seenAt,
        queried,
      })),
    };
  }

  private expire(key: string, entry: AddressEntry, now: number): void {
    for (const [name, e] of entry.names) {
      if (e.expiresAt <= now) {
        entry.names.delete(name);
        this.counts.expired++;
      }
    }
    if (entry.names.size === 0) this.entries.delete(key);
  }

  /** Drops every expired name (and addresses left without one); returns how many names. */
  prune(): number {
    const before = this.counts.expired;
    const now = this.now();
    for (const [key, entry] of this.entries) this.expire(key, entry, now);
    return this.counts.expired - before;
  }

  delete(ip: string): boolean {
    const key = addressKey(ip);
    return key !== undefined && this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
