// Compile-time checks (tsc runs over test/): the method and topic maps type
// calls, results and events end to end. `@ts-expect-error` lines fail the
// type check if they ever stop being errors.
import { describe, expectTypeOf, it } from 'vitest';
import type { IpcClient } from '../../../helper/protocol/client.js';
import type {
  FlowsEvent,
  Params,
  PublishMap,
  Result,
  TopicData,
} from '../../../helper/protocol/messages.js';
import type { HistoryEntry, Rule, RuleInput, Stats } from '../../../helper/protocol/model.js';
import type { HelperService } from '../../../helper/server/service.js';

describe('typed method and topic maps', () => {
  it('types results, params and events from the catalogue', () => {
    expectTypeOf<Result<'rules.add'>>().toEqualTypeOf<Rule>();
    expectTypeOf<Params<'rules.add'>>().toEqualTypeOf<RuleInput>();
    expectTypeOf<Result<'stats.get'>>().toEqualTypeOf<Stats>();
    expectTypeOf<Result<'history.query'>>().toEqualTypeOf<{
      entries: HistoryEntry[];
      more: boolean;
    }>();
    // Defaults are applied before the service sees them: never undefined.
    expectTypeOf<Params<'rules.list'>>().toEqualTypeOf<{ offset: number; limit: number }>();
    expectTypeOf<TopicData<'verdicts'>>().toEqualTypeOf<HistoryEntry>();
    expectTypeOf<TopicData<'flows'>>().toEqualTypeOf<FlowsEvent>();
    expectTypeOf<PublishMap['stats']>().toEqualTypeOf<Stats>();
    expectTypeOf<ReturnType<HelperService['rules.remove']>>().toEqualTypeOf<Promise<null>>();
  });

  it('rejects wrong calls at compile time', () => {
    const typed = async (client: IpcClient) => {
      const rule = await client.call('rules.add', {
        action: 'allow',
        match: { exe: '/usr/bin/ssh' },
        duration: { kind: 'forever' },
      });
      expectTypeOf(rule).toEqualTypeOf<Rule>();
      const list = await client.call('rules.list'); // params optional
      expectTypeOf(list.rules).toEqualTypeOf<Rule[]>();
      // @ts-expect-error params are required for rules.add
      await client.call('rules.add');
      // @ts-expect-error 'maybe' is not an Action
      await client.call('rules.add', { action: 'maybe', match: {}, duration: { kind: 'once' } });
      // @ts-expect-error no such method
      await client.call('rules.frobnicate', {});
      client.on('prompts', (e) => {
        expectTypeOf(e.kind).toEqualTypeOf<'added' | 'updated' | 'resolved'>();
      });
      // @ts-expect-error no such topic
      client.on('nope', () => undefined);
    };
    expectTypeOf(typed).toBeFunction();
  });
});
