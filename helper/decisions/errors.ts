import { CodedError } from '../common/coded-error.js';

export type DecisionsErrorCode =
  /** A rule's match is malformed (bad CIDR, bad host pattern). */
  | 'INVALID_RULE'
  /** No rule, or no prompt, has this id. */
  | 'NOT_FOUND'
  /** The prompt was already answered (or timed out): the first answer wins. */
  | 'ALREADY_RESOLVED'
  /** rules.json was written by a newer Portcullis: it is left untouched. */
  | 'NEWER_VERSION'
  /** rules.json has a version with no migration path to the current one. */
  | 'UNSUPPORTED_VERSION'
  /** rules.json is not valid JSON or not a valid rules document (moved aside). */
  | 'CORRUPT'
  /** An import document failed validation: nothing was changed. */
  | 'INVALID_IMPORT'
  /** Reading or writing the state directory failed. */
  | 'IO'
  /** The store or broker was closed. */
  | 'CLOSED'
  /** The settings are owned elsewhere (a broker given a settings function): change them there. */
  | 'READ_ONLY';

/** Every error of the decisions library (rules, store, prompts): `code` says which. */
export class DecisionsError extends CodedError<
  DecisionsErrorCode,
  {
    /** The file concerned, when there is one. */
    path?: string;
    /** Where a corrupt file was moved. */
    movedTo?: string;
    /** The version found in a file. */
    version?: unknown;
    cause?: unknown;
  }
> {
  override readonly name = 'DecisionsError';
}
