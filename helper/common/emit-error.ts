/**
 * Hands an error to every listener. Never silent: with nobody listening, Node prints
 * it as a process warning of type `warningType` (with the error's `code` when it has
 * one). A listener that throws has nowhere left to report to, so its failure is
 * dropped and the other listeners still get the error.
 */
export function emitError<E extends Error>(
  listeners: Iterable<(error: E) => void> &
    ({ readonly length: number } | { readonly size: number }),
  error: E,
  warningType: string,
): void {
  const count = 'length' in listeners ? listeners.length : listeners.size;
  if (count === 0) {
    const code = (error as Error & { code?: unknown }).code;
    process.emitWarning(
      error.message,
      typeof code === 'string' ? { type: warningType, code } : { type: warningType },
    );
    return;
  }
  for (const listener of listeners) {
    try {
      listener(error);
    } catch {
      // Dropped: see above.
    }
  }
}
