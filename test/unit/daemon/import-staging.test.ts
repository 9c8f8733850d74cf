// Staged imports (helper/daemon/import-staging.ts): checked page by page,
// owned by one client, bounded, and dropped on refusal, idleness or request.
import { describe, expect, it } from 'vitest';
import { ImportStaging } from '../../../helper/daemon/import-staging.js';
import { ServiceError } from '../../../helper/protocol/errors.js';
import type { RuleInput } from '../../../helper/protocol/model.js';
import { ManualClock } from '../decisions/fixtures.js';

const ok = (port: number): RuleInput => ({
  action: 'allow',
  match: { port: { from: port, to: port } },
  duration: { kind: 'forever' },
});

function refusal(fn: () => unknown): ServiceError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ServiceError);
    return e as ServiceError;
  }
  throw new Error('no error');
}

describe('ImportStaging', () => {
  it('stages pages in file order and hands them over once', () => {
    const s = new ImportStaging({ clock: new ManualClock() });
    const { staging, maxRules } = s.begin(1, 3);
    expect(maxRules).toBe(20_000);
    expect(s.page(1, staging, 0, [ok(1), ok(2)])).toBe(2);
    // A page sent twice or out of order is not staged again.
    expect(refusal(() => s.page(1, staging, 0, [ok(1)])).code).toBe('conflict');
    expect(s.page(1, staging, 2, [ok(3)])).toBe(3);
    expect(s.stagedRules).toBe(3);
    expect(s.take(1, staging).map((r) => r.match.port?.from)).toEqual([1, 2, 3]);
    expect(s.size).toBe(0);
    expect(s.stagedRules).toBe(0);
    expect(refusal(() => s.take(1, staging)).code).toBe('not-found');
  });

  it('names a refused rule by its position in the file and drops the staging', () => {
    const s = new ImportStaging({ clock: new ManualClock() });
    const { staging } = s.begin(1);
    s.page(1, staging, 0, [ok(1), ok(2)]);
    for (const [bad, why] of [
      [{ ...ok(3), match: { address: '300.1.1.1' } }, /"300\.1\.1\.1" is not an IPv4/],
      [{ ...ok(3), match: { address: '10.0.0.0/33' } }, /prefix \/33/],
      [{ ...ok(3), match: { host: 'a.*.b' } }, /host label/],
      [{ ...ok(3), match: { port: { from: 9, to: 1 } } }, /from must not exceed to/],
      [{ ...ok(3), duration: { kind: 'session' } }, /only "forever" and "minutes"/],
      [{ action: 'maybe', match: {}, duration: { kind: 'forever' } }, /^rule 4: action: /],
    ] as const) {
      const { staging: id } = s.begin(1);
      s.page(1, id, 0, [ok(1), ok(2)]);
      const e = refusal(() => s.page(1, id, 2, [ok(3), bad]));
      expect(e.code).toBe('invalid-params');
      expect(e.message).toMatch(/^rule 4: /);
      expect(e.message).toMatch(why);
      expect(refusal(() => s.take(1, id)).code).toBe('not-found');
    }
    s.abort(1, staging);
    expect(s.size).toBe(0);
    expect(s.stagedRules).toBe(0);
  });

  it('belongs to the client that began it', () => {
    const s = new ImportStaging({ clock: new ManualClock() });
    const { staging } = s.begin(1);
    expect(refusal(() => s.page(2, staging, 0, [ok(1)])).code).toBe('not-found');
    expect(refusal(() => s.take(2, staging)).code).toBe('not-found');
    expect(refusal(() => s.abort(2, staging)).code).toBe('not-found');
    s.dropClient(2);
    expect(s.size).toBe(1);
    s.dropClient(1);
    expect(s.size).toBe(0);
  });

  it('drops a staging left idle, not one in use', () => {
    const clock = new ManualClock();
    const s = new ImportStaging({ clock, idleMs: 1000 });
    const { staging } = s.begin(1);
    clock.advance(900);
    s.page(1, staging, 0, [ok(1)]);
    clock.advance(900);
    expect(s.size).toBe(1);
    clock.advance(100);
    expect(s.size).toBe(0);
    expect(s.stagedRules).toBe(0);
    expect(refusal(() => s.page(1, staging, 1, [ok(2)])).message).toMatch(/idle for more than 1 s/);
  });

  it('bounds rules per import, stagings per client and rules overall', () => {
    const s = new ImportStaging({
      clock: new ManualClock(),
      maxRules: 3,
      maxPerClient: 2,
      maxTotalRules: 5,
    });
    expect(refusal(() => s.begin(1, 4)).code).toBe('invalid-params');
    const a = s.begin(1).staging;
    s.begin(1);
    expect(refusal(() => s.begin(1)).code).toBe('conflict');
    s.page(1, a, 0, [ok(1), ok(2)]);
    const e = refusal(() => s.page(1, a, 2, [ok(3), ok(4)]));
    expect(e.message).toMatch(/at most 3 rules \(rule 4 is beyond\)/);
    expect(s.stagedRules).toBe(0);
    const b = s.begin(2).staging;
    const c = s.begin(3).staging;
    s.page(2, b, 0, [ok(1), ok(2), ok(3)]);
    expect(refusal(() => s.page(3, c, 0, [ok(1), ok(2), ok(3)])).code).toBe('unavailable');
    s.clear();
    expect(s.size).toBe(0);
  });
});
