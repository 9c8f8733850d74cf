/**
 * Rule matches as the UI builds and previews them. The match a prompt answer
 * keeps comes from the protocol module, the same function the helper saves
 * with, so the card's preview is the rule that gets saved.
 */
import type { Flow, RuleMatch } from './api.js';

export { domainPattern, matchForScope, remoteAddress } from '../../helper/protocol/rules.js';

/** "Create rule from this flow": the flow's process, destination, port and protocol. */
export function matchForFlow(flow: Flow): RuleMatch {
  const match: RuleMatch = { protocol: flow.protocol };
  if (flow.process?.appId) match.appId = flow.process.appId;
  else if (flow.process?.exe) match.exe = flow.process.exe;
  if (flow.host) match.host = flow.host;
  else match.address = flow.dst;
  if (flow.dport !== null) match.port = { from: flow.dport, to: flow.dport };
  return match;
}

/** A one-line description of a match, for lists and previews. */
export function describeMatch(match: RuleMatch): string {
  const parts: string[] = [];
  if (match.appId !== undefined) parts.push(`app ${match.appId}`);
  if (match.exe !== undefined) parts.push(match.exe);
  if (match.unit !== undefined) parts.push(`unit ${match.unit}`);
  if (match.uid !== undefined) parts.push(`uid ${match.uid}`);
  if (match.direction !== undefined) parts.push(match.direction === 'outbound' ? 'to' : 'from');
  if (match.host !== undefined) parts.push(match.host);
  if (match.address !== undefined) parts.push(match.address);
  if (match.host === undefined && match.address === undefined) parts.push('any host');
  if (match.port !== undefined) {
    const { from, to } = match.port;
    parts.push(from === to ? `port ${from}` : `ports ${from}-${to}`);
  }
  if (match.protocol !== undefined) parts.push(match.protocol);
  return parts.join(' ');
}
