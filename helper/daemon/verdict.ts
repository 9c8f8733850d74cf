import type { Decision } from './ports.js';

/**
 * What the kernel is told for a packet: accept, deny (refused outbound: TCP reset or
 * ICMP administratively prohibited; dropped inbound), or drop (denied silently).
 * Each is a mark value the rules act on (docs/firewall.md, "Connmark layout").
 */
export type Verdict = 'allow' | 'deny' | 'drop';

export function verdictOf(decision: Pick<Decision, 'action' | 'denyWith'>): Verdict {
  if (decision.action === 'allow') return 'allow';
  return decision.denyWith === 'drop' ? 'drop' : 'deny';
}
