import { CodedError } from '../common/coded-error.js';

export type HistoryErrorCode =
  /** Reading, writing or deleting a segment failed. */
  | 'IO'
  /** A query's parameters are out of range (too many buckets). */
  | 'INVALID_QUERY'
  /** The store was closed. */
  | 'CLOSED';

/** Every error of the history store: `code` says which. */
export class HistoryError extends CodedError<HistoryErrorCode, { cause?: unknown }> {
  override readonly name = 'HistoryError';
}
