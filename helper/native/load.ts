import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeBinding } from './types.js';

const ADDON = 'portcullis_native.node';

/** Where the addon may live: an explicit override, the source tree (tests run
 * from helper/), the compiled tree (dist/helper/) and a packaged app's
 * unpacked resources. */
export function nativeCandidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const list: string[] = [];
  const override = process.env['PORTCULLIS_NATIVE'];
  if (override) list.push(resolve(override));
  list.push(join(here, '../../native/build/Release', ADDON));
  list.push(join(here, '../../../native/build/Release', ADDON));
  const resources = (process as { resourcesPath?: string }).resourcesPath;
  if (resources) list.push(join(resources, 'native', ADDON));
  return list;
}

let cached: NativeBinding | undefined;

/** Loads the addon once, from the first candidate that exists; the error
 * lists every path tried so a broken install explains itself. */
export function loadNativeBinding(): NativeBinding {
  if (cached) return cached;
  if (process.platform !== 'linux') {
    throw new Error(
      `portcullis native addon: not implemented on ${process.platform} (netlink is Linux-only)`,
    );
  }
  const require = createRequire(import.meta.url);
  const tried = nativeCandidates();
  for (const path of tried) {
    if (existsSync(path)) {
      cached = require(path) as NativeBinding;
      return cached;
    }
  }
  throw new Error(
    `portcullis native addon not found; run \`npm run build:native\`. Tried:\n  ${tried.join('\n  ')}`,
  );
}
