export type HistoryErrorCode =
  /** Reading, writing or deleting a segment failed. */
  | 'IO'
  /** A query's parameters are out of range (too many buckets). */
  | 'INVALID_QUERY'
  /** The store was closed. */
  | 'CLOSED';

/** Every error of the history store: `code` says which. */
export class HistoryError extends Error {
  override readonly name = 'HistoryError';
  constructor(
    readonly code: HistoryErrorCode,
    message: string,
    readonly details: { cause?: unknown } = {},
  ) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
  }
}
