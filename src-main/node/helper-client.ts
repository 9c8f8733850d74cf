/**
 * The connection to the helper's socket, for HelperLauncher and the web host:
 * the protocol's IpcClient (it has the close()/onClose() HelperConnection
 * needs, and the typed call()/on() the bridge uses).
 */
import { IpcClient } from '../../helper/protocol/index.js';

export function connectHelper(
  path: string,
  token: string,
  build = 'portcullis-app',
): Promise<IpcClient> {
  return IpcClient.connect({ path, token, build });
}
