/** Connects every store to one API; returns the function that disconnects them. */
import type { PortcullisApi, Unsubscribe } from '../../../src-main/common/api.js';
import { useActivityStore } from './activity.js';
import { useFlowsStore } from './flows.js';
import { useHelperStore } from './helper.js';
import { useIconsStore } from './icons.js';
import { usePromptsStore } from './prompts.js';
import { useRulesStore } from './rules.js';

export function attachStores(api: PortcullisApi): Unsubscribe {
  const stops = [
    useHelperStore().attach(api),
    useFlowsStore().attach(api),
    usePromptsStore().attach(api),
    useRulesStore().attach(api),
    useActivityStore().attach(api),
    useIconsStore().attach(api),
  ];
  return () => {
    for (const stop of stops) stop();
  };
}
