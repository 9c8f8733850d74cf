// The one channel map (src-main/common/api.ts) seen from its three sides: the
// preload's lists, Electron main's push list and the channels served with the
// bridge (src-main/node/api-host.ts), and the web host's argument schemas.
import { describe, expect, it, vi } from 'vitest';
import {
  INVOKE_CHANNELS,
  PUSH_CHANNELS,
  type InvokeChannel,
  type PushChannel,
} from '../../../src-main/common/api.js';
import type { InvokeName, PushName } from '../../../src-main/preload/preload.js';
import { INVOKE_ARG_SCHEMAS } from '../../../src-main/node/invoke-args.js';
import { makeElectronStub } from '../../support/electron-stub.js';

// Compile-time, both ways: a channel added on one side only stops tsc.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const invokeAgree: Same<InvokeName, InvokeChannel> = true;
const pushAgree: Same<PushName, PushChannel> = true;

describe('channel map', () => {
  it('preload, main and the web host serve exactly the api.ts channels', async () => {
    vi.resetModules();
    const stub = makeElectronStub();
    vi.doMock('electron', () => stub);
    const preload = await import('../../../src-main/preload/preload.js');
    const main = await import('../../../src-main/electron-main/app-main.js');
    expect([...preload.INVOKE_NAMES]).toEqual([...INVOKE_CHANNELS]);
    expect([...preload.PUSH_NAMES]).toEqual([...PUSH_CHANNELS]);
    expect([...main.PUSH_CHANNELS]).toEqual([...PUSH_CHANNELS]);
    expect(Object.keys(INVOKE_ARG_SCHEMAS)).toEqual([...INVOKE_CHANNELS]);
    expect(invokeAgree && pushAgree).toBe(true);
  });
});
