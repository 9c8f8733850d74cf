// @vitest-environment happy-dom
import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { createPinia, setActivePinia, type Pinia } from 'pinia';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { nextTick, type Component } from 'vue';
import { MemoryPortcullis } from '../../support/memory-api.js';
import { syntheticFlows } from '../../support/synthetic.js';
import { apiKey } from '../../../src-renderer/src/api.js';
import App from '../../../src-renderer/src/App.vue';
import FlowTable from '../../../src-renderer/src/components/FlowTable.vue';
import { attachStores } from '../../../src-renderer/src/stores/index.js';
import { useNavStore } from '../../../src-renderer/src/stores/nav.js';
import { useRulesStore } from '../../../src-renderer/src/stores/rules.js';
import ConnectionsView from '../../../src-renderer/src/views/ConnectionsView.vue';
import PromptsView from '../../../src-renderer/src/views/PromptsView.vue';
import RulesView from '../../../src-renderer/src/views/RulesView.vue';
import SettingsView from '../../../src-renderer/src/views/SettingsView.vue';
import { prompt, request } from './fixtures.js';

const VIEWPORT = 600;
const ROW = 28;
let pinia: Pinia;
let api: MemoryPortcullis;
let detach: () => void;
const mounted: VueWrapper[] = [];

// happy-dom does no layout: give the grid a viewport so the window has a size.
const clientHeight = Object.getOwnPropertyDescriptor(HTMLElement.prototype, 'clientHeight');
beforeEach(() => {
  Object.defineProperty(HTMLElement.prototype, 'clientHeight', {
    configurable: true,
    get(this: HTMLElement) {
      return this.classList.contains('flow-grid') ? VIEWPORT : 0;
    },
  });
  pinia = createPinia();
  setActivePinia(pinia);
  api = new MemoryPortcullis();
  detach = attachStores(api);
});

afterEach(() => {
  for (const w of mounted.splice(0)) w.unmount();
  detach();
  if (clientHeight) Object.defineProperty(HTMLElement.prototype, 'clientHeight', clientHeight);
  vi.useRealTimers();
});

/** Subscribes again so the seeded table arrives as a snapshot (rendered at once). */
function reattach(): void {
  detach();
  detach = attachStores(api);
}

function mountWith(component: Component): VueWrapper {
  const w = mount(component, {
    attachTo: document.body,
    global: { plugins: [pinia], provide: { [apiKey as symbol]: api } },
  });
  mounted.push(w);
  return w;
}

