import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeBinding, NativeBpfBinding } from './types.js';

const ADDON = 'portcullis_native.node';

/** Where an addon (the main one unless named) may live: an explicit override,
 * the source tree (tests run from helper/), the compiled tree (dist/helper/)
 * and a packaged app's unpacked resources. */
export function nativeCandidates(addon: string = ADDON): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const list: string[] = [];
  const override = process.env['PORTCULLIS_NATIVE'];
  // The override names the main addon; the others sit beside it.
  if (override)
    list.push(addon === ADDON ? resolve(override) : join(dirname(resolve(override)), addon));
  list.push(join(here, '../../native/build/Release', addon));
  list.push(join(here, '../../../native/build/Release', addon));
  const resources = (process as { resourcesPath?: string }).resourcesPath;
  if (resources) list.push(join(resources, 'native', addon));
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

const BPF_ADDON = 'portcullis_bpf.node';
let cachedBpf: NativeBpfBinding | undefined;

/** Loads the BPF addon (it links libbpf.so.1, which a system may lack: the
 * caller falls back to /proc when this throws). */
export function loadBpfBinding(): NativeBpfBinding {
  if (cachedBpf) return cachedBpf;
  const require = createRequire(import.meta.url);
  const tried = nativeCandidates(BPF_ADDON);
  const path = tried.find((candidate) => existsSync(candidate));
  if (path === undefined) {
    throw new Error(
      `portcullis BPF addon not found; run \`npm run build:native\`. Tried:\n  ${tried.join('\n  ')}`,
    );
  }
  cachedBpf = require(path) as NativeBpfBinding;
  return cachedBpf;
}
