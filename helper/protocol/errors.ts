/**
 * Error codes that cross the IPC socket, and the Error classes both ends
 * build from them. Errors travel as data ({code, message}) and are rebuilt
 * into a real Error on the receiving side (Podman Desktop's envelope), so a
 * caller can branch on `error.code` instead of parsing messages.
 */
import * as v from 'valibot';

export const ErrorCode = v.picklist([
  // Connection-level (an `error` frame, not tied to a request).
  'bad-frame', // not JSON, or not any frame the protocol knows
  'frame-too-large', // the length prefix exceeds MAX_FRAME_BYTES
  'unauthenticated', // a request before a successful Hello
  'forbidden', // the peer's uid (SO_PEERCRED) is not allowed
  'bad-token', // the Hello's token does not match
  'protocol-mismatch', // a different protocol major version
  'handshake-timeout', // no Hello in time
  'too-many-errors', // repeated abuse: the connection is closed
  'slow-consumer', // the outbound queue overflowed: closed after a cut-off
  'shutting-down', // the helper is stopping
  // Request-level (a response with ok: false).
  'unknown-method',
  'invalid-params',
  'busy', // too many requests in flight on this connection
  'result-too-large', // the result does not fit a frame: ask for a smaller page
  'not-found',
  'conflict',
  'unavailable', // the helper cannot do it now (e.g. no conntrack access)
  'internal', // a bug in the helper; details are in its log
  // Client-side only.
  'timeout',
  'closed',
  'bad-response',
]);
export type ErrorCode = v.InferOutput<typeof ErrorCode>;

export const ErrorBody = v.object({
  code: ErrorCode,
  message: v.pipe(v.string(), v.maxLength(4096)),
});
export type ErrorBody = v.InferOutput<typeof ErrorBody>;

/** An error a HelperService method throws on purpose: its code and message
 * reach the client unchanged. Anything else thrown becomes `internal`. */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly code: Extract<ErrorCode, 'not-found' | 'conflict' | 'invalid-params' | 'unavailable'>,
    message: string,
  ) {
    super(message);
  }
}

/** An error the client reports: a response with ok: false, a connection
 * error frame, a timeout or a closed connection. */
export class IpcError extends Error {
  override readonly name = 'IpcError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
