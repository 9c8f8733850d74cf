// @vitest-environment happy-dom
// Process icons in the renderer: the store asks once per program (not per row or
// render), a few at a time, keeps only image data: URLs, and the views fall back to a
// letter with the same accessible name.
import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { createPinia, setActivePinia, type Pinia } from 'pinia';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nextTick, type Component } from 'vue';
import type {
  PortcullisApi,
  ProcessIcon,
  ProcessIconQuery,
  ProcessInfo,
} from '../../../src-main/common/api.js';
import { MemoryPortcullis } from '../../support/memory-api.js';
import { syntheticFlows } from '../../support/synthetic.js';
import { apiKey } from '../../../src-renderer/src/api.js';
import FlowTable from '../../../src-renderer/src/components/FlowTable.vue';
import ProcessIconView from '../../../src-renderer/src/components/ProcessIcon.vue';
import {
  MAX_ICON_ENTRIES,
  MAX_ICON_REQUESTS,
  iconHue,
  iconLetter,
  useIconsStore,
} from '../../../src-renderer/src/stores/icons.js';
import { attachStores } from '../../../src-renderer/src/stores/index.js';
import PromptsView from '../../../src-renderer/src/views/PromptsView.vue';
import { prompt, request } from './fixtures.js';

const PNG: ProcessIcon = { mime: 'image/png', dataUrl: 'data:image/png;base64,iVBORw0KGgo=' };
const SVG: ProcessIcon = { mime: 'image/svg+xml', dataUrl: 'data:image/svg+xml;base64,PHN2Zy8+' };

let pinia: Pinia;
const mounted: VueWrapper[] = [];

function proc(exe: string | null, comm = 'app', appId: string | null = null): ProcessInfo {
  return { ...request().process!, exe, comm, appId };
}

/** processIcon answered by hand: tests see what is in flight. */
function manualApi(): {
  api: PortcullisApi;
  calls: { query: ProcessIconQuery; answer: (i: ProcessIcon | null) => void; fail: () => void }[];
} {
  const base = new MemoryPortcullis();
  const calls: {
    query: ProcessIconQuery;
    answer: (i: ProcessIcon | null) => void;
    fail: () => void;
  }[] = [];
  const api = Object.assign(Object.create(base) as MemoryPortcullis, {
    processIcon: (query: ProcessIconQuery) =>
      new Promise<ProcessIcon | null>((resolve, reject) =>
        calls.push({ query, answer: resolve, fail: () => reject(new Error('boom')) }),
      ),
  });
  return { api, calls };
}

beforeEach(() => {
  pinia = createPinia();
  setActivePinia(pinia);
});

afterEach(() => {
  for (const w of mounted.splice(0)) w.unmount();
});

describe('icons store', () => {
  it('asks once per program however often rows look it up, then answers from memory', async () => {
    const api = new MemoryPortcullis();
    api.icons.set('/usr/bin/curl', PNG);
    const store = useIconsStore();
    store.attach(api);
    const curl = proc('/usr/bin/curl', 'curl');
    const other = proc('/usr/bin/other', 'other');
    for (let i = 0; i < 1000; i++) {
      expect(store.lookup(i % 2 ? curl : { ...other })).toBeNull();
    }
    expect(api.iconQueries).toEqual([]); // nothing is sent during a render
    await flushPromises();
    expect(api.iconQueries).toEqual([
      { exe: '/usr/bin/other', appId: null },
      { exe: '/usr/bin/curl', appId: null },
    ]);
    expect(store.lookup(curl)).toEqual(PNG);
    expect(store.lookup(other)).toBeNull();
    // The app id is part of the key: a flatpak of the same path is another program.
    store.lookup(proc('/usr/bin/curl', 'curl', 'org.x.Curl'));
    store.lookup(proc(null, 'kworker'));
    store.lookup(null);
    await flushPromises();
    expect(api.iconQueries).toHaveLength(3);
    expect(api.iconQueries[2]).toEqual({ exe: '/usr/bin/curl', appId: 'org.x.Curl' });
  });

  it(`keeps at most ${MAX_ICON_REQUESTS} requests in flight`, async () => {
    const { api, calls } = manualApi();
    const store = useIconsStore();
    store.attach(api);
    for (let i = 0; i < 10; i++) store.lookup(proc(`/bin/p${i}`));
    await flushPromises();
    expect(calls).toHaveLength(MAX_ICON_REQUESTS);
    calls[0]!.answer(SVG);
    calls[1]!.fail();
    await flushPromises();
    expect(calls).toHaveLength(MAX_ICON_REQUESTS + 2);
    expect(store.lookup(proc('/bin/p0'))).toEqual(SVG);
    // A failure is "no icon", and is not asked again.
    expect(store.lookup(proc('/bin/p1'))).toBeNull();
    for (const c of calls.slice(2)) c.answer(null);
    await flushPromises();
    for (const c of calls.slice(6)) c.answer(null);
    await flushPromises();
    expect(calls.map((c) => c.query.exe)).toEqual(
      Array.from({ length: 10 }, (_, i) => `/bin/p${i}`),
    );
  });

  it('only image data: URLs reach a view', async () => {
    const { api, calls } = manualApi();
    const store = useIconsStore();
    store.attach(api);
    const bad = [
      'javascript:alert(1)',
      'data:text/html;base64,PHNjcmlwdD4=',
      'data:image/svg+xml,<svg onload=alert(1)>',
      'https://example.com/x.png',
    ];
    bad.forEach((_, i) => store.lookup(proc(`/bin/bad${i}`)));
    await flushPromises();
    bad.forEach((dataUrl, i) => calls[i]!.answer({ mime: 'image/png', dataUrl }));
    await flushPromises();
    bad.forEach((_, i) => expect(store.lookup(proc(`/bin/bad${i}`))).toBeNull());
  });

  it('forgets the oldest programs beyond its bound; answers after detach are dropped', async () => {
    const api = new MemoryPortcullis();
    const store = useIconsStore();
    const detach = store.attach(api);
    for (let i = 0; i < MAX_ICON_ENTRIES + 10; i++) store.lookup(proc(`/bin/q${i}`));
    expect(store.requestedCount()).toBe(MAX_ICON_ENTRIES);
    await flushPromises();

    const { api: slow, calls } = manualApi();
    const stop = store.attach(slow);
    expect(store.requestedCount()).toBe(0);
    store.lookup(proc('/bin/late'));
    await flushPromises();
    stop();
    calls[0]!.answer(PNG);
    await flushPromises();
    expect(store.requestedCount()).toBe(0);
    detach();
  });

  it('letters and tints for programs without an icon', () => {
    expect(iconLetter('firefox')).toBe('F');
    expect(iconLetter('  ')).toBe('?');
    expect(iconLetter(null)).toBe('?');
    expect(iconHue('firefox')).toBe(iconHue('firefox'));
    expect(new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map(iconHue)).size).toBeGreaterThan(1);
  });
});

