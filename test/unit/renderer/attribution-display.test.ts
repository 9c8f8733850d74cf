// @vitest-environment happy-dom
/**
 * What the UI shows of attribution: the parent chain of a connection's process (details
 * pane, prompt) and the flag while the helper names programs from /proc alone.
 */
import { flushPromises, type VueWrapper } from '@vue/test-utils';
import { describe, expect, it } from 'vitest';
import { nextTick, type Component } from 'vue';
import type { AttributionState, ProcessInfo } from '../../../src-main/common/api.js';
import App from '../../../src-renderer/src/App.vue';
import FlowDetails from '../../../src-renderer/src/components/FlowDetails.vue';
import { compactChain } from '../../../src-renderer/src/lib/process-chain.js';
import PromptsView from '../../../src-renderer/src/views/PromptsView.vue';
import SettingsView from '../../../src-renderer/src/views/SettingsView.vue';
import { syntheticFlows } from '../../support/synthetic.js';
import { prompt, request } from './fixtures.js';
import { rendererBed } from './bed.js';

const CHAIN: NonNullable<ProcessInfo['ancestors']> = [
  { pid: 900, exe: '/usr/bin/bash', comm: 'bash' },
  { pid: 800, exe: null, comm: 'sshd' },
];

const bed = rendererBed();

function mountWith(component: Component, props: Record<string, unknown> = {}): VueWrapper {
  return bed.mount(component, props);
}

function withAttribution(attribution: AttributionState | undefined): void {
  const { attribution: _, ...state } = bed.api.status.state!;
  bed.api.setHelperStatus({
    ...bed.api.status,
    state: attribution ? { ...state, attribution } : state,
  });
}

describe('the parent chain', () => {
  it('the details pane lists each ancestor with pid and path, nearest first', () => {
    const flow = syntheticFlows(1, 3)[0]!;
    const w = mountWith(FlowDetails, {
      flow: { ...flow, process: { ...request().process!, ancestors: CHAIN } },
    });
    expect(w.text()).toContain('Started bybash (pid 900, /usr/bin/bash) ← sshd (pid 800, –)');
  });

  it('the details pane says – when the helper sent no chain (an older helper)', () => {
    const flow = syntheticFlows(1, 3)[0]!;
    const w = mountWith(FlowDetails, { flow: { ...flow, process: request().process } });
    expect(w.text()).toContain('Started by–');
  });

  it('a prompt names it compactly: "bash ← sshd"', async () => {
    const proc = { ...request().process!, ancestors: CHAIN };
    bed.api.upsertPrompt(prompt('p1', Date.now(), { request: request({ process: proc }) }));
    bed.api.upsertPrompt(prompt('p2', Date.now() + 1, { request: request({ dport: 22 }) }));
    const w = mountWith(PromptsView);
    await flushPromises();
    const via = w.findAll('[data-testid=prompt-via]');
    expect(via.map((v) => v.text())).toEqual(['bash ← sshd']);
    expect(compactChain({ ...proc, ancestors: [] })).toBeNull();
  });
});

describe('the /proc fallback flag', () => {
  it('the status bar flags the fallback with its reason, and not eBPF', async () => {
    bed.detachStores(); // App attaches the stores itself
    withAttribution({ mode: 'procfs', reason: 'eBPF unavailable: no BTF' });
    const w = mountWith(App);
    await nextTick();
    const flag = w.get('[data-testid=attribution-fallback]');
    expect(flag.text()).toBe('· Attribution: /proc fallback (eBPF unavailable: no BTF)');
    expect(flag.attributes('title')).toBe('eBPF unavailable: no BTF');
    withAttribution({ mode: 'ebpf' });
    await nextTick();
    expect(w.find('[data-testid=attribution-fallback]').exists()).toBe(false);
    withAttribution(undefined); // a helper older than protocol 1.4
    await nextTick();
    expect(w.find('[data-testid=attribution-fallback]').exists()).toBe(false);
  });

  it('Settings says which path is in use, and why not eBPF', async () => {
    withAttribution({ mode: 'procfs', reason: 'turned off by --attribution procfs' });
    const w = mountWith(SettingsView);
    await flushPromises();
    const row = w.get('[data-testid=attribution]');
    expect(row.text()).toContain('/proc + sock_diag fallback');
    expect(row.text()).toContain('turned off by --attribution procfs');
    expect(row.classes()).toContain('warn');
    withAttribution({ mode: 'ebpf' });
    await nextTick();
    expect(w.get('[data-testid=attribution]').text()).toMatch(/^eBPF: owners recorded/);
    expect(w.get('[data-testid=attribution]').classes()).not.toContain('warn');
  });
});
