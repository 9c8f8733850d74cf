/**
 * Resolved icons per program, bounded in entries and in bytes, least
 * recently used out first. A "no icon" answer is forgotten after the TTL (the
 * program may be installed properly by then); an icon is kept.
 */
import type { ProcessIcon } from '../../common/api.js';

interface CacheEntry {
  icon: ProcessIcon | null;
  at: number;
  bytes: number;
}

export interface IconCacheLimits {
  maxEntries: number;
  /** Total size of the cached data: URLs. */
  maxBytes: number;
  ttlMs: number;
  now: () => number;
}

export class IconCache {
  private readonly entries = new Map<string, CacheEntry>();
  private bytes = 0;

  constructor(private readonly limits: IconCacheLimits) {}

  get size(): number {
    return this.entries.size;
  }

  /** A live answer (an icon, or null for "none"), or undefined when there is none. */
  get(key: string): ProcessIcon | null | undefined {
    const hit = this.entries.get(key);
    if (!hit || (hit.icon === null && this.limits.now() - hit.at >= this.limits.ttlMs)) {
      return undefined;
    }
    // Most recently used last: eviction takes the oldest.
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit.icon;
  }

  set(key: string, icon: ProcessIcon | null): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.bytes;
    }
    const bytes = icon ? icon.dataUrl.length : 0;
    if (bytes > this.limits.maxBytes) return;
    this.entries.set(key, { icon, at: this.limits.now(), bytes });
    this.bytes += bytes;
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= e.bytes;
    }
  }
}
