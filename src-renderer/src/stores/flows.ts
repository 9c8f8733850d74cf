/**
 * The conntrack table as the renderer holds it.
 *
 * 100,000 flows with 1,000 updates a second cannot be deep-reactive: the
 * flows live in a plain Map by id, and one shallow `version` counter tells
 * the table that live values changed (it re-reads only its visible rows).
 * The sorted/filtered row list is recomputed right away when the person
 * changes the view, and at a bounded rate when deltas arrive, so a flood of
 * updates costs one re-sort per refresh interval, not one per delta.
 */
import { defineStore } from 'pinia';
import { computed, markRaw, reactive, ref, shallowRef, watch } from 'vue';
import type {
  Flow,
  FlowEvent,
  FlowId,
  KillResult,
  PortcullisApi,
  Unsubscribe,
} from '../../../src-main/common/api.js';
import {
  applyOrder,
  buildRows,
  EMPTY_FILTER,
  filterFlows,
  flowPredicate,
  processKey,
  rowsFromSorted,
  sortInput,
  sortKey,
  type ViewOptions,
  type FlowFilter,
  type FlowRow,
  type SortKey,
  type SortSpec,
} from '../lib/flow-view.js';
import type { AsyncSorter } from '../lib/sorter.js';

/** Below this many flows a synchronous sort is cheaper than a trip to the worker. */
const WORKER_THRESHOLD = 20_000;

/** Live re-sorting at most this often; raised when a recompute is slow. */
const MIN_REFRESH_MS = 1000;

