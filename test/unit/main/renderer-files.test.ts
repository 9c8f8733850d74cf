// The two doors to the renderer's files, Electron's app:// handler and the web
// host (a real one on loopback), answer the same: one CSP, the same security
// headers, and the same refusals of paths that would leave the renderer
// directory.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PortcullisApi } from '../../../src-main/common/api.js';
import { appRequestHandler } from '../../../src-main/electron-main/app-protocol.js';
import {
  RENDERER_CSP,
  buildContentSecurityPolicy,
  resolveRendererPath,
} from '../../../src-main/node/renderer-files.js';
import { startWebHost, type WebHost } from '../../../src-main/node/web-host.js';

interface Answer {
  status: number;
  body: string;
  header(name: string): string | null;
}

let dir: string;
let root: string;
let web: WebHost;
let app: (request: Request) => Promise<Response>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pcl-files-'));
  root = join(dir, 'renderer');
  mkdirSync(join(root, 'assets'), { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(root, 'assets', 'app.js'), 'export {};');
  writeFileSync(join(root, '.env'), 'SECRET');
  writeFileSync(join(dir, 'secret.txt'), 'SECRET');
  // Static files only: no WebSocket is opened, so the api is never called.
  web = await startWebHost({ api: {} as PortcullisApi, rendererDir: root });
  app = appRequestHandler(root, (p) => readFile(p));
});

afterAll(async () => {
  await web.close();
  rmSync(dir, { recursive: true, force: true });
});

function fromWeb(path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: web.port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          header: (name) => {
            const v = res.headers[name.toLowerCase()];
            return typeof v === 'string' ? v : null;
          },
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

async function fromApp(path: string): Promise<Answer> {
  const res = await app(new Request(`app://portcullis${path}`));
  return { status: res.status, body: await res.text(), header: (name) => res.headers.get(name) };
}

const SHARED_HEADERS = [
  'content-security-policy',
  'x-content-type-options',
  'cross-origin-opener-policy',
  'referrer-policy',
];

describe('app:// and the web host', () => {
  it('send one CSP and the same security headers with a file and with a refusal', async () => {
    for (const path of ['/', '/assets/app.js', '/missing.js', '/.env']) {
      const [a, w] = [await fromApp(path), await fromWeb(path)];
      expect([a.status, w.status], path).toEqual(
        path.includes('.env') || path.includes('missing') ? [404, 404] : [200, 200],
      );
      expect(a.header('content-security-policy'), path).toBe(RENDERER_CSP);
      for (const name of SHARED_HEADERS)
        expect(w.header(name), `${path} ${name}`).toBe(a.header(name));
    }
    expect(RENDERER_CSP).toContain("worker-src 'self'");
    expect(RENDERER_CSP).not.toMatch(/unsafe|\*/);
  });

  it('refuse the same paths out of the renderer directory', async () => {
    const escapes = [
      '/..%2fsecret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/..%5csecret.txt',
      '/%2e%2e/secret.txt',
      '/../secret.txt',
      '/.env',
      '/assets/%2eenv',
      '/index.html%00.js',
      '/%00',
      '/%E0%A4%A',
    ];
    for (const path of escapes) {
      const [a, w] = [await fromApp(path), await fromWeb(path)];
      expect({ app: a.status, web: w.status }, path).toEqual({ app: 404, web: 404 });
      expect(a.body + w.body, path).not.toContain('SECRET');
    }
  });
});

describe('renderer-files', () => {
  it('builds a CSP from its directives in order', () => {
    expect(
      buildContentSecurityPolicy({ 'default-src': ["'none'"], 'img-src': ["'self'", 'data:'] }),
    ).toBe("default-src 'none'; img-src 'self' data:");
  });

  it('resolves inside the root only, / to index.html', () => {
    expect(resolveRendererPath('/', '/r')).toBe('/r/index.html');
    expect(resolveRendererPath('/assets/a%20b.js', '/r/')).toBe('/r/assets/a b.js');
    expect(resolveRendererPath('/..%2fetc/passwd', '/r')).toBeNull();
    expect(resolveRendererPath('/a%00b', '/r')).toBeNull();
  });
});
