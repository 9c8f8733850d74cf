/**
 * Installs window.portcullis from the web host (transport/ws-client.ts) when
 * the page was not given an API by Electron's preload.
 *
 * The page is opened at a URL whose fragment (which the browser never sends
 * to a server) carries a one-time code: `#code=...`. It is removed from the
 * address bar at once and exchanged for a session: an HttpOnly cookie the
 * browser keeps, and a secret kept in sessionStorage (this origin only, port
 * included), so that a reload works without the code, which is dead by then.
 */
import { WEB_SESSION_PATH, WS_PATH } from '../../../src-main/common/web-protocol.js';
import { connectWsApi, exchangeCode, type PageFetch, type PageSocket } from './ws-client.js';

const SESSION_KEY = 'portcullis.webSession';

/**
 * Installs window.portcullis from the web host, when the page was not given
 * an API (Electron's preload) and was served by the web host.
 */
export async function installWsApi(): Promise<void> {
  if (window.portcullis || window.location.protocol !== 'http:') return;
  // A new link pasted into this tab changes only the fragment, which loads nothing:
  // start again with it.
  window.addEventListener('hashchange', () => {
    if (new URLSearchParams(window.location.hash.slice(1)).has('code')) window.location.reload();
  });
  const code = new URLSearchParams(window.location.hash.slice(1)).get('code');
  if (code !== null) {
    // Out of the address bar, the history and any screenshot.
    history.replaceState(null, '', window.location.pathname + window.location.search);
    const fetchFn: PageFetch = (url, init) => fetch(url, { ...init, cache: 'no-store' });
    try {
      sessionStorage.setItem(SESSION_KEY, await exchangeCode(code, fetchFn));
    } catch (error) {
      // A used link opened again in a tab that has a session: keep that one.
      if (!sessionStorage.getItem(SESSION_KEY)) throw error;
    }
  }
  const session = sessionStorage.getItem(SESSION_KEY);
  if (!session) {
    throw new Error(
      'this tab has no session. Run `portcullis ui link` and open the link it prints here ' +
        '(or `portcullis ui link --open`)',
    );
  }
  const url = `ws://${window.location.host}${WS_PATH}`;
  // The DOM's handlers take DOM events; PageSocket reads only data and code.
  const socket = (u: string): PageSocket => new WebSocket(u) as unknown as PageSocket;
  const sessionAlive = async (): Promise<boolean> => {
    const res = await fetch(WEB_SESSION_PATH, { cache: 'no-store', credentials: 'same-origin' });
    return res.status !== 401;
  };
  window.portcullis = await connectWsApi({ url, session, socket, sessionAlive });
}
