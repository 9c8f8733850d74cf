/**
 * Which UI `portcullis start` opens: the Electron window where its binary was
 * installed (npm's electron package downloads it; ELECTRON_SKIP_BINARY_DOWNLOAD
 * leaves it out), a desktop session exists and the app will find the helper,
 * otherwise the web UI in the user's browser.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { UiChoice } from './start-args.js';

/** node_modules/electron's binary under `root`, or null when it was not downloaded. */
export function electronBinary(root: string): string | null {
  const pkg = join(root, 'node_modules', 'electron');
  let rel: string;
  try {
    rel = readFileSync(join(pkg, 'path.txt'), 'utf8').trim();
  } catch {
    return null;
  }
  const bin = join(pkg, 'dist', rel);
  return rel !== '' && existsSync(bin) ? bin : null;
}

export interface UiFacts {
  electron: string | null;
  desktop: boolean;
  /** The UI runs as root (Electron's sandbox refuses to). */
  asRoot: boolean;
  /** The helper listens where the app looks (the service's socket). */
  defaultSocket: boolean;
}

export type UiPlan = { kind: 'electron'; binary: string } | { kind: 'web' } | { kind: 'none' };

/** Why Electron cannot be used, or null. */
function electronUnusable(f: UiFacts): string | null {
  if (f.electron === null) return 'its binary is not installed (node_modules/electron)';
  if (!f.desktop) return 'there is no desktop session (DISPLAY, WAYLAND_DISPLAY)';
  if (f.asRoot) return 'it would run as root: run start with sudo from your desktop session';
  if (!f.defaultSocket) return 'the app finds only the default helper socket';
  return null;
}

/** The UI to start; an error message when --ui electron cannot be honoured. */
export function chooseUi(choice: UiChoice, f: UiFacts): UiPlan | { error: string } {
  if (choice === 'none') return { kind: 'none' };
  if (choice === 'web') return { kind: 'web' };
  const why = electronUnusable(f);
  if (why === null) return { kind: 'electron', binary: f.electron! };
  if (choice === 'electron') return { error: `--ui electron: ${why}` };
  return { kind: 'web' };
}
