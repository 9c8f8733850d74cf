// TrustedIpc is keyed by the channel map of src-main/common/api.ts: a channel
// name, its argument and its result come from the map, so a wrong one stops
// tsc (the @ts-expect-error lines below are checked by `tsc -p
// tsconfig.test.json`: each fails the typecheck if the error goes away).
import type { IpcMain, WebContents } from 'electron';
import { describe, expect, it } from 'vitest';
import { TrustedIpc, noArgument } from '../../../src-main/electron-main/trusted-ipc.js';
import { validatorFor } from '../../../src-main/node/api-host.js';
import { makeStats } from '../../support/fake-helper-service.js';
import { StubIpcMain, StubWebContents, ipcEvent } from '../../support/electron-stub.js';

function wrongUses(ipc: TrustedIpc, contents: WebContents): void {
  // @ts-expect-error: not an invoke channel of the map
  ipc.handle('killFlows', validatorFor('killFlow'), async () => ({}));
  // @ts-expect-error: killFlow resolves to a KillResult, not a string
  ipc.handle('killFlow', validatorFor('killFlow'), async () => 'killed');
  // @ts-expect-error: the validator must give killFlow's argument (a flow id)
  ipc.handle('killFlow', noArgument, async () => ({ conntrackDeleted: true, socketsDestroyed: 0 }));
  const flows = (): 'flows' => 'flows';
  // @ts-expect-error: not a renderer -> main message
  ipc.on('invoke', flows, () => undefined);
  // @ts-expect-error: not a push channel
  ipc.send(contents, 'flow', null);
  // @ts-expect-error: stats carries Stats
  ipc.send(contents, 'stats', { n: 1 });
}

describe('TrustedIpc', () => {
  it('serves a map channel under the prefix and pushes its typed payload', async () => {
    const ipcMain = new StubIpcMain();
    const ipc = new TrustedIpc(ipcMain as unknown as IpcMain);
    const contents = new StubWebContents();
    ipc.trust(contents as unknown as WebContents);
    ipc.handle('killFlow', validatorFor('killFlow'), async (id) => ({
      conntrackDeleted: id === 7,
      socketsDestroyed: 0,
    }));
    await expect(ipcMain.invoke('portcullis:killFlow', ipcEvent(contents), 7)).resolves.toEqual({
      ok: true,
      result: { conntrackDeleted: true, socketsDestroyed: 0 },
    });
    expect(ipc.send(contents as unknown as WebContents, 'stats', makeStats(1))).toBe(true);
    expect(contents.sent).toEqual([{ channel: 'portcullis:stats', payload: makeStats(1) }]);
    expect(typeof wrongUses).toBe('function');
  });
});
