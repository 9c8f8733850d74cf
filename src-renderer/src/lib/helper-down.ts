/**
 * What the UI says while it is not connected to the helper: whether new
 * connections are blocked or pass unasked depends on how the helper went (a
 * clean stop removes its rules; a crash leaves them, with its fail policy) and
 * on that policy, as last seen. Nothing is claimed that the UI cannot know.
 */
import type { HelperStatus } from '../../../src-main/common/api.js';

export interface HelperDownNotice {
  /** blocked: new connections are dropped; open: they pass unchecked; unknown: either. */
  tone: 'blocked' | 'open' | 'unknown';
  text: string;
}

export function helperDownNotice(status: HelperStatus | null): HelperDownNotice | null {
  if (status === null || status.connection === 'connected') return null;
  const lastClose = status.lastClose ?? null;
  // The first attempt still in progress, with nothing gone wrong yet.
  if (lastClose === null && status.error === null && status.state === null) return null;
  if (lastClose === 'stopped') {
    return {
      tone: 'open',
      text:
        'The helper stopped and removed its firewall rules: new connections are not checked ' +
        'until it runs again.',
    };
  }
  const failOpen = status.state?.settings.failOpen;
  const why = status.error ? ` (${status.error})` : '';
  if (failOpen === undefined) {
    return {
      tone: 'unknown',
      text:
        `Not connected to the helper${why}. If it is not running, nothing checks new ` +
        'connections; if it crashed, its fail policy decides them, and that policy is unknown here.',
    };
  }
  return failOpen
    ? {
        tone: 'open',
        text:
          `The helper is not answering${why}. New connections pass unasked (fail-open) until ` +
          'it is back; connections already decided keep their verdict.',
      }
    : {
        tone: 'blocked',
        text:
          `The helper is not answering${why}. New connections are blocked (fail-closed) until ` +
          'it is back; connections already decided keep their verdict.',
      };
}
