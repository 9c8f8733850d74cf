/**
 * An asynchronous sort: the worker in the app, absent in tests (the store then
 * sorts synchronously). One request in flight at a time: a newer request
 * supersedes an older one, whose reply is dropped.
 */
import type { SortInput } from './flow-view.js';
import type { SortReply, SortRequest } from './sort.worker.js';

export interface AsyncSorter {
  sort(input: SortInput): Promise<Uint32Array | null>;
  dispose(): void;
}

export function workerSorter(): AsyncSorter | null {
  if (typeof Worker === 'undefined') return null;
  const worker = new Worker(new URL('./sort.worker.ts', import.meta.url), { type: 'module' });
  let seq = 0;
  let pending: { seq: number; resolve: (order: Uint32Array | null) => void } | null = null;
  worker.onmessage = (event: MessageEvent<SortReply>) => {
    if (pending && event.data.seq === pending.seq) {
      pending.resolve(event.data.order);
      pending = null;
    }
  };
  return {
    sort(input) {
      pending?.resolve(null); // superseded
      const request: SortRequest = { ...input, seq: ++seq };
      const transfer: Transferable[] = [input.ids.buffer];
      if (input.keys instanceof Float64Array) transfer.push(input.keys.buffer);
      return new Promise((resolve) => {
        pending = { seq: request.seq, resolve };
        worker.postMessage(request, transfer);
      });
    },
    dispose() {
      pending?.resolve(null);
      worker.terminate();
    },
  };
}
