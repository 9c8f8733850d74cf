/**
 * The shape every helper library gives its errors: a `code` that says which
 * failure (callers branch on it, never on the message) and `details` with what
 * the library knew, the underlying error among them as the standard `cause`.
 * A library subclasses it with its own name, codes and details.
 */
export class CodedError<Code extends string, Details extends { cause?: unknown }> extends Error {
  constructor(
    readonly code: Code,
    message: string,
    // Every field of a library's details is optional, so none is a valid value.
    readonly details: Details = {} as Details,
  ) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
  }
}
