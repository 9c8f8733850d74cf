import type { PortcullisApi } from '../../src-main/common/api.js';

// The preload (Electron) defines window.portcullis before the renderer runs.
declare global {
  interface Window {
    portcullis?: PortcullisApi;
  }
}

export {};
