/**
 * Ties the bridge (src-main/node/bridge.ts) to Electron main: the launcher's
 * connection feeds the bridge, the bridge's api is served on the trusted IPC
 * (every invoke channel validated, every push channel forwarded with a
 * snapshot for a window that subscribes late), and its pending prompts drive
 * the tray count and the notices. main.ts passes these options to runApp.
 */
import type { IpcClient } from '../../helper/protocol/index.js';
import type { HelperStatus, PushChannel } from '../common/api.js';
import { linkStatus, type HelperLinkState } from '../common/helper-link.js';
import { forwardPushChannels, registerInvokeChannels, trackPrompts } from '../node/api-host.js';
import { HelperBridge } from '../node/bridge.js';
import { connectHelper } from '../node/helper-client.js';
import type { HelperConnection } from '../node/launcher.js';
import type { AppContext, AppOptions } from './app-main.js';

export type BridgeOptions = Pick<
  AppOptions,
  'connect' | 'registerApi' | 'statusOf' | 'onSubscribe'
>;

export function bridgeOptions(
  bridge = new HelperBridge(),
  connect: (path: string, token: string) => Promise<IpcClient> = (p, t) => connectHelper(p, t),
): BridgeOptions {
  // The launcher hands back the HelperConnection we made: find its client.
  const clients = new WeakMap<HelperConnection, IpcClient>();
  let forwarder: ReturnType<typeof forwardPushChannels> | null = null;
  return {
    connect: async (path, token) => {
      const client = await connect(path, token);
      clients.set(client, client);
      return client;
    },
    statusOf: (s: HelperLinkState): HelperStatus => ({
      ...linkStatus(s),
      state: bridge.status.state,
    }),
    onSubscribe: (channel: PushChannel) => {
      // helperStatus is sent by app-main itself.
      if (channel !== 'helperStatus') forwarder?.subscribed(channel);
    },
    registerApi: (ctx: AppContext) => {
      // Main serves these two itself (app-main.ts): they are about its link
      // to the helper, which the launcher owns, not the bridge.
      registerInvokeChannels(ctx.ipc, bridge.api, ['getHelperStatus', 'retryHelper']);
      forwarder = forwardPushChannels(bridge.api, (channel, payload) => ctx.push(channel, payload));
      trackPrompts(bridge.api, (pending, answered) => ctx.promptsChanged(pending, answered));
      ctx.launcher.onState((s) => bridge.setLink(linkStatus(s)));
      ctx.launcher.onConnection((c) => {
        const client = c ? clients.get(c) : undefined;
        if (!client) {
          bridge.detach();
          return;
        }
        void bridge.attach(client).catch(() => bridge.detach());
      });
    },
  };
}