// eslint-disable-next-line max-lines-per-function -- a Pinia setup store: the table's state, its paced recompute and its actions share one closure
export const useFlowsStore = defineStore('flows', () => {
  const byId = markRaw(new Map<FlowId, Flow>());
  /** Bumped after every applied event: live cells depend on it. */
  const version = shallowRef(0);
  const count = ref(0);
  const filter = reactive<FlowFilter>({ ...EMPTY_FILTER });
  const sort = ref<SortSpec>({ key: 'age', direction: 'asc' });
  const groupByProcess = ref(false);
  const collapsed = shallowRef<ReadonlySet<string>>(new Set());
  const rows = shallowRef<FlowRow[]>([]);
  /** Flows that pass the filter (rows also holds group headers). */
  const shown = ref(0);
  const selectedId = ref<FlowId | null>(null);
  /** State names seen in the table, for the state filter. */
  const states = shallowRef<string[]>([]);
  /** Duration of the last recompute (ms), shown nowhere but used to pace refreshes. */
  const lastRecomputeMs = ref(0);
  const paused = ref(false);

  let api: PortcullisApi | null = null;
  let sorter: AsyncSorter | null = null;
  let liveSeq = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let dirty = false;
  let lastRecomputeAt = 0;

  const selected = computed<Flow | null>(() => {
    void version.value;
    return selectedId.value === null ? null : (byId.get(selectedId.value) ?? null);
  });

  function viewOptions(): ViewOptions {
    return {
      filter: { ...filter },
      sort: sort.value,
      groupByProcess: groupByProcess.value,
      collapsed: collapsed.value,
    };
  }

  function publish(next: FlowRow[], mainThreadMs: number): void {
    rows.value = next;
    shown.value = groupByProcess.value
      ? next.reduce((n, r) => n + (r.kind === 'group' ? r.count : 0), 0)
      : next.length;
    const seen = new Set<string>();
    for (const f of byId.values()) if (f.state !== null) seen.add(f.state);
    states.value = [...seen].sort();
    lastRecomputeAt = performance.now();
    lastRecomputeMs.value = mainThreadMs;
  }

  /** Rebuilds the rows now, on this thread (view changes, snapshots, tests). */
  function recompute(): void {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    dirty = false;
    liveSeq++; // an in-flight worker sort is now stale
    const t0 = performance.now();
    const next = buildRows(byId.values(), viewOptions());
    publish(next, performance.now() - t0);
  }

  /**
   * Rebuilds the rows soon: with the sort worker, only filtering and key
   * extraction stay on this thread, so scrolling and typing do not stall.
   */
  async function refreshLive(): Promise<void> {
    if (sorter === null || byId.size < WORKER_THRESHOLD) {
      recompute();
      return;
    }
    if (timer !== null) clearTimeout(timer);
    timer = null;
    dirty = false;
    const seq = ++liveSeq;
    const options = viewOptions();
    const t0 = performance.now();
    const filtered = filterFlows(byId.values(), options.filter);
    const input = sortInput(filtered, options.sort);
    const before = performance.now() - t0;
    const order = await sorter.sort(input);
    if (order === null || seq !== liveSeq) return; // superseded
    const t1 = performance.now();
    const next = rowsFromSorted(applyOrder(filtered, order), options);
    publish(next, before + performance.now() - t1);
  }

  function setSorter(next: AsyncSorter | null): void {
    sorter?.dispose();
    sorter = next;
  }

  /** The refresh interval: never more than ~10% of the time spent re-sorting. */
  function refreshInterval(): number {
    return Math.max(MIN_REFRESH_MS, lastRecomputeMs.value * 10);
  }

  function scheduleRecompute(): void {
    dirty = true;
    if (timer !== null || paused.value) return;
    const wait = Math.max(0, lastRecomputeAt + refreshInterval() - performance.now());
    timer = setTimeout(() => {
      timer = null;
      if (dirty && !paused.value) void refreshLive();
    }, wait);
  }

  function apply(event: FlowEvent): void {
    if (event.kind === 'snapshot') {
      byId.clear();
      for (const f of event.flows) byId.set(f.id, f);
      count.value = byId.size;
      version.value++;
      recompute();
      return;
    }
    let reorder = event.remove.length > 0;
    for (const id of event.remove) byId.delete(id);
    const key = sort.value.key;
    const keep = flowPredicate(filter);
    const group = groupByProcess.value;
    for (const f of event.upsert) {
      const old = byId.get(f.id);
      byId.set(f.id, f);
      // Most deltas only grow counters: re-sort only when one can move or hide a row.
      if (
        !reorder &&
        (old === undefined ||
          sortKey(old, key) !== sortKey(f, key) ||
          (keep !== null && keep(old) !== keep(f)) ||
          (group && processKey(old) !== processKey(f)))
      ) {
        reorder = true;
      }
    }
    count.value = byId.size;
    version.value++;
    if (reorder) scheduleRecompute();
  }

  /** The live flow for an id, or undefined once it has ended. */
  function live(id: FlowId): Flow | undefined {
    return byId.get(id);
  }

  function setSort(key: SortKey): void {
    const cur = sort.value;
    sort.value =
      cur.key === key
        ? { key, direction: cur.direction === 'asc' ? 'desc' : 'asc' }
        : { key, direction: 'asc' };
  }

  function toggleGroup(key: string): void {
    const next = new Set(collapsed.value);
    if (!next.delete(key)) next.add(key);
    collapsed.value = next;
  }

  function setPaused(value: boolean): void {
    paused.value = value;
    if (!value && dirty) recompute();
  }

  // View changes are the person's: answer them at once (through the worker when
  // there is one, so a click on a column of 100,000 flows does not freeze the window).
  watch([filter, sort, groupByProcess, collapsed], () => void refreshLive(), { deep: true });

  function attach(next: PortcullisApi): Unsubscribe {
    api = next;
    const stop = next.onFlows(apply);
    return () => {
      stop();
      if (timer !== null) clearTimeout(timer);
      timer = null;
      api = null;
    };
  }

  function requireApi(): PortcullisApi {
    if (!api) throw new Error('flows store: not attached to an API');
    return api;
  }

  async function kill(id: FlowId): Promise<KillResult> {
    return requireApi().killFlow(id);
  }

  async function setMark(id: FlowId, mark: number): Promise<void> {
    await requireApi().setFlowMark({ id, mark });
  }

  async function setLabels(id: FlowId, labels: number[]): Promise<void> {
    await requireApi().setFlowLabels({ id, labels });
  }

  return {
    version,
    count,
    filter,
    sort,
    groupByProcess,
    collapsed,
    rows,
    shown,
    selectedId,
    selected,
    states,
    lastRecomputeMs,
    paused,
    apply,
    recompute,
    live,
    setSort,
    toggleGroup,
    setPaused,
    setSorter,
    attach,
    kill,
    setMark,
    setLabels,
  };
});
