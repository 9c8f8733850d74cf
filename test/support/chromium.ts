/**
 * Debian's Chromium as the UI tests drive it (playwright-core, DESIGN.md section 10):
 * headless, no sandbox (root in CI), nothing fetched from the network.
 */
export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
];
