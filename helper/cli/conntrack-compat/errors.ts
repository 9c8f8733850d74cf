/**
 * How a conntrack-tools command line fails: the messages' prefix, the "Try"
 * line, and the errors the runner turns into 1.4.7's messages and exit
 * statuses (run.ts).
 */
export const COMPAT_PREFIX = 'conntrack v1.4.7 (conntrack-tools): ';
export const TRY_HELP = "Try `conntrack -h' or 'conntrack --help' for more information.\n";

/** A conntrack-tools PARAMETER_PROBLEM: message, the "Try" line, exit 2. */
export class CompatUsageError extends Error {
  override readonly name = 'CompatUsageError';
  /** 2 (PARAMETER_PROBLEM, with the "Try" line) or 1 (OTHER_PROBLEM, without). */
  constructor(
    message: string,
    readonly exitStatus: 1 | 2 = 2,
  ) {
    super(message);
  }
}

/** A refusal printed as "Operation failed: ..." (exit status 1). */
export class OperationFailed extends Error {}

/** Not implemented: said plainly, exit status 1. */
export class NotSupported extends Error {}
