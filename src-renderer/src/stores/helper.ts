/** The helper's status and settings: what the status bar and Settings view show. */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type {
  HelperStatus,
  PortcullisApi,
  Settings,
  Unsubscribe,
} from '../../../src-main/common/api.js';

export const useHelperStore = defineStore('helper', () => {
  const status = shallowRef<HelperStatus | null>(null);
  const settings = shallowRef<Settings | null>(null);
  const error = ref<string | null>(null);
  const saving = ref(false);
  const retrying = ref(false);
  let api: PortcullisApi | null = null;

  /**
   * Offer "Retry" when the link gave up (disconnected) or is waiting out a
   * backoff after an error; a first attempt in progress needs no button.
   */
  const canRetry = computed(() => {
    const s = status.value;
    return (
      s !== null &&
      s.connection !== 'connected' &&
      (s.connection === 'disconnected' || s.error !== null)
    );
  });

  async function retry(): Promise<void> {
    if (!api || retrying.value) return;
    retrying.value = true;
    try {
      await api.retryHelper();
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    } finally {
      retrying.value = false;
    }
  }

  async function loadSettings(): Promise<void> {
    if (!api) return;
    try {
      settings.value = await api.getSettings();
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    }
  }

  async function saveSettings(patch: Partial<Settings>): Promise<boolean> {
    if (!api) return false;
    error.value = null;
    saving.value = true;
    try {
      settings.value = await api.setSettings(patch);
      return true;
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
      return false;
    } finally {
      saving.value = false;
    }
  }

  function attach(next: PortcullisApi): Unsubscribe {
    api = next;
    const stop = next.onHelperStatus((s) => {
      const wasConnected = status.value?.connection === 'connected';
      status.value = s;
      // (Re)load settings when the helper (re)connects.
      if (s.connection === 'connected' && !wasConnected) void loadSettings();
    });
    return () => {
      stop();
      api = null;
    };
  }

  return {
    status,
    settings,
    error,
    saving,
    retrying,
    canRetry,
    loadSettings,
    saveSettings,
    retry,
    attach,
  };
});