describe('Connections table', () => {
  it('renders only the visible rows of 100,000 flows, and follows the scroll', async () => {
    api.upsertFlows(syntheticFlows(100_000, 11));
    reattach();
    const w = mountWith(FlowTable);
    await nextTick();
    const grid = w.get('[role=grid]');
    expect(grid.attributes('aria-rowcount')).toBe('100001');
    const rows = () => w.findAll('.grid-row.flow');
    const headerHeight = ROW + 4;
    const inView = Math.ceil((VIEWPORT - headerHeight) / ROW);
    expect(rows().length).toBeGreaterThanOrEqual(inView);
    expect(rows().length).toBeLessThanOrEqual(inView + 1 + 6); // + overscan below
    expect(rows()[0]!.attributes('aria-rowindex')).toBe('2');

    // scroll to row 50,000: the window moves there and stays small
    (grid.element as HTMLElement).scrollTop = 50_000 * ROW;
    await grid.trigger('scroll');
    const indexes = rows().map((r) => Number(r.attributes('aria-rowindex')) - 2);
    expect(indexes[0]).toBe(50_000 - 6);
    expect(indexes.length).toBeLessThanOrEqual(inView + 1 + 12);
    expect(indexes).toContain(50_000 + inView - 1);
  }, 30_000);

  it('shows live values of visible rows on every delta', async () => {
    api.upsertFlows(syntheticFlows(50, 12));
    reattach();
    const w = mountWith(FlowTable);
    await nextTick();
    const id = Number(w.get('.grid-row.flow').attributes('id')!.slice('flow-'.length));
    api.upsertFlows([{ ...api.flows.get(id)!, packetsIn: 987_654_321 }]);
    await nextTick();
    expect(w.get(`#flow-${id}`).text()).toContain('987,654,321');
  });

  it('sorts by a header click and moves the selection with the keyboard', async () => {
    api.upsertFlows(syntheticFlows(500, 13));
    reattach();
    const w = mountWith(FlowTable);
    await nextTick();
    const header = w.findAll('[role=columnheader]').find((h) => h.text().includes('↓ Bytes'))!;
    await header.get('button').trigger('click');
    await header.get('button').trigger('click');
    expect(header.attributes('aria-sort')).toBe('descending');
    const maxIn = Math.max(...[...api.flows.values()].map((f) => f.bytesIn ?? 0));
    const first = w.get('.grid-row.flow');
    expect(api.flows.get(Number(first.attributes('id')!.slice(5)))!.bytesIn).toBe(maxIn);

    const grid = w.get('[role=grid]');
    await grid.trigger('keydown', { key: 'ArrowDown' });
    await grid.trigger('keydown', { key: 'ArrowDown' });
    const selected = w.findAll('.grid-row.flow[aria-selected=true]');
    expect(selected).toHaveLength(1);
    expect(selected[0]!.attributes('aria-rowindex')).toBe('3');
    expect(grid.attributes('aria-activedescendant')).toBe(selected[0]!.attributes('id'));
  });

  it('details pane: kill goes to the API, "create rule" opens the rule editor', async () => {
    api.upsertFlows(syntheticFlows(20, 14));
    reattach();
    const w = mountWith(ConnectionsView);
    await nextTick();
    const row = w.get('.grid-row.flow');
    const id = Number(row.attributes('id')!.slice(5));
    await row.trigger('click');
    expect(w.get('aside').text()).toContain(`Conntrack id${id}`);

    const buttons = w.get('aside').findAll('button');
    await buttons.find((b) => b.text() === 'Create rule from this flow')!.trigger('click');
    expect(useNavStore().view).toBe('rules');
    const flow = api.flows.get(id)!;
    expect(useRulesStore().draft?.rule.match).toMatchObject({
      protocol: flow.protocol,
      ...(flow.process?.exe ? { exe: flow.process.exe } : {}),
    });

    const kill = vi.spyOn(api, 'killFlow');
    await buttons.find((b) => b.text() === 'Kill connection')!.trigger('click');
    await flushPromises();
    expect(kill).toHaveBeenCalledWith(id);
    expect(api.flows.has(id)).toBe(false);
  });
});

