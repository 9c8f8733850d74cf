/**
 * Installs window.portcullis from the web host (transport/ws-client.ts) when
 * the page was not given an API by Electron's preload.
 *
 * The token comes in the URL fragment (`#token=...`), which the browser never
 * sends to a server; it is moved to sessionStorage (so a reload works) and
 * removed from the address bar.
 */
import { WS_PATH } from '../../../src-main/common/web-protocol.js';
import { connectWsApi, type PageSocket } from './ws-client.js';

const TOKEN_KEY = 'portcullis.webToken';

/**
 * Installs window.portcullis from the web host, when the page was not given
 * an API (Electron's preload) and was served by the web host.
 */
export async function installWsApi(): Promise<void> {
  if (window.portcullis) return;
  const params = new URLSearchParams(window.location.hash.slice(1));
  const fromUrl = params.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    // Out of the address bar, the history and any screenshot.
    history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  const token = fromUrl ?? sessionStorage.getItem(TOKEN_KEY);
  if (!token || window.location.protocol !== 'http:') return;
  const url = `ws://${window.location.host}${WS_PATH}`;
  // The DOM's handlers take DOM events; PageSocket reads only data and code.
  const socket = (u: string): PageSocket => new WebSocket(u) as unknown as PageSocket;
  window.portcullis = await connectWsApi({ url, token, socket });
}
