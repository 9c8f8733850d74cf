// src-main/node/api-host.ts: the api served through a (fake) trusted IPC.
import { describe, expect, it } from 'vitest';
import { INVOKE_CHANNELS, type Prompt, type PushChannel } from '../../../src-main/common/api.js';
import { MemoryPortcullis } from '../../support/memory-api.js';
import {
  forwardPushChannels,
  registerInvokeChannels,
  trackPrompts,
  validatorFor,
} from '../../../src-main/node/api-host.js';
import { makeFlow, makeHistoryEntry } from '../../support/fake-helper-service.js';

type Handler = { validate: (p: unknown) => unknown; fn: (a: unknown) => Promise<unknown> };

function fakeIpc(): {
  handlers: Map<string, Handler>;
  handle: Parameters<typeof registerInvokeChannels>[0]['handle'];
} {
  const handlers = new Map<string, Handler>();
  return {
    handlers,
    handle: (name, validate, fn) =>
      void handlers.set(name, {
        validate,
        fn: fn as (a: unknown) => Promise<unknown>,
      }),
  };
}

async function call(h: Map<string, Handler>, name: string, arg?: unknown): Promise<unknown> {
  const handler = h.get(name)!;
  return handler.fn(handler.validate(arg));
}

function prompt(id: string): Prompt {
  return {
    id,
    created: 1,
    deadline: 2,
    defaultAction: 'deny',
    request: makeHistoryEntry(1).request,
    held: 1,
  };
}

describe('api-host', () => {
  it('registers every invoke channel but the skipped ones, validating arguments', async () => {
    const api = new MemoryPortcullis();
    const ipc = fakeIpc();
    const done = registerInvokeChannels(ipc, api, ['getHelperStatus']);
    expect(done).toEqual(INVOKE_CHANNELS.filter((c) => c !== 'getHelperStatus'));
    expect([...ipc.handlers.keys()]).toEqual(done);
    const rule = (await call(ipc.handlers, 'addRule', {
      action: 'deny',
      match: { host: 'x.example' },
      duration: { kind: 'forever' },
    })) as { id: string };
    expect(await call(ipc.handlers, 'listRules')).toEqual([rule]);
    await expect(call(ipc.handlers, 'killFlow', 'nope')).rejects.toThrow(/killFlow/);
    expect(() => validatorFor('listRules')({ extra: 1 })).toThrow(/listRules/);
    expect(() => validatorFor('setFlowLabels')({ id: 1, labels: [128] })).toThrow();
    // processIcon: an absolute path without NUL, an app id without slashes.
    expect(validatorFor('processIcon')({ exe: '/usr/bin/x', appId: 'org.x.App' })).toEqual({
      exe: '/usr/bin/x',
      appId: 'org.x.App',
    });
    for (const bad of [
      { exe: 'usr/bin/x', appId: null },
      { exe: '/usr/bin/x\0', appId: null },
      { exe: '/usr/bin/x', appId: '../x' },
      { exe: '/usr/bin/x' },
      { exe: `/${'a'.repeat(5000)}`, appId: null },
    ]) {
      expect(() => validatorFor('processIcon')(bad), JSON.stringify(bad)).toThrow(/processIcon/);
    }
  });

  it('forwards pushes and replays snapshots to a late subscriber', () => {
    const api = new MemoryPortcullis();
    api.flows.set(1, makeFlow(1));
    const sent: [PushChannel, unknown][] = [];
    const fwd = forwardPushChannels(api, (c, p) => void sent.push([c, p]));
    sent.length = 0;
    fwd.subscribed('flows');
    expect(sent).toHaveLength(1);
    expect(sent[0]![0]).toBe('flows');
    expect(sent[0]![1]).toMatchObject({ kind: 'snapshot' });
    fwd.subscribed('helperStatus');
    expect(sent[1]).toEqual(['helperStatus', api.status]);
    fwd.stop();
  });

  it('tracks pending prompts for the tray and the notices', () => {
    const api = new MemoryPortcullis();
    api.prompts.set('p1', prompt('p1'));
    const reports: [string[], string[]][] = [];
    const off = trackPrompts(api, (pending, answered) =>
      reports.push([pending.map((p) => String(p.id)), answered]),
    );
    expect(reports[0]).toEqual([['p1'], []]);
    expect(reports).toHaveLength(1);
    off();
  });
});
