/**
 * The helper's interception rules as the kernel's own tools list them, whichever backend
 * the helper's detection must pick on the running kernel: iptables-nft chains where the
 * kernel has no nft `queue` (this machine), `table inet portcullis` where it has (every
 * stock distribution kernel, test/vm/). Tests that check rules go through this, so that
 * they state what they test on every kernel.
 */
import { kernelHasNftQueue } from './kernel.js';
import type { TestNetns } from './netns.js';

export type InterceptionBackend = 'nft' | 'iptables-nft';

export class InterceptionRules {
  /** What `backend: auto` must pick here (an oracle independent of the product's probe). */
  readonly backend: InterceptionBackend;

  /** Call before the helper starts: the oracle adds and removes a scratch table. */
  constructor(private readonly ns: TestNetns) {
    this.backend = kernelHasNftQueue(ns.name) ? 'nft' : 'iptables-nft';
  }

  /** The state's `firewallBackend` name of that backend. */
  get stateName(): 'nft' | 'iptables' {
    return this.backend === 'nft' ? 'nft' : 'iptables';
  }

  /** Our rules, one per line: `iptables -S` lines naming PORTCULLIS, or the nft table's lines. */
  lines(): string[] {
    if (this.backend === 'iptables-nft') {
      return this.ns
        .exec('iptables-nft', ['-S'])
        .split('\n')
        .filter((l) => l.includes('PORTCULLIS'));
    }
    const r = this.ns.try('nft', ['list', 'table', 'inet', 'portcullis']);
    if (r.status !== 0) return [];
    return r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && l !== '}');
  }

  /** The rules that queue packets. */
  queueLines(): string[] {
    const queue = this.backend === 'nft' ? /\bqueue\b.*\bto\b/u : /NFQUEUE/u;
    return this.lines().filter((l) => queue.test(l));
  }

  /** Whether a queue rule lets packets pass while nobody listens (fail-open). */
  static bypasses(line: string): boolean {
    return /--queue-bypass|queue flags bypass/u.test(line);
  }

  /** How many times the outbound path is hooked (a jump from OUTPUT, or an output base chain). */
  outboundHooks(): number {
    const hook = this.backend === 'nft' ? /hook output/u : /^-A OUTPUT -j PORTCULLIS-OUT$/u;
    return this.lines().filter((l) => hook.test(l)).length;
  }

  /** Whether new inbound connections are queued (a jump from INPUT, or an input chain that queues). */
  inboundQueued(): boolean {
    if (this.backend === 'iptables-nft') {
      const lines = this.lines();
      return (
        lines.includes('-A INPUT -j PORTCULLIS-IN') &&
        lines.some((l) => l.startsWith('-A PORTCULLIS-IN ') && l.includes('NFQUEUE'))
      );
    }
    const lines = this.lines();
    const input = lines.findIndex((l) => /hook input/u.test(l));
    if (input < 0) return false;
    const next = lines.findIndex((l, i) => i > input && l.startsWith('chain '));
    return lines.slice(input, next < 0 ? undefined : next).some((l) => /\bqueue\b/u.test(l));
  }

  /** Leaves what a second crashed run could: a duplicated outbound hook, or a stray rule. */
  plantLeftover(): void {
    if (this.backend === 'iptables-nft') {
      this.ns.exec('iptables-nft', ['-A', 'OUTPUT', '-j', 'PORTCULLIS-OUT']);
    } else {
      this.ns.exec('nft', [
        'add',
        'rule',
        'inet',
        'portcullis',
        'output',
        'meta',
        'l4proto',
        'udp',
        'counter',
      ]);
    }
  }
}