describe('Prompts view', () => {
  it('answers with the chosen scope and duration', async () => {
    api.upsertPrompt(prompt('p1', Date.now(), { held: 3 }));
    const w = mountWith(PromptsView);
    await nextTick();
    expect(w.text()).toContain('curl');
    expect(w.text()).toContain('3 connections');
    await w.get('input[type=radio][value=port]').setValue(true);
    await w.get('select').setValue('m5');
    await w
      .findAll('button')
      .find((b) => b.text() === 'Allow')!
      .trigger('click');
    await flushPromises();
    expect(api.answers).toEqual([
      {
        promptId: 'p1',
        action: 'allow',
        scope: 'port',
        duration: { kind: 'minutes', minutes: 5 },
      },
    ]);
    // a remembered answer became a rule for this app and port, any host
    expect(api.rules[0]).toMatchObject({
      action: 'allow',
      match: { exe: '/usr/bin/curl', port: { from: 443, to: 443 }, protocol: 'tcp' },
    });
    expect(api.rules[0]!.match.host).toBeUndefined();
    expect(w.text()).toContain('No connection is waiting');
  });

  it('"Deny silently" answers deny with denyWith drop, and the rule shows it', async () => {
    api.upsertPrompt(prompt('p1', Date.now()));
    const w = mountWith(PromptsView);
    await nextTick();
    await w.get('select').setValue('forever');
    await w
      .findAll('button')
      .find((b) => b.text() === 'Deny silently')!
      .trigger('click');
    await flushPromises();
    expect(api.answers).toEqual([
      {
        promptId: 'p1',
        action: 'deny',
        denyWith: 'drop',
        scope: 'destination',
        duration: { kind: 'forever' },
      },
    ]);
    expect(api.rules[0]).toMatchObject({ action: 'deny', denyWith: 'drop' });
    const rules = mountWith(RulesView);
    await flushPromises();
    expect(rules.get(`[data-rule=${api.rules[0]!.id}]`).text()).toContain('deny silently');
  });

  it('an inbound prompt names the remote side in its title and its rule preview', async () => {
    const inbound = request({
      direction: 'inbound',
      src: '198.51.100.7',
      dst: '192.168.1.10',
      dport: 22,
      host: null,
    });
    api.upsertPrompt(prompt('p1', Date.now(), { request: inbound }));
    const w = mountWith(PromptsView);
    await nextTick();
    await w.get('select').setValue('forever');
    expect(w.get('h3').text()).toContain('accept from 198.51.100.7');
    expect(w.get('.preview').text()).toBe(
      'Remembers: /usr/bin/curl uid 1000 from 198.51.100.7 port 22 tcp',
    );
    expect(w.text()).not.toContain('192.168.1.10');
  });

  it('is keyboard-driven: arrows select, D denies, Right then Enter denies', async () => {
    api.upsertPrompt(prompt('a', 1));
    api.upsertPrompt(prompt('b', 2, { request: request({ host: 'b.example' }) }));
    api.upsertPrompt(prompt('c', 3, { request: request({ host: 'c.example' }) }));
    const w = mountWith(PromptsView);
    await nextTick();
    const list = w.get('[role=list]');
    await list.trigger('keydown', { key: 'ArrowDown' });
    await list.trigger('keydown', { key: 'd' });
    await flushPromises();
    expect(api.answers).toEqual([
      { promptId: 'b', action: 'deny', scope: 'destination', duration: { kind: 'once' } },
    ]);
    await list.trigger('keydown', { key: 'ArrowRight' });
    await list.trigger('keydown', { key: 'Enter' });
    await flushPromises();
    expect(api.answers[1]).toMatchObject({ promptId: 'c', action: 'deny' });
    await list.trigger('keydown', { key: 'A' });
    await flushPromises();
    expect(api.answers[2]).toMatchObject({ promptId: 'a', action: 'allow' });
  });

  it('does not flood: at most 50 prompts shown, the rest counted', async () => {
    for (let i = 0; i < 60; i++) {
      api.upsertPrompt(prompt(`f${i}`, i, { request: request({ host: `h${i}.example` }) }));
    }
    const w = mountWith(PromptsView);
    await nextTick();
    const items = w.findAll('[role=listitem]');
    expect(items).toHaveLength(50);
    expect(items[0]!.text()).toContain('h0.example');
    expect(w.text()).toContain('10 more waiting');
  });

  it('never moves focus when a prompt arrives', async () => {
    const w = mountWith(PromptsView);
    const outside = document.createElement('input');
    document.body.appendChild(outside);
    outside.focus();
    expect(document.activeElement).toBe(outside);
    api.upsertPrompt(prompt('late', 1));
    await nextTick();
    expect(w.findAll('[role=listitem]')).toHaveLength(1);
    expect(document.activeElement).toBe(outside);
    outside.remove();
  });
});

