/**
 * The helper's rules: list, search, edit, import/export and the dry run.
 * The helper owns them; this store mirrors its list: it reloads it after each
 * change instead of guessing the helper's result, and follows the helper's rule
 * events (changes made elsewhere: a prompt answer, the command line, pruning).
 */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import {
  ApiError,
  type Action,
  type DryRunResult,
  type ImportRulesResult,
  type PortcullisApi,
  type Rule,
  type RuleEvent,
  type RuleInput,
  type RuleMatch,
  type RulesDocument,
  type Unsubscribe,
} from '../../../src-main/common/api.js';
import { describeMatch } from '../../../src-main/common/matching.js';

/** What the editor works on: a new rule (id null) or an existing one. */
export interface RuleDraft {
  id: string | null;
  rule: RuleInput;
}

function ruleText(rule: Rule): string {
  return [rule.id, rule.action, describeMatch(rule.match), rule.note ?? '', rule.duration.kind]
    .join(' ')
    .toLowerCase();
}

/** Parses an import file; throws with a message a person can act on. */
export function parseRulesDocument(text: string): RulesDocument {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error('The file is not JSON.');
  }
  const doc = data as Partial<RulesDocument> | null;
  if (
    typeof doc !== 'object' ||
    doc === null ||
    doc.format !== 'portcullis-rules' ||
    doc.version !== 1 ||
    !Array.isArray(doc.rules)
  ) {
    throw new Error('Not a Portcullis rules file (format "portcullis-rules", version 1).');
  }
  // Each rule is validated by the helper against the protocol schema.
  return doc as RulesDocument;
}

// eslint-disable-next-line max-lines-per-function -- a Pinia setup store: the rule list, its search and the editing actions share one closure
export const useRulesStore = defineStore('rules', () => {
  const rules = shallowRef<Rule[]>([]);
  const search = ref('');
  const draft = ref<RuleDraft | null>(null);
  const dryRun = shallowRef<DryRunResult | null>(null);
  const error = ref<string | null>(null);
  const loading = ref(false);
  let api: PortcullisApi | null = null;

  const filtered = computed(() => {
    const q = search.value.trim().toLowerCase();
    return q === '' ? rules.value : rules.value.filter((r) => ruleText(r).includes(q));
  });

  function requireApi(): PortcullisApi {
    if (!api) throw new Error('rules store: not attached to an API');
    return api;
  }

  /** Runs a change, reports its error as data, reloads the list. */
  async function change<T>(op: (a: PortcullisApi) => Promise<T>): Promise<T | null> {
    error.value = null;
    try {
      const result = await op(requireApi());
      await load();
      return result;
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
      return null;
    }
  }

  async function load(): Promise<void> {
    loading.value = true;
    try {
      rules.value = await requireApi().listRules();
    } finally {
      loading.value = false;
    }
  }

  function startNew(match: RuleMatch = {}, action: Action = 'allow'): void {
    dryRun.value = null;
    draft.value = {
      id: null,
      rule: { enabled: true, action, match, duration: { kind: 'forever' } },
    };
  }

  function startEdit(rule: Rule): void {
    dryRun.value = null;
    const { enabled, action, denyWith, match, duration, note } = rule;
    draft.value = {
      id: rule.id,
      rule: {
        enabled,
        action,
        ...(denyWith ? { denyWith } : {}),
        match: { ...match },
        duration,
        ...(note ? { note } : {}),
      },
    };
  }

  async function saveDraft(next: RuleDraft): Promise<boolean> {
    const saved = await change((a) =>
      next.id === null ? a.addRule(next.rule) : a.updateRule({ id: next.id, rule: next.rule }),
    );
    if (saved) draft.value = null;
    return saved !== null;
  }

  /**
   * Deletes a rule: 'deleted', or 'gone' when the helper no longer had it (it expired,
   * or was deleted elsewhere: one outcome, not an error), or null on an error.
   */
  async function remove(id: string): Promise<'deleted' | 'gone' | null> {
    error.value = null;
    let outcome: 'deleted' | 'gone' = 'deleted';
    try {
      await requireApi().removeRule(id);
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'not-found')) {
        error.value = e instanceof Error ? e.message : String(e);
        return null;
      }
      outcome = 'gone';
    }
    rules.value = rules.value.filter((r) => r.id !== id);
    return outcome;
  }

  /** A removal is applied at once; anything else reloads the list in the helper's order. */
  function follow(e: RuleEvent): void {
    if (e.kind === 'removed') {
      rules.value = rules.value.filter((r) => r.id !== e.id);
      return;
    }
    void load().catch(() => undefined);
  }

  async function setEnabled(id: string, enabled: boolean): Promise<void> {
    await change((a) => a.setRuleEnabled({ id, enabled }));
  }

  async function exportDocument(): Promise<RulesDocument> {
    return requireApi().exportRules();
  }

  /**
   * Imports a rules file, all or nothing: on an error (`error` names the
   * refused rule by its position in the file) no rule changed. Resolves to
   * what the helper did, or null on an error.
   */
  async function importText(text: string, replace: boolean): Promise<ImportRulesResult | null> {
    let doc: RulesDocument;
    try {
      doc = parseRulesDocument(text);
    } catch (e) {
      error.value = (e as Error).message;
      return null;
    }
    return change((a) => a.importRules({ document: doc, replace }));
  }

  async function runDryRun(match: RuleMatch, action: Action, since: number | null): Promise<void> {
    error.value = null;
    try {
      dryRun.value = await requireApi().dryRunRule({ match, action, since, limit: 200 });
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    }
  }

  function attach(next: PortcullisApi): Unsubscribe {
    api = next;
    void load().catch((e: unknown) => (error.value = String(e)));
    // A prompt answered with a lasting duration adds a rule in the helper: a
    // verdict naming a rule this list lacks is the cue to refresh (the helper
    // gives the held connection reason 'rule' or 'prompt' with its id).
    const stop = next.onVerdicts((v) => {
      if (v.ruleId !== null && !rules.value.some((r) => r.id === v.ruleId)) {
        void load().catch(() => undefined);
      }
    });
    const stopRules = next.onRules(follow);
    return () => {
      stop();
      stopRules();
      api = null;
    };
  }

  return {
    rules,
    search,
    filtered,
    draft,
    dryRun,
    error,
    loading,
    load,
    startNew,
    startEdit,
    saveDraft,
    remove,
    setEnabled,
    exportDocument,
    importText,
    runDryRun,
    attach,
  };
});
