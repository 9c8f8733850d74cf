/**
 * The app's entry (package.json "main"). Run by Electron only; the helper is
 * never started through here (it runs as `portcullis helper` under
 * ELECTRON_RUN_AS_NODE=1, see src-main/node/elevation.ts).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bridgeOptions } from './api-wiring.js';
import { runApp } from './app-main.js';

// dist/src-main/electron-main/main.js -> the package root (the checkout, or app.asar).
const appRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
// The bridge serves the renderer's api from the helper (api-wiring.ts).
runApp({ appRoot, ...bridgeOptions() });
