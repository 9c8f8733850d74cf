/**
 * Bounded caches kept in a plain Map, whose iteration order is insertion order: an
 * entry re-set goes to the end, so the first key is always the oldest.
 */

/** Sets `key` as the newest entry and drops the oldest ones past `max`. */
export function setNewest<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done) break;
    map.delete(oldest.value);
  }
}
