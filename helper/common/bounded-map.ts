/**
 * Bounded caches kept in a plain Map, whose iteration order is insertion order: an
 * entry re-set goes to the end, so the first key is always the oldest.
 */

/** Sets `key` as the newest entry and drops the oldest ones past `max` (see evictOldest). */
export function setNewest<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  evictOldest(map, max);
}

/**
 * When the map holds more than `max` entries, drops the oldest (first in insertion
 * order) down to `max - floor(max / 16)`; returns how many. Maps of up to 15
 * entries are kept at exactly `max`.
 *
 * Why a sixteenth at once: a `map.keys()` iterator starts at the front of V8's table
 * and steps over every entry deleted since the table was last compacted, and
 * evicting the oldest entry one at a time leaves exactly those there: at a 16,384
 * bound one eviction per insert cost 4-5 µs, at 65,536 15-18 µs
 * (bench/bounded-map.ts). Evicting in batches pays that walk once per max/16
 * inserts. (Keeping one iterator per map alive instead is not safe: an iterator
 * that does not move keeps every table V8 replaced since, with their entries.)
 */
export function evictOldest<K, V>(map: Map<K, V>, max: number): number {
  if (map.size <= max) return 0;
  const target = max - Math.floor(max / 16);
  let evicted = 0;
  for (const key of map.keys()) {
    if (map.size <= target) break;
    map.delete(key);
    evicted++;
  }
  return evicted;
}
