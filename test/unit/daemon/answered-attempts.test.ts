import { describe, expect, it } from 'vitest';
import {
  AnsweredAttempts,
  DATAGRAM_ATTEMPT_MS,
  TCP_ATTEMPT_MS,
} from '../../../helper/daemon/answered-attempts.js';

describe('AnsweredAttempts', () => {
  it('a TCP retransmit is its tuple and SYN sequence number; a reused port with a new SYN is new', () => {
    let now = 1000;
    const a = new AnsweredAttempts(16, () => now);
    a.remember('tcp|10.0.0.1|40000|10.0.0.2|80', 12345, 'deny');
    expect(a.answerFor('tcp|10.0.0.1|40000|10.0.0.2|80', 12345)).toBe('deny');
    expect(a.answerFor('tcp|10.0.0.1|40000|10.0.0.2|80', 999)).toBeNull();
    expect(a.answerFor('tcp|10.0.0.1|40001|10.0.0.2|80', 12345)).toBeNull();
    now += TCP_ATTEMPT_MS - 1;
    expect(a.answerFor('tcp|10.0.0.1|40000|10.0.0.2|80', 12345)).toBe('deny');
    now += 1;
    expect(a.answerFor('tcp|10.0.0.1|40000|10.0.0.2|80', 12345)).toBeNull();
    expect(a.size).toBe(0);
  });

  it('a datagram flow is answered for a shorter while, then asked again', () => {
    let now = 0;
    const a = new AnsweredAttempts(16, () => now);
    a.remember('udp|k', null, 'deny');
    now = DATAGRAM_ATTEMPT_MS - 1;
    expect(a.answerFor('udp|k', null)).toBe('deny');
    now = DATAGRAM_ATTEMPT_MS;
    expect(a.answerFor('udp|k', null)).toBeNull();
  });

  it('stays bounded: the oldest attempts go first', () => {
    const a = new AnsweredAttempts(32, () => 0);
    for (let i = 0; i < 1000; i++) a.remember(`k${i}`, i, 'deny');
    expect(a.size).toBeLessThanOrEqual(32);
    expect(a.answerFor('k999', 999)).toBe('deny');
    expect(a.answerFor('k0', 0)).toBeNull();
  });
});
