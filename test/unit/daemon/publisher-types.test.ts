// EventPublisher is keyed by DaemonTopics: a topic the daemon does not publish, or a
// payload of the wrong type, stops tsc (the @ts-expect-error lines below are checked
// by `tsc -p tsconfig.test.json`: each fails the typecheck if the error goes away).
import { describe, expect, it } from 'vitest';
import { ServerPublisher } from '../../../helper/daemon/adapters.js';
import type { DaemonTopics, EventPublisher } from '../../../helper/daemon/ports.js';
import type { Flow } from '../../../helper/protocol/model.js';

function wrongUses(publisher: EventPublisher, flow: Flow): void {
  // @ts-expect-error: not a topic of the map (decisions reach clients through the history)
  publisher.publish('verdict', {});
  // @ts-expect-error: flows carries a FlowDelta, not a bare Flow
  publisher.publish('flows', flow);
  // @ts-expect-error: stats carries Stats
  publisher.publish('stats', { n: 1 });
  // @ts-expect-error: state carries HelperState
  publisher.publish('state', null);
}

describe('EventPublisher topics', () => {
  it('every topic of the map has a publisher case (the wrong uses above never run)', () => {
    const topics: Record<keyof DaemonTopics, true> = { flows: true, stats: true, state: true };
    expect(Object.keys(topics)).toEqual(['flows', 'stats', 'state']);
    expect(typeof wrongUses).toBe('function');
    const p: EventPublisher = new ServerPublisher();
    expect(() => p.publish('flows', { kind: 'removed', id: 1 })).not.toThrow();
  });
});
