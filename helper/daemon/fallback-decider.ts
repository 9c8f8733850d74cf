/**
 * The decider a Helper uses when it is given no decision engine (the in-process
 * tests, the interceptor bench): policy only, no rules, no prompts. Nobody can be
 * asked, so the no-GUI policy applies at once, as it does when no GUI is connected.
 */
import type { Action, ConnectionRequest } from '../protocol/model.js';
import type { Decider, Decision } from './ports.js';

export class PolicyFallbackDecider implements Decider {
  constructor(readonly noGuiPolicy: Action) {}

  decide(_request: ConnectionRequest, _options: { deadline: number }): Promise<Decision> {
    return Promise.resolve({ action: this.noGuiPolicy, reason: 'no-gui', ruleId: null });
  }
}
