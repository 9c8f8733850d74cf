/** Listener lists of the libraries' event sources (packets, mappings, errors). */

/** Adds `listener` to `list`; returns the function that removes it again. A
 * Set holds a listener once; an array once per call. */
export function subscribe<T>(list: T[] | Set<T>, listener: T): () => void {
  if (list instanceof Set) {
    list.add(listener);
    return () => list.delete(listener);
  }
  list.push(listener);
  return () => {
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  };
}

/**
 * Calls every listener with `value`. A listener that throws does not keep the
 * value from the ones after it: its error goes to `onThrow`, with the value
 * (so that one `onThrow` made up front serves every call of a hot path).
 */
export function callEach<V>(
  listeners: Iterable<(value: V) => void>,
  value: V,
  onThrow: (error: unknown, value: V) => void,
): void {
  for (const listener of listeners) {
    try {
      listener(value);
    } catch (error) {
      onThrow(error, value);
    }
  }
}
