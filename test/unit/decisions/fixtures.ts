/** Builders and a manual clock shared by the decisions and history tests. */
import type { Clock, TimerHandle } from '../../../helper/common/clock.js';
import type {
  ConnectionRequest,
  ProcessInfo,
  Rule,
  RuleMatch,
} from '../../../helper/protocol/model.js';

export function proc(over: Partial<ProcessInfo> = {}): ProcessInfo {
  return {
    pid: 4242,
    ppid: 1,
    startTime: 777,
    comm: 'curl',
    exe: '/usr/bin/curl',
    cmdline: ['curl', 'https://www.api.example.com'],
    uid: 1000,
    gid: 1000,
    user: 'alice',
    unit: 'app-curl.scope',
    container: null,
    appId: null,
    ...over,
  };
}

export function req(over: Partial<ConnectionRequest> = {}): ConnectionRequest {
  return {
    time: 1_000,
    direction: 'outbound',
    family: 'ipv4',
    protocol: 'tcp',
    protocolNumber: 6,
    src: '10.0.0.2',
    dst: '192.0.2.10',
    sport: 40000,
    dport: 443,
    icmpType: null,
    icmpCode: null,
    inIfindex: null,
    outIfindex: 2,
    host: 'www.api.example.com',
    uid: 1000,
    process: proc(),
    ...over,
  };
}

let nextId = 0;
export function rule(match: RuleMatch, over: Partial<Rule> = {}): Rule {
  return {
    id: `r${nextId++}`,
    enabled: true,
    action: 'allow',
    match,
    duration: { kind: 'forever' },
    created: 0,
    expires: null,
    hits: 0,
    lastHit: null,
    ...over,
  };
}

/** A clock whose time moves only when told; timers fire in deadline order. */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<object, { at: number; seq: number; fn: () => void }>();

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = {};
    this.#timers.set(handle, { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle);
  }

  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward, firing every timer due on the way. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: [object, { at: number; seq: number; fn: () => void }] | undefined;
      for (const t of this.#timers) {
        if (t[1].at > end) continue;
        if (!next || t[1].at < next[1].at || (t[1].at === next[1].at && t[1].seq < next[1].seq)) {
          next = t;
        }
      }
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
    }
    this.#now = end;
  }
}
