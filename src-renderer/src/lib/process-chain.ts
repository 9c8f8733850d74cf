/**
 * How a connection's process and its attribution are described: the parent chain
 * ("via bash ← sshd") and the helper's attribution mode. Pure functions.
 */
import type {
  AttributionState,
  ProcessAncestor,
  ProcessInfo,
} from '../../../src-main/common/api.js';

/** An ancestor's short name: its executable's file name, else its comm. */
function shortName(a: ProcessAncestor): string {
  const base = a.exe?.split('/').pop();
  return base !== undefined && base !== '' ? base : a.comm;
}

/** "bash ← sshd ← systemd", nearest first; null when the chain is not known or empty. */
export function compactChain(p: ProcessInfo | null | undefined): string | null {
  const chain = p?.ancestors;
  if (!chain || chain.length === 0) return null;
  return chain.map(shortName).join(' ← ');
}

/** Each ancestor with its pid and path: "bash (pid 10, /usr/bin/bash) ← sshd (pid 1, –)". */
export function detailedChain(p: ProcessInfo | null | undefined): string | null {
  const chain = p?.ancestors;
  if (!chain || chain.length === 0) return null;
  return chain.map((a) => `${a.comm} (pid ${a.pid}, ${a.exe ?? '–'})`).join(' ← ');
}

/** The attribution mode in words, for the Settings view. */
export function describeAttribution(a: AttributionState): string {
  if (a.mode === 'ebpf') {
    const base = 'eBPF: owners recorded in the kernel when a program connects or sends';
    return a.reason ? `${base} (in part: ${a.reason})` : base;
  }
  return `/proc + sock_diag fallback: programs that exit at once may go unnamed${a.reason ? ` (${a.reason})` : ''}`;
}
