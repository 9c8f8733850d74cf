/**
 * app://portcullis/ serves dist/renderer instead of file:// (which would give
 * the page a null origin and reach for any file). Paths, headers and the CSP
 * are the web host's too (node/renderer-files.ts).
 */
import type { Protocol } from 'electron';
import { readFile } from 'node:fs/promises';
import {
  contentType,
  rendererSecurityHeaders,
  resolveRendererPath,
} from '../node/renderer-files.js';
import { APP_HOST, APP_SCHEME } from './security.js';

/** Must run before app 'ready': a standard, secure scheme gets an origin,
 * ES modules and fetch. */
export function registerAppScheme(protocol: Protocol): void {
  protocol.registerSchemesAsPrivileged([
    {
      scheme: APP_SCHEME,
      privileges: { standard: true, secure: true, supportFetchAPI: true, codeCache: true },
    },
  ]);
}

/** The file for an app:// URL, or null (wrong scheme or host, or refused by the path guard). */
export function resolveAppFile(url: string, root: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== `${APP_SCHEME}:` || parsed.host !== APP_HOST) return null;
  return resolveRendererPath(parsed.pathname, root);
}

export type ReadFile = (path: string) => Promise<Uint8Array>;

/** The handler, separate from Electron so that tests call it with Requests. */
export function appRequestHandler(
  root: string,
  read: ReadFile = (p) => readFile(p),
): (request: Request) => Promise<Response> {
  const plain = (status: number, body: string): Response =>
    new Response(body, { status, headers: rendererSecurityHeaders('text/plain') });
  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return plain(405, 'method not allowed');
    }
    const file = resolveAppFile(request.url, root);
    if (file === null) return plain(404, 'not found');
    try {
      const body = await read(file);
      return new Response(request.method === 'HEAD' ? null : body, {
        status: 200,
        headers: rendererSecurityHeaders(contentType(file)),
      });
    } catch {
      return plain(404, 'not found');
    }
  };
}

/** After app 'ready'. */
export function serveRenderer(protocol: Protocol, root: string, read?: ReadFile): void {
  protocol.handle(APP_SCHEME, appRequestHandler(root, read));
}
