/**
 * What a renderer component test stands on: a fresh Pinia, the in-memory API with the
 * stores attached to it, and mounted components unmounted after each test.
 */
import { mount, type VueWrapper } from '@vue/test-utils';
import { createPinia, setActivePinia, type Pinia } from 'pinia';
import { afterEach, beforeEach } from 'vitest';
import type { Component } from 'vue';
import { apiKey } from '../../../src-renderer/src/api.js';
import { attachStores } from '../../../src-renderer/src/stores/index.js';
import { MemoryPortcullis } from '../../support/memory-api.js';

export interface RendererBed {
  readonly pinia: Pinia;
  readonly api: MemoryPortcullis;
  /** Mounts into the document with the bed's Pinia and API. */
  mount(component: Component, props?: Record<string, unknown>): VueWrapper;
  /** Starts again with `api` (one set up before the stores attach, as at a UI's start). */
  restart(api: MemoryPortcullis): void;
  /** Detaches the stores now (App attaches them itself). */
  detachStores(): void;
}

/** Registers the bed's beforeEach/afterEach; its fields are each test's own. */
export function rendererBed(): RendererBed {
  let pinia: Pinia;
  let api: MemoryPortcullis;
  let detach: () => void = () => undefined;
  const mounted: VueWrapper[] = [];
  const start = (next: MemoryPortcullis): void => {
    pinia = createPinia();
    setActivePinia(pinia);
    api = next;
    detach = attachStores(api);
  };
  beforeEach(() => start(new MemoryPortcullis()));
  afterEach(() => {
    for (const w of mounted.splice(0)) w.unmount();
    detach();
  });
  return {
    get pinia() {
      return pinia;
    },
    get api() {
      return api;
    },
    mount(component, props = {}) {
      const w = mount(component, {
        props,
        attachTo: document.body,
        global: { plugins: [pinia], provide: { [apiKey as symbol]: api } },
      });
      mounted.push(w);
      return w;
    },
    restart(next) {
      detach();
      start(next);
    },
    detachStores() {
      detach();
      detach = () => undefined;
    },
  };
}
