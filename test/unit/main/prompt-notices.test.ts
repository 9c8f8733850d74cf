import { describe, expect, it } from 'vitest';
import { PromptNotices, trayTooltip } from '../../../src-main/common/prompt-notices.js';

const p = (id: number) => ({ id, app: `a${id}`, destination: `h${id}:443` });

describe('PromptNotices', () => {
  it('announces each prompt once, at most one notice per interval', () => {
    const n = new PromptNotices(1000);
    expect(n.offer([p(1)], 0)).toEqual({ title: 'a1 wants to connect', body: 'h1:443' });
    expect(n.offer([p(1)], 10)).toBeNull();
    expect(n.offer([p(2), p(3), p(4)], 20)).toBeNull();
    expect(n.nextFlushIn(20)).toBe(980);
    expect(n.flush(999)).toBeNull();
    expect(n.flush(1000)?.body).toBe('a2 (h2:443) and 2 more');
    expect(n.nextFlushIn(1000)).toBeNull();
  });

  it('drops prompts answered before their notice, and bounds its memory', () => {
    const n = new PromptNotices(1000, 3);
    n.offer([p(1)], 0);
    n.offer([p(2)], 1);
    n.resolved(2);
    expect(n.flush(5000)).toBeNull();
    n.offer([p(3), p(4), p(5)], 6000);
    // id 1 was forgotten: it would be announced again, which is harmless.
    expect(n.offer([p(1)], 9000)).toEqual({ title: 'a1 wants to connect', body: 'h1:443' });
  });

  it('tray tooltip', () => {
    expect(trayTooltip(0, 'Helper: connected')).toBe(
      'Portcullis: no connection waiting\nHelper: connected',
    );
    expect(trayTooltip(3, 'x')).toMatch(/^Portcullis: 3 connections waiting/);
  });
});
