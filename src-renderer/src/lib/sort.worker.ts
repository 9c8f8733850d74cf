/**
 * Sorts the Connections table off the main thread: live re-sorts of 100,000
 * flows would otherwise stall scrolling for a frame or ten. It receives only
 * keys and ids (a transferable Float64Array for numeric columns) and answers
 * with the order as a transferred Uint32Array.
 */
import { sortOrder, type SortInput } from './flow-view.js';

export interface SortRequest extends SortInput {
  seq: number;
}

export interface SortReply {
  seq: number;
  order: Uint32Array;
}

interface WorkerScope {
  onmessage: ((event: MessageEvent<SortRequest>) => void) | null;
  postMessage(message: SortReply, transfer: Transferable[]): void;
}

const scope = self as unknown as WorkerScope;
scope.onmessage = (event) => {
  const order = sortOrder(event.data);
  scope.postMessage({ seq: event.data.seq, order }, [order.buffer]);
};
