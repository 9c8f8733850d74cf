/**
 * The decider the helper uses until the rule engine (helper/decisions) is wired in:
 * policy only, no rules, no prompts. Nobody can be asked (this branch has no IPC
 * server, so no GUI is ever connected), which is exactly the "no GUI connected:
 * the no-GUI policy applies at once".
 */
import type { Action, ConnectionRequest } from '../protocol/model.js';
import type { Decider, Decision } from './ports.js';

export class PolicyFallbackDecider implements Decider {
  constructor(readonly noGuiPolicy: Action) {}

  decide(_request: ConnectionRequest, _options: { deadline: number }): Promise<Decision> {
    return Promise.resolve({ action: this.noGuiPolicy, reason: 'no-gui', ruleId: null });
  }
}
