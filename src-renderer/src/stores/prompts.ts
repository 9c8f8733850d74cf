/**
 * Pending prompts, coalesced per app and destination, with a live countdown.
 *
 * The helper already folds a burst from one app into one prompt (`held`);
 * the renderer folds further by app + destination + port + protocol so that
 * a person never sees the same question twice, and one answer settles them
 * all. The list keeps arrival order so the selection never jumps when a new
 * prompt arrives (and nothing here ever moves keyboard focus).
 */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type {
  Action,
  AnswerScope,
  AnswerWho,
  ConnectionRequest,
  Duration,
  PortcullisApi,
  Prompt,
  PromptEvent,
  Rule,
  Unsubscribe,
} from '../../../src-main/common/api.js';

/** What the person picks; "until the app quits" becomes a process duration per prompt. */
export type DurationChoice =
  | { kind: 'once' }
  | { kind: 'seconds'; seconds: number }
  | { kind: 'minutes'; minutes: number }
  | { kind: 'process' }
  | { kind: 'session' }
  | { kind: 'forever' };

/** Whom and which destinations a remembered answer covers (docs/rules.md). */
export interface AnswerReach {
  scope: AnswerScope;
  who: AnswerWho;
}

export interface PromptGroup {
  key: string;
  /** Oldest first. */
  prompts: Prompt[];
  /** The oldest prompt: what the card shows. */
  first: Prompt;
  held: number;
  /** The earliest deadline: the default is given when it passes. */
  deadline: number;
  defaultAction: Action;
}

/** App + destination + port + protocol + direction. */
export function coalesceKey(request: ConnectionRequest): string {
  const p = request.process;
  const app = p?.appId ?? p?.exe ?? p?.comm ?? `uid:${request.uid ?? '?'}`;
  const dest = request.host ?? request.dst;
  return [app, request.direction, request.protocol, dest, request.dport ?? ''].join('|');
}

export function groupPrompts(prompts: Iterable<Prompt>): PromptGroup[] {
  const groups = new Map<string, PromptGroup>();
  const sorted = [...prompts].sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
  for (const prompt of sorted) {
    const key = coalesceKey(prompt.request);
    const g = groups.get(key);
    if (!g) {
      groups.set(key, {
        key,
        prompts: [prompt],
        first: prompt,
        held: prompt.held,
        deadline: prompt.deadline,
        defaultAction: prompt.defaultAction,
      });
    } else {
      g.prompts.push(prompt);
      g.held += prompt.held;
      if (prompt.deadline < g.deadline) {
        g.deadline = prompt.deadline;
        g.defaultAction = prompt.defaultAction;
      }
    }
  }
  return [...groups.values()];
}

/** The protocol's Duration for a choice, for one prompt. */
export function toDuration(choice: DurationChoice, request: ConnectionRequest): Duration {
  if (choice.kind !== 'process') return choice;
  const p = request.process;
  // Without a known process there is nothing to outlive: the helper's session is the closest.
  return p ? { kind: 'process', pid: p.pid, startTime: p.startTime } : { kind: 'session' };
}

// eslint-disable-next-line max-lines-per-function -- a Pinia setup store: the prompts, their countdown and the answers share one closure
export const usePromptsStore = defineStore('prompts', () => {
  const byId = shallowRef(new Map<string, Prompt>());
  const now = ref(Date.now());
  const selectedKey = ref<string | null>(null);
  const error = ref<string | null>(null);
  let api: PortcullisApi | null = null;
  let ticker: ReturnType<typeof setInterval> | null = null;

  const groups = computed(() => groupPrompts(byId.value.values()));
  const count = computed(() => groups.value.length);
  const selected = computed(
    () => groups.value.find((g) => g.key === selectedKey.value) ?? groups.value[0] ?? null,
  );

  function secondsLeft(group: PromptGroup): number {
    return Math.max(0, Math.ceil((group.deadline - now.value) / 1000));
  }

  // The clock only runs while something counts down.
  function syncTicker(): void {
    if (byId.value.size > 0 && ticker === null) {
      now.value = Date.now();
      ticker = setInterval(() => (now.value = Date.now()), 250);
    } else if (byId.value.size === 0 && ticker !== null) {
      clearInterval(ticker);
      ticker = null;
    }
  }

  function apply(event: PromptEvent): void {
    const next = event.kind === 'snapshot' ? new Map<string, Prompt>() : new Map(byId.value);
    if (event.kind === 'snapshot') {
      for (const p of event.prompts) next.set(p.id, p);
    } else {
      for (const id of event.remove) next.delete(id);
      for (const p of event.upsert) next.set(p.id, p);
    }
    byId.value = next;
    syncTicker();
  }

  function select(key: string | null): void {
    selectedKey.value = key;
  }

  /** Moves the selection up or down the list, staying within it. */
  function move(delta: number): void {
    const list = groups.value;
    if (list.length === 0) return;
    const at = Math.max(
      0,
      list.findIndex((g) => g.key === selected.value?.key),
    );
    const next = Math.min(list.length - 1, Math.max(0, at + delta));
    selectedKey.value = (list[next] as PromptGroup).key;
  }

  /** Answers every prompt of a group the same way. */
  async function answer(
    group: PromptGroup,
    action: Action,
    reach: AnswerScope | AnswerReach,
    duration: DurationChoice,
    /** With deny: 'drop' denies silently (the default refuses). */
    denyWith?: NonNullable<Rule['denyWith']>,
  ): Promise<void> {
    const { scope, who } =
      typeof reach === 'string' ? { scope: reach, who: 'app' as const } : reach;
    if (!api) throw new Error('prompts store: not attached to an API');
    const target = api;
    error.value = null;
    // Move the selection to the neighbour before the list changes under it.
    const list = groups.value;
    const at = list.findIndex((g) => g.key === group.key);
    const neighbour = list[at + 1] ?? list[at - 1] ?? null;
    try {
      await Promise.all(
        group.prompts.map((p) =>
          target.answerPrompt({
            promptId: p.id,
            action,
            ...(action === 'deny' && denyWith ? { denyWith } : {}),
            scope,
            // "app" is what an answer without it means: sent only when it differs.
            ...(who !== 'app' ? { who } : {}),
            duration: toDuration(duration, p.request),
          }),
        ),
      );
      if (selectedKey.value === group.key || selectedKey.value === null) {
        selectedKey.value = neighbour?.key ?? null;
      }
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    }
  }

  function attach(next: PortcullisApi): Unsubscribe {
    api = next;
    const stop = next.onPrompts(apply);
    return () => {
      stop();
      api = null;
      if (ticker !== null) clearInterval(ticker);
      ticker = null;
    };
  }

  return {
    byId,
    now,
    groups,
    count,
    selected,
    selectedKey,
    error,
    secondsLeft,
    apply,
    select,
    move,
    answer,
    attach,
  };
});
