/**
 * Policy only, no rules, no prompts: the decider of an Interception started without one (the
 * in-process tests, bench/peer-interceptor.ts). Nobody can be asked, so the no-GUI
 * policy applies at once.
 */
import type { Action, ConnectionRequest } from '../protocol/model.js';
import type { Decider, Decision } from './ports.js';

export class PolicyFallbackDecider implements Decider {
  constructor(readonly noGuiPolicy: Action) {}

  decide(_request: ConnectionRequest, _options: { deadline: number }): Promise<Decision> {
    return Promise.resolve({ action: this.noGuiPolicy, reason: 'no-gui', ruleId: null });
  }
}
