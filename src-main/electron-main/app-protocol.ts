/**
 * app://portcullis/ serves dist/renderer instead of file:// (which would give
 * the page a null origin and reach for any file). Requests are resolved
 * strictly inside the root; every response carries the CSP.
 */
import type { Protocol } from 'electron';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { APP_HOST, APP_SCHEME, CONTENT_SECURITY_POLICY } from './security.js';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
};

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

/** The file for an app:// URL, or null (wrong host, escape, hidden file). */
export function resolveAppFile(url: string, root: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== `${APP_SCHEME}:` || parsed.host !== APP_HOST) return null;
  let path: string;
  try {
    path = decodeURIComponent(parsed.pathname);
  } catch {
    return null;
  }
  if (path.includes('\0')) return null;
  if (path === '/' || path === '') path = '/index.html';
  const segments = path.split('/').filter((s) => s !== '');
  if (segments.some((s) => s.startsWith('.'))) return null;
  const file = normalize(join(root, ...segments));
  const base = normalize(root.endsWith(sep) ? root : root + sep);
  return file.startsWith(base) ? file : null;
}

export function contentType(file: string): string {
  return MIME[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

export type ReadFile = (path: string) => Promise<Uint8Array>;

function headers(type: string): Record<string, string> {
  return {
    'Content-Type': type,
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Referrer-Policy': 'no-referrer',
  };
}

/** The handler, separate from Electron so that tests call it with Requests. */
export function appRequestHandler(
  root: string,
  read: ReadFile = (p) => readFile(p),
): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return new Response('method not allowed', { status: 405, headers: headers('text/plain') });
    }
    const file = resolveAppFile(request.url, root);
    if (file === null)
      return new Response('not found', { status: 404, headers: headers('text/plain') });
    try {
      const body = await read(file);
      return new Response(request.method === 'HEAD' ? null : body, {
        status: 200,
        headers: headers(contentType(file)),
      });
    } catch {
      return new Response('not found', { status: 404, headers: headers('text/plain') });
    }
  };
}

/** After app 'ready'. */
export function serveRenderer(protocol: Protocol, root: string, read?: ReadFile): void {
  protocol.handle(APP_SCHEME, appRequestHandler(root, read));
}
