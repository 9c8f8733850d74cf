/**
 * Bounded caches kept in a plain Map, whose iteration order is insertion order: an
 * entry re-set goes to the end, so the first key is always the oldest.
 */

/**
 * One long-lived keys() iterator per bounded map, standing at its oldest entry.
 * A fresh `map.keys().next()` per eviction has to step over every entry deleted
 * since V8 last compacted the table, and evicting the oldest entry again and
 * again leaves exactly those at the front: at a 16,384-entry bound that cost
 * 4-5 µs per insert, at 65,536 15-18 µs (bench/bounded-map.ts). A Map iterator
 * stays valid while the map changes: it skips deleted entries and reaches the
 * ones set after it was made (a re-set key comes again in its new place), so it
 * only ever steps forward.
 */
const oldest = new WeakMap<Map<unknown, unknown>, Iterator<unknown>>();

/** Sets `key` as the newest entry and drops the oldest ones past `max`. */
export function setNewest<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  evictOldest(map, max);
}

/** Drops the oldest entries (first in insertion order) past `max`; returns how many. */
export function evictOldest<K, V>(map: Map<K, V>, max: number): number {
  let evicted = 0;
  while (map.size > max) {
    let keys = oldest.get(map) as Iterator<K> | undefined;
    let next = keys?.next();
    if (next === undefined || next.done) {
      // First eviction, or the iterator ran out: a finished iterator stays finished.
      keys = map.keys();
      oldest.set(map, keys);
      next = keys.next();
      if (next.done) break;
    }
    map.delete(next.value);
    evicted++;
  }
  return evicted;
}