describe('icons in the views', () => {
  let api: MemoryPortcullis;
  let detach: () => void;
  const clientHeight = Object.getOwnPropertyDescriptor(HTMLElement.prototype, 'clientHeight');

  beforeEach(() => {
    Object.defineProperty(HTMLElement.prototype, 'clientHeight', {
      configurable: true,
      get(this: HTMLElement) {
        return this.classList.contains('flow-grid') ? 600 : 0;
      },
    });
    api = new MemoryPortcullis();
    detach = attachStores(api);
  });
  afterEach(() => {
    detach();
    if (clientHeight) Object.defineProperty(HTMLElement.prototype, 'clientHeight', clientHeight);
  });

  function mountWith(component: Component, props: Record<string, unknown> = {}): VueWrapper {
    const w = mount(component, {
      props,
      attachTo: document.body,
      global: { plugins: [pinia], provide: { [apiKey as symbol]: api } },
    });
    mounted.push(w);
    return w;
  }

  it('the Connections grid asks per program, not per row, and shows <img> or a letter', async () => {
    api.icons.set('/usr/lib/chromium/chromium', PNG); // the first row of seed 11
    api.upsertFlows(syntheticFlows(100_000, 11));
    detach();
    detach = attachStores(api);
    const w = mountWith(FlowTable);
    await nextTick();
    await flushPromises();
    const rows = w.findAll('.grid-row.flow');
    const texts = new Set(rows.map((r) => r.text()));
    expect(rows.length).toBeGreaterThan(10);
    // At most one query per distinct program in view (12 in the synthetic set).
    expect(api.iconQueries.length).toBeLessThanOrEqual(12);
    expect(new Set(api.iconQueries.map((q) => q.exe)).size).toBe(api.iconQueries.length);
    expect(texts.size).toBeGreaterThan(1);
    const withIcon = w.findAll('.grid-row.flow img.picon');
    const letters = w.findAll('.grid-row.flow span.picon.letter');
    expect(withIcon.length + letters.length).toBe(rows.length);
    for (const img of withIcon) {
      expect(img.attributes('alt')).toBe('chromium icon');
      expect(img.attributes('src')).toBe(PNG.dataUrl);
    }
    for (const l of letters) {
      expect(l.attributes('role')).toBe('img');
      expect(l.attributes('aria-label')).toMatch(/ icon$/);
      expect(l.text()).toMatch(/^[A-Z?]$/);
    }
    expect(withIcon.length).toBeGreaterThan(0);

    // Scrolling and live updates re-render rows; nothing new is asked.
    const asked = api.iconQueries.length;
    const grid = w.get('[role=grid]').element as HTMLElement;
    grid.scrollTop = 28 * 5;
    grid.dispatchEvent(new Event('scroll'));
    api.upsertFlows(syntheticFlows(50, 12).map((f, i) => ({ ...f, id: i + 1 })));
    await nextTick();
    await flushPromises();
    expect(api.iconQueries.length).toBeLessThanOrEqual(12);
    expect(api.iconQueries.length).toBeGreaterThanOrEqual(asked);
  });

  it('a prompt card shows the program icon with an alt text, or its letter', async () => {
    api.icons.set('/usr/bin/curl', SVG);
    api.upsertPrompt(prompt('p1', 1));
    api.upsertPrompt(
      prompt('p2', 2, { request: request({ dport: 80, process: proc('/opt/x', 'xapp') }) }),
    );
    const w = mountWith(PromptsView);
    await flushPromises();
    const img = w.get('article img.picon');
    expect(img.attributes('alt')).toBe('curl icon');
    expect(img.attributes('src')).toBe(SVG.dataUrl);
    const letter = w.get('article span.picon.letter');
    expect(letter.attributes('aria-label')).toBe('xapp icon');
    expect(letter.text()).toBe('X');
  });

  it('ProcessIcon sizes itself, and says "unknown program" without a process', async () => {
    const w = mountWith(ProcessIconView, { process: null, size: 24 });
    await flushPromises();
    const span = w.get('span.picon');
    expect(span.attributes('aria-label')).toBe('unknown program icon');
    expect(span.attributes('style')).toContain('width: 24px');
    expect(api.iconQueries).toEqual([]);
  });
});
