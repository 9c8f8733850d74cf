import { afterEach, describe, expect, it, vi } from 'vitest';
import { BrowserNotices, type NoticeHost } from '../../../src-renderer/src/lib/browser-notices.js';
import { prompt } from './fixtures.js';

type TestHost = NoticeHost & { shown: string[]; t: number };

function host(over: Partial<NoticeHost> = {}): TestHost {
  const h: TestHost = {
    shown: [],
    t: 1_000_000,
    permission: () => 'granted',
    requestPermission: async () => 'granted',
    hidden: () => true,
    show(title, body) {
      h.shown.push(`${title} | ${body}`);
    },
    now: () => h.t,
  };
  return Object.assign(h, over);
}

afterEach(() => vi.useRealTimers());

describe('BrowserNotices', () => {
  it('announces a new prompt while the page is hidden, once', () => {
    const h = host();
    const n = new BrowserNotices(h, () => undefined);
    const p = prompt('a', 1);
    n.update([p]);
    n.update([p]);
    expect(h.shown).toHaveLength(1);
    expect(h.shown[0]).toContain('wants to connect');
    n.close();
  });

  it('says nothing while the page is in front, or without the permission', () => {
    for (const over of [{ hidden: () => false }, { permission: () => 'default' as const }]) {
      const h = host(over);
      const n = new BrowserNotices(h, () => undefined);
      n.update([prompt('a', 1)]);
      expect(h.shown).toEqual([]);
      n.close();
    }
  });

  it('a burst is one notice, and the ones after it are summed up once the interval passed', () => {
    vi.useFakeTimers();
    const h = host();
    const n = new BrowserNotices(h, () => undefined);
    n.update([prompt('a', 1)]);
    n.update([prompt('a', 1), prompt('b', 2), prompt('c', 3)]);
    expect(h.shown).toHaveLength(1);
    h.t += 10_000;
    vi.advanceTimersByTime(10_000);
    expect(h.shown).toHaveLength(2);
    expect(h.shown[1]).toContain('and 1 more');
    n.close();
  });

  it('a prompt answered before the interval passed is not announced late', () => {
    vi.useFakeTimers();
    const h = host();
    const n = new BrowserNotices(h, () => undefined);
    n.update([prompt('a', 1)]);
    n.update([prompt('a', 1), prompt('b', 2)]);
    n.update([prompt('a', 1)]); // b answered elsewhere
    h.t += 10_000;
    vi.advanceTimersByTime(10_000);
    expect(h.shown).toHaveLength(1);
    n.close();
  });
});
