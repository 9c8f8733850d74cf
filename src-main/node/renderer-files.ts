/**
 * How the renderer's files are served, the same through both doors to the page
 * (Electron's app:// in electron-main/app-protocol.ts and the web host in
 * web-host.ts): the CSP and security headers of every response, the content
 * type of a file, and the guard that keeps a request path inside the renderer
 * directory. A second copy of any of these would drift (the two CSPs once did).
 */
import { existsSync } from 'node:fs';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** CSP directive name -> its sources. */
export type CspDirectives = Readonly<Record<string, readonly string[]>>;

export function buildContentSecurityPolicy(directives: CspDirectives): string {
  return Object.entries(directives)
    .map(([name, sources]) => [name, ...sources].join(' '))
    .join('; ');
}

/**
 * No inline script, no eval, nothing remote. Stricter than the meta tag of
 * src-renderer/index.html, which also allows the web host's loopback
 * WebSocket by address (the browser applies both). `worker-src` is spelled
 * out because the renderer starts a module worker (the flows sorter): without
 * it the worker's sources would follow from script-src through the fallback
 * chain, and a change to script-src would silently change what a worker may
 * load.
 */
const RENDERER_CSP_DIRECTIVES = {
  'default-src': ["'none'"],
  'script-src': ["'self'"],
  'worker-src': ["'self'"],
  'style-src': ["'self'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'object-src': ["'none'"],
  'frame-ancestors': ["'none'"],
} as const satisfies CspDirectives;

/** The Content-Security-Policy of every response of either host. */
export const RENDERER_CSP = buildContentSecurityPolicy(RENDERER_CSP_DIRECTIVES);

/** The headers every response of either host carries, with its content type. */
export function rendererSecurityHeaders(type: string): Record<string, string> {
  return {
    'Content-Type': type,
    'Content-Security-Policy': RENDERER_CSP,
    'X-Content-Type-Options': 'nosniff',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Referrer-Policy': 'no-referrer',
  };
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
};

/** By extension; ES modules are refused by the browser unless typed as JavaScript. */
export function contentType(file: string): string {
  return MIME[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The file for a URL's pathname (still percent-encoded), or null: a path that
 * does not decode, holds a NUL, names a dot-file or dot-directory (which also
 * refuses `..` once `%2f` has been decoded into a separator), or would leave
 * `root`. Symlinks inside the root are followed: whoever can write there can
 * already replace index.html.
 */
export function resolveRendererPath(pathname: string, root: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
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

/** dist/renderer, from the source tree or the compiled one. */
export function defaultRendererDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'renderer');
    const parent = dirname(dir);
    if (parent === dir) return join(process.cwd(), 'dist', 'renderer');
    dir = parent;
  }
}
