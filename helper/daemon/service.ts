/**
 * The IPC server's HelperService: every wire method mapped to the helper's parts
 * (docs/protocol.md). Errors the client should see are ServiceErrors; anything else
 * becomes `internal` (and is logged by the server).
 */
import * as v from 'valibot';
import { DecisionsError, type PromptBroker, type RuleStore } from '../decisions/index.js';
import type { HistoryStore } from '../history/index.js';
import { HistoryError } from '../history/index.js';
import { ServiceError } from '../protocol/errors.js';
import type { Params, Result } from '../protocol/messages.js';
import { Settings, type Flow } from '../protocol/model.js';
import { ruleToInput } from '../protocol/rules.js';
import type { HelperService } from '../server/service.js';
import { DaemonError } from './errors.js';
import type { Interception } from './interception.js';
import { ImportStaging } from './import-staging.js';
import type { SettingsFile } from './settings.js';

export interface ServiceParts {
  interception: Interception;
  rules: RuleStore;
  broker: PromptBroker;
  history: HistoryStore;
  settingsFile: SettingsFile;
  /** Called after the settings changed (the no-GUI policy may now apply), with the fields set. */
  onSettingsChanged?: (fields: readonly (keyof Settings)[]) => void;
  /** Staged imports (rules.importBegin...); default: one with the default bounds. */
  importStaging?: ImportStaging;
}

/** Maps the parts' typed errors to the codes a client sees. */
function mapError(error: unknown): never {
  if (error instanceof ServiceError) throw error;
  if (error instanceof DecisionsError) {
    switch (error.code) {
      case 'NOT_FOUND':
      case 'ALREADY_RESOLVED':
        throw new ServiceError('not-found', error.message);
      case 'INVALID_RULE':
      case 'INVALID_IMPORT':
        throw new ServiceError('invalid-params', error.message);
      default:
        throw error;
    }
  }
  if (error instanceof HistoryError && error.code === 'INVALID_QUERY') {
    throw new ServiceError('invalid-params', error.message);
  }
  if (error instanceof DaemonError) {
    if (error.code === 'UNKNOWN_FLOW') throw new ServiceError('not-found', error.message);
    if (error.code === 'INVALID_OPTION') throw new ServiceError('invalid-params', error.message);
  }
  throw error;
}

async function guarded<T>(work: () => T | Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    return mapError(error);
  }
}

// eslint-disable-next-line max-lines-per-function -- one handler per wire method of the helper's protocol: its whole IPC surface in one table
export function createHelperService(parts: ServiceParts): HelperService {
  const { interception, rules, broker, history, settingsFile } = parts;
  const staging = parts.importStaging ?? new ImportStaging();
  // Settings changes are serialized: each reinstall and save completes before the next.
  let settingsChain: Promise<unknown> = Promise.resolve();

  const setSettings = async (patch: Params<'settings.set'>): Promise<Result<'settings.set'>> => {
    const next = v.safeParse(Settings, { ...interception.settings(), ...patch });
    if (!next.success) {
      throw new ServiceError('invalid-params', `settings: ${next.issues[0]?.message}`);
    }
    await interception.applySettings(next.output);
    await settingsFile.save(interception.settings());
    parts.onSettingsChanged?.(Object.keys(patch) as (keyof Settings)[]);
    return interception.settings();
  };

  return {
    'state.get': () => Promise.resolve(interception.state()),
    'settings.get': () => Promise.resolve(interception.settings()),
    'settings.set': (patch) => {
      const run = settingsChain.then(() => guarded(() => setSettings(patch)));
      settingsChain = run.catch(() => undefined);
      return run;
    },
    'flows.kill': ({ id }) => guarded(() => interception.flows.kill(id)),
    'flows.setMark': ({ id, mark, mask }) =>
      guarded(async () => {
        await interception.flows.setMark(id, mark, mask ?? 0xffffffff);
        return null;
      }),
    'flows.setLabels': ({ id, add, remove }) =>
      guarded(async () => {
        // Only the bits named change: `add` set, `remove` cleared.
        const mask = [...new Set([...add, ...remove])];
        await interception.flows.setLabels(
          id,
          add.filter((b) => !remove.includes(b)),
          mask,
        );
        return null;
      }),
    'prompts.list': () => Promise.resolve(broker.pending()),
    'prompts.answer': (answer) =>
      guarded(() => {
        const { rule, prompt } = broker.answer(answer);
        return { decided: prompt.held, rule };
      }),
    'rules.list': ({ offset, limit }) =>
      guarded(() => {
        const all = rules.list();
        return { rules: all.slice(offset, offset + limit), total: all.length };
      }),
    'rules.add': (input) => guarded(() => rules.add(input)),
    'rules.update': ({ id, patch }) => guarded(() => rules.update(id, patch)),
    'rules.remove': ({ id }) =>
      guarded(async () => {
        await rules.remove(id);
        return null;
      }),
    'rules.setEnabled': ({ id, enabled }) => guarded(() => rules.setEnabled(id, enabled)),
    'rules.import': ({ rules: list, mode }) => guarded(() => rules.importInputs(list, { mode })),
    'rules.importBegin': ({ total }, { clientId }) => guarded(() => staging.begin(clientId, total)),
    'rules.importPage': ({ staging: id, offset, rules: page }, { clientId }) =>
      guarded(() => ({ staged: staging.page(clientId, id, offset, page) })),
    'rules.importCommit': ({ staging: id, mode }, { clientId }) =>
      guarded(() => rules.importInputs(staging.take(clientId, id), { mode })),
    'rules.importAbort': ({ staging: id }, { clientId }) =>
      guarded(() => {
        staging.abort(clientId, id);
        return null;
      }),
    'rules.export': ({ offset, limit }) =>
      guarded(() => {
        const all = rules.export().rules;
        return { rules: all.slice(offset, offset + limit).map(ruleToInput), total: all.length };
      }),
    'rules.dryRun': ({ match, since, until, limit }) =>
      guarded(async () => {
        await history.loaded();
        return history.dryRunAll(match, {
          limit,
          ...(since !== undefined ? { since } : {}),
          ...(until !== undefined ? { until } : {}),
        });
      }),
    'history.query': (q) =>
      guarded(async () => {
        await history.loaded();
        const page = await history.queryAll({
          limit: q.limit,
          ...(q.since !== undefined ? { since: q.since } : {}),
          ...(q.until !== undefined ? { until: q.until } : {}),
          ...(q.text !== undefined ? { text: q.text } : {}),
          ...(q.action !== undefined ? { action: q.action } : {}),
          ...(q.beforeSeq !== undefined ? { beforeSeq: q.beforeSeq } : {}),
        });
        return { entries: page.entries, more: page.nextBeforeSeq !== null };
      }),
    'history.series': (q) =>
      guarded(async () => {
        await history.loaded();
        return { bucketMs: q.bucketMs, buckets: await history.seriesAll(q) };
      }),
    'stats.get': () =>
      guarded(async () => interception.stats.latest ?? (await interception.stats.collect())),
    clientClosed: ({ clientId }) => staging.dropClient(clientId),
    flowsSnapshot: (): Iterable<Flow> => interception.flows.snapshot(),
    prepareFlows: () => interception.flows.follow(),
  };
}
