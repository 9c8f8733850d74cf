import { describe, expect, it } from 'vitest';
import { appRequestHandler, resolveAppFile } from '../../../src-main/electron-main/app-protocol.js';
import { RENDERER_CSP, contentType } from '../../../src-main/node/renderer-files.js';

const root = '/opt/Portcullis/resources/app.asar/dist/renderer';

describe('app:// resolution', () => {
  it('maps paths inside dist/renderer, / to index.html', () => {
    expect(resolveAppFile('app://portcullis/', root)).toBe(`${root}/index.html`);
    expect(resolveAppFile('app://portcullis/assets/index-abc.js?x=1#y', root)).toBe(
      `${root}/assets/index-abc.js`,
    );
    expect(resolveAppFile('app://portcullis/a%20b.css', root)).toBe(`${root}/a b.css`);
  });

  it('refuses escapes, hidden files, other hosts and schemes', () => {
    // The URL parser folds these dot segments itself: they stay inside the root.
    expect(resolveAppFile('app://portcullis/../../etc/passwd', root)).toBe(`${root}/etc/passwd`);
    expect(resolveAppFile('app://portcullis/%2e%2e/%2e%2e/etc/passwd', root)).toBe(
      `${root}/etc/passwd`,
    );
    // Encoded slashes survive parsing and are refused after decoding.
    for (const url of [
      'app://portcullis/assets/..%2f..%2f..%2fetc/passwd',
      'app://portcullis/.env',
      'app://portcullis/a%00.js',
      'app://portcullis/%E0%A4%A',
      'app://evil/index.html',
      'file:///etc/passwd',
      'not a url',
    ]) {
      expect(resolveAppFile(url, root), url).toBeNull();
    }
  });

  it('serves with the CSP, nosniff and the right type; 404 and 405 otherwise', async () => {
    const files = new Map([[`${root}/index.html`, new TextEncoder().encode('<html>')]]);
    const handler = appRequestHandler(root, async (p) => {
      const f = files.get(p);
      if (!f) throw new Error('ENOENT');
      return f;
    });
    const ok = await handler(new Request('app://portcullis/'));
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('<html>');
    expect(ok.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(ok.headers.get('content-security-policy')).toBe(RENDERER_CSP);
    expect(ok.headers.get('x-content-type-options')).toBe('nosniff');
    expect((await handler(new Request('app://portcullis/missing.js'))).status).toBe(404);
    expect((await handler(new Request('app://portcullis/../x'))).status).toBe(404);
    const post = await handler(new Request('app://portcullis/', { method: 'POST', body: 'x' }));
    expect(post.status).toBe(405);
    expect(post.headers.get('content-security-policy')).toBe(RENDERER_CSP);
  });

  it('types module scripts as JavaScript (ES modules need it)', () => {
    expect(contentType('/a/b.js')).toBe('text/javascript; charset=utf-8');
    expect(contentType('/a/b.bin')).toBe('application/octet-stream');
    expect(RENDERER_CSP).not.toMatch(/unsafe|\*/);
  });
});
