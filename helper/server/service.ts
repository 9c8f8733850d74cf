/**
 * What the IPC server needs from the rest of the helper: one async function
 * per method (named exactly as on the wire, so the catalogue in
 * helper/protocol/messages.ts is the only list to keep), and the current
 * flow table for the snapshot a new `flows` subscriber gets. Events go the
 * other way: the daemon calls `server.publish(topic, data)`.
 */
import type { MethodName, Params, Result } from '../protocol/messages.js';
import type { Flow } from '../protocol/model.js';

/** Methods the server answers itself (subscriptions are per connection). */
export type ServerMethod = 'subscribe' | 'unsubscribe';
export type ServiceMethod = Exclude<MethodName, ServerMethod>;

/** Who is calling: the authenticated peer of the connection. */
export interface CallContext {
  /** A number unique to the connection within this server's lifetime. */
  clientId: number;
  /** SO_PEERCRED of the connecting process. */
  peer: { pid: number; uid: number; gid: number };
}

/** The handler of one method. Params are already validated; the result is
 * validated before it is sent (a mismatch is logged and sent as `internal`).
 * Throw ServiceError (helper/protocol/errors.ts) for an error the client
 * should see with its code; any other error becomes `internal`. */
export type MethodHandler<M extends ServiceMethod> = (
  params: Params<M>,
  context: CallContext,
) => Promise<Result<M>>;

export type HelperService = {
  readonly [M in ServiceMethod]: MethodHandler<M>;
} & {
  /**
   * The flows the helper tracks now, for a new `flows` subscriber. It is
   * synchronous on purpose: the snapshot and the deltas published after it
   * must be ordered, and a synchronous copy of the in-memory table cannot
   * interleave with a publish().
   */
  flowsSnapshot(): Iterable<Flow>;
  /**
   * Called before a client's first `flows` subscription takes its snapshot: the
   * helper starts following the whole table here (it follows only flow ends while
   * nobody watches). The snapshot is taken synchronously after it resolves.
   */
  prepareFlows?(): Promise<void>;
  /**
   * The client's connection closed (for whatever reason): state kept for it
   * (staged imports) can go. Called once per authenticated connection.
   */
  clientClosed?(context: CallContext): void;
};
