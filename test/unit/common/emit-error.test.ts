import { afterEach, describe, expect, it, vi } from 'vitest';
import { emitError } from '../../../helper/common/emit-error.js';

afterEach(() => {
  vi.restoreAllMocks();
});

class CodedError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

describe('emitError', () => {
  it('with no listener prints a process warning of the given type, with the code', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    emitError([], new CodedError('queue 3: gone', 'SOCKET'), 'NfQueueWarning');
    expect(warn).toHaveBeenCalledWith('queue 3: gone', { type: 'NfQueueWarning', code: 'SOCKET' });
    emitError(new Set<(e: Error) => void>(), new Error('plain'), 'DnsSnooperWarning');
    expect(warn).toHaveBeenLastCalledWith('plain', { type: 'DnsSnooperWarning' });
  });

  it('gives the error to every listener, array or set, even when one throws', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const seen: string[] = [];
    const error = new Error('boom');
    const listeners = [
      (e: Error) => seen.push(`a:${e.message}`),
      () => {
        throw new Error('listener bug');
      },
      (e: Error) => seen.push(`c:${e.message}`),
    ];
    emitError(listeners, error, 'X');
    emitError(new Set(listeners), error, 'X');
    expect(seen).toEqual(['a:boom', 'c:boom', 'a:boom', 'c:boom']);
    expect(warn).not.toHaveBeenCalled();
  });
});
