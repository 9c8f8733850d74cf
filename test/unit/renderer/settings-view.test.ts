// @vitest-environment happy-dom
import { flushPromises, type VueWrapper } from '@vue/test-utils';
import { describe, expect, it } from 'vitest';
import { nextTick } from 'vue';
import type { HelperState } from '../../../src-main/common/api.js';
import SettingsView from '../../../src-renderer/src/views/SettingsView.vue';
import { rendererBed } from './bed.js';

const bed = rendererBed();

function mountView(): VueWrapper {
  return bed.mount(SettingsView);
}

function withRecovery(recovered: HelperState['settingsRecovered']): void {
  const state = bed.api.status.state!;
  bed.api.setHelperStatus({ ...bed.api.status, state: { ...state, settingsRecovered: recovered } });
}

describe('Settings view: recovered settings', () => {
  it('shows no notice while the saved settings are in use', async () => {
    const w = mountView();
    await flushPromises();
    expect(w.find('[data-testid=settings-recovered]').exists()).toBe(false);
  });

  it('says why the helper runs with the stricter settings, and where the damaged file is', async () => {
    const w = mountView();
    await flushPromises();
    withRecovery({
      from: 'defaults-strict',
      damagedPath: '/var/lib/portcullis/settings.json.corrupt-2026-12-07T12-00-00-000Z',
      reason:
        '/var/lib/portcullis/settings.json is damaged: not JSON (Unexpected end of JSON input); there is no last-good copy',
      fields: ['defaultAction', 'noGuiPolicy', 'failOpen', 'interceptInbound'],
      at: 1,
    });
    await nextTick();
    const banner = w.get('[data-testid=settings-recovered]');
    expect(banner.attributes('role')).toBe('alert');
    expect(banner.text()).toContain('The saved settings could not be used');
    expect(banner.text()).toContain('fail closed');
    expect(banner.text()).toContain('Unexpected end of JSON input');
    expect(banner.get('code').text()).toBe(
      '/var/lib/portcullis/settings.json.corrupt-2026-12-07T12-00-00-000Z',
    );

    // Saved again: the helper's state no longer carries the notice.
    withRecovery(undefined);
    await nextTick();
    expect(w.find('[data-testid=settings-recovered]').exists()).toBe(false);
  });

  it('names the fields that could not be read, and the last-good copy', async () => {
    const w = mountView();
    await flushPromises();
    withRecovery({
      from: 'partial',
      damagedPath: null,
      reason: 'failOpen: Invalid type',
      fields: ['failOpen'],
      at: 1,
    });
    await nextTick();
    const banner = w.get('[data-testid=settings-recovered]');
    expect(banner.text()).toContain('when the helper is gone or overloaded');
    expect(banner.find('code').exists()).toBe(false);
    withRecovery({ from: 'last-good', damagedPath: null, reason: 'missing', fields: [], at: 1 });
    await nextTick();
    expect(w.get('[data-testid=settings-recovered]').text()).toContain('saved last');
  });
});

describe('Settings view: settings set by a command-line option', () => {
  it('marks each overridden setting next to it, with the option and the saved value', async () => {
    const w = mountView();
    await flushPromises();
    expect(w.find('[data-testid=settings-overridden]').exists()).toBe(false);
    const state = bed.api.status.state!;
    bed.api.setHelperStatus({
      ...bed.api.status,
      state: {
        ...state,
        settingsOverridden: [
          { field: 'failOpen', flag: '--fail-closed', saved: true },
          { field: 'promptTimeoutSeconds', flag: '--prompt-timeout', saved: 45 },
        ],
      },
    });
    await nextTick();
    expect(w.get('[data-testid=settings-overridden]').text()).toContain(
      '--fail-closed, --prompt-timeout',
    );
    expect(w.get('[data-testid=overridden-failOpen]').text()).toBe(
      "Set by --fail-closed at the helper's start; saved value: open.",
    );
    expect(w.get('[data-testid=overridden-promptTimeoutSeconds]').text()).toBe(
      "Set by --prompt-timeout at the helper's start; saved value: 45.",
    );
    expect(w.find('[data-testid=overridden-defaultAction]').exists()).toBe(false);
  });
});
