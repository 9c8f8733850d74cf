import { describe, expect, it } from 'vitest';
import { DECISION_SLACK_MS, LiveSettings } from '../../../helper/daemon/live-settings.js';
import type { Settings } from '../../../helper/protocol/model.js';

const START: Settings = {
  defaultAction: 'deny',
  promptTimeoutSeconds: 30,
  noGuiPolicy: 'deny',
  failOpen: true,
  interceptOutbound: true,
  interceptInbound: false,
};

describe('LiveSettings', () => {
  it('the verdict policy is a view of the one copy: a replace is seen at once', () => {
    const live = new LiveSettings(START);
    const policy = live.policy;
    expect({ ...policy }).toEqual({
      defaultAction: 'deny',
      decisionTimeoutMs: 30_000 + DECISION_SLACK_MS,
      failClosed: false,
      inbound: false,
    });
    const previous = live.replace({
      ...START,
      defaultAction: 'allow',
      promptTimeoutSeconds: 5,
      failOpen: false,
      interceptInbound: true,
    });
    expect(previous).toEqual(START);
    expect(policy.defaultAction).toBe('allow');
    expect(policy.decisionTimeoutMs).toBe(5_000 + DECISION_SLACK_MS);
    expect(policy.failClosed).toBe(true);
    expect(policy.inbound).toBe(true);
    expect(live.current.promptTimeoutSeconds).toBe(5);
  });

  it('keeps its own copy of what it is given', () => {
    const given = { ...START };
    const live = new LiveSettings(given);
    given.defaultAction = 'allow';
    expect(live.current.defaultAction).toBe('deny');
  });
});