describe('Rules and Settings views', () => {
  it('adds a rule from the editor and dry-runs it', async () => {
    api.recordVerdict({
      request: request(),
      action: 'allow',
      reason: 'prompt',
      ruleId: null,
      decidedAt: 5,
      ended: null,
      bytesOut: null,
      bytesIn: null,
      packetsOut: null,
      packetsIn: null,
    });
    const w = mountWith(RulesView);
    await flushPromises();
    await w
      .findAll('button')
      .find((b) => b.text() === 'New rule')!
      .trigger('click');
    await w.get('select[name=action]').setValue('deny');
    await w.get('input[name=host]').setValue('*.Example.com');
    await w.get('input[name=portFrom]').setValue('443');
    await w
      .findAll('button')
      .find((b) => b.text() === 'Dry run')!
      .trigger('click');
    await flushPromises();
    expect(w.text()).toContain('Would have matched 0 of 1'); // *.example.com excludes the apex
    await w.get('input[name=host]').setValue('example.com');
    await w
      .findAll('button')
      .find((b) => b.text() === 'Dry run')!
      .trigger('click');
    await flushPromises();
    expect(w.text()).toContain('Would have matched 1 of 1');
    expect(w.text()).toContain('1 with a different verdict');
    await w.get('form.editor').trigger('submit');
    await flushPromises();
    expect(api.rules).toHaveLength(1);
    expect(api.rules[0]).toMatchObject({
      action: 'deny',
      match: { host: 'example.com', port: { from: 443, to: 443 } },
      duration: { kind: 'forever' },
    });
    expect(w.find(`[data-rule=${api.rules[0]!.id}]`).exists()).toBe(true);
    await w.get(`[data-rule=${api.rules[0]!.id}] input[type=checkbox]`).setValue(false);
    await flushPromises();
    expect(api.rules[0]!.enabled).toBe(false);
  });

  it('the editor makes a deny silent and back: denyWith drop, then cleared', async () => {
    await api.addRule({
      action: 'deny',
      match: { host: 'example.com' },
      duration: { kind: 'forever' },
    });
    const w = mountWith(RulesView);
    await useRulesStore().load();
    await flushPromises();
    const edit = async (choice: string) => {
      await w
        .get(`[data-rule=${api.rules[0]!.id}]`)
        .findAll('button')
        .find((b) => b.text() === 'Edit')!
        .trigger('click');
      expect((w.get('select[name=action]').element as HTMLSelectElement).value).toBe(
        api.rules[0]!.denyWith === 'drop' ? 'drop' : 'deny',
      );
      await w.get('select[name=action]').setValue(choice);
      await w.get('form.editor').trigger('submit');
      await flushPromises();
    };
    await edit('drop');
    expect(api.rules[0]).toMatchObject({ action: 'deny', denyWith: 'drop' });
    expect(w.get(`[data-rule=${api.rules[0]!.id}]`).text()).toContain('deny silently');
    await edit('deny');
    expect(api.rules[0]!.action).toBe('deny');
    expect(api.rules[0]!.denyWith).toBeUndefined();
  });

  it('saves settings', async () => {
    const w = mountWith(SettingsView);
    await flushPromises();
    await w.get('input[name=promptTimeoutSeconds]').setValue(90);
    await w.get('input[name=interceptInbound]').setValue(true);
    await w.get('input[name=failOpen][value=true]').setValue(true);
    await w.get('form').trigger('submit');
    await flushPromises();
    expect(api.settings).toMatchObject({
      promptTimeoutSeconds: 90,
      interceptInbound: true,
      failOpen: true,
    });
    expect(w.text()).toContain('memory'); // helper version
    expect(w.get('[data-testid=conntrack-accounting]').text()).toContain(
      'byte and packet counters on, flow start times on (turned on by the helper',
    );
  });
});

describe('App shell', () => {
  it('shows the pending prompt count and switches views', async () => {
    detach(); // App attaches the stores itself
    detach = () => undefined;
    api.upsertPrompt(prompt('p', 1));
    const w = mountWith(App);
    await nextTick();
    const tab = w.findAll('nav button').find((b) => b.text().startsWith('Prompts'))!;
    expect(tab.text()).toContain('1');
    await tab.trigger('click');
    expect(tab.attributes('aria-current')).toBe('page');
    expect(w.find('[role=list]').exists()).toBe(true);
    expect(w.get('[role=status]').text()).toContain('connected');
  });

  it('offers Retry only when the helper link failed or waits after an error', async () => {
    detach();
    detach = () => undefined;
    const w = mountWith(App);
    await nextTick();
    const retry = () => w.findAll('footer button').find((b) => b.text() === 'Retry');
    expect(retry()).toBeUndefined(); // connected
    api.setHelperStatus({ connection: 'connecting', state: null, error: null });
    await nextTick();
    expect(retry()).toBeUndefined(); // a first attempt: nothing to hurry
    api.setHelperStatus({ connection: 'disconnected', state: null, error: 'dismissed' });
    await nextTick();
    expect(w.get('[role=status]').text()).toContain('Helper disconnected: dismissed');
    await retry()!.trigger('click');
    await flushPromises();
    expect(api.retries).toBe(1);
    api.setHelperStatus({ connection: 'connecting', state: null, error: 'refused' });
    await nextTick();
    await retry()!.trigger('click');
    await flushPromises();
    expect(api.retries).toBe(2);
  });

  it('the Settings view has a Retry button while the helper is disconnected', async () => {
    api.setHelperStatus({ connection: 'disconnected', state: null, error: 'helper exited' });
    const w = mountWith(SettingsView);
    await flushPromises();
    const button = w.findAll('button').find((b) => b.text().startsWith('Retry'));
    expect(button).toBeDefined();
    await button!.trigger('click');
    await flushPromises();
    expect(api.retries).toBe(1);
    api.setHelperStatus({ ...api.status, connection: 'connected', error: null });
    await nextTick();
    expect(w.findAll('button').some((b) => b.text().startsWith('Retry'))).toBe(false);
  });
});
