/**
 * The connection to the helper's socket, for HelperLauncher.
 *
 * MERGE: replace the body with the protocol branch's client, which already has
 * the shape HelperConnection needs (close(), onClose()):
 *
 *   import { IpcClient } from '../../helper/protocol/client.js';
 *   return IpcClient.connect({ path, token, build: `portcullis-app ${version}` });
 *
 * Until then main starts, shows the window and reports why it cannot connect.
 */
import type { HelperConnection } from './launcher.js';

export async function connectHelper(path: string, _token: string): Promise<HelperConnection> {
  throw new Error(`cannot connect to ${path}: the protocol client is not built into this app yet`);
}
