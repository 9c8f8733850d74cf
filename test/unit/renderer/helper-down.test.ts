// @vitest-environment happy-dom
import { flushPromises, type VueWrapper } from '@vue/test-utils';
import { describe, expect, it } from 'vitest';
import type { HelperStatus } from '../../../src-main/common/api.js';
import { helperDownNotice } from '../../../src-renderer/src/lib/helper-down.js';
import SettingsView from '../../../src-renderer/src/views/SettingsView.vue';
import { MemoryPortcullis } from '../../support/memory-api.js';
import { rendererBed } from './bed.js';

const bed = rendererBed();

function down(over: Partial<HelperStatus>): HelperStatus {
  return { ...bed.api.status, connection: 'connecting', ...over };
}

function withFailOpen(failOpen: boolean): HelperStatus['state'] {
  const s = bed.api.status.state!;
  return { ...s, settings: { ...s.settings, failOpen } };
}

describe('helperDownNotice', () => {
  it('says nothing while connected, or during a first attempt with nothing wrong yet', () => {
    expect(helperDownNotice(bed.api.status)).toBeNull();
    expect(helperDownNotice(null)).toBeNull();
    expect(
      helperDownNotice({ connection: 'connecting', state: null, error: null, lastClose: null }),
    ).toBeNull();
  });

  it('a helper lost with fail-closed: new connections are blocked', () => {
    const n = helperDownNotice(
      down({ lastClose: 'lost', state: withFailOpen(false), error: 'ECONNREFUSED' }),
    );
    expect(n).toMatchObject({ tone: 'blocked' });
    expect(n!.text).toContain('New connections are blocked (fail-closed)');
    expect(n!.text).toContain('ECONNREFUSED');
  });

  it('a helper lost with fail-open: new connections pass unasked', () => {
    const n = helperDownNotice(down({ lastClose: 'lost', state: withFailOpen(true) }));
    expect(n).toMatchObject({ tone: 'open' });
    expect(n!.text).toContain('pass unasked (fail-open)');
  });

  it('a clean stop removed the rules, whatever the fail policy', () => {
    const n = helperDownNotice(down({ lastClose: 'stopped', state: withFailOpen(false) }));
    expect(n).toMatchObject({ tone: 'open' });
    expect(n!.text).toContain('removed its firewall rules');
  });

  it('never connected: the policy is unknown, and it says so', () => {
    const n = helperDownNotice(
      down({ state: null, error: 'connect ENOENT /run/portcullis/helper.sock' }),
    );
    expect(n).toMatchObject({ tone: 'unknown' });
    expect(n!.text).toContain('unknown');
  });
});

describe('Settings view while the helper is down', () => {
  const mountView = (): VueWrapper => bed.mount(SettingsView);

  it('never read: no invented values, it says they are unknown', async () => {
    // A UI started while the helper is not there: settings never read.
    const api = new MemoryPortcullis();
    api.setHelperStatus({
      connection: 'connecting',
      state: null,
      error: 'ENOENT',
      lastClose: null,
    });
    bed.restart(api);
    const w = mountView();
    await flushPromises();
    expect(w.find('[data-testid=settings-unknown]').exists()).toBe(true);
    expect(w.find('fieldset.group').exists()).toBe(false);
    expect(w.find('input[name=defaultAction]').exists()).toBe(false);
    expect(w.find('button[type=submit]').attributes('disabled')).toBeDefined();
  });

  it('read, then lost: the last values, marked as such and not editable', async () => {
    const w = mountView();
    await flushPromises();
    expect(w.find('[data-testid=settings-stale]').exists()).toBe(false);
    bed.api.setHelperStatus(down({ lastClose: 'lost' }));
    await flushPromises();
    expect(w.find('[data-testid=settings-stale]').exists()).toBe(true);
    expect(w.find('fieldset.group').attributes('disabled')).toBeDefined();
    expect(w.find('button[type=submit]').attributes('disabled')).toBeDefined();
  });
});
