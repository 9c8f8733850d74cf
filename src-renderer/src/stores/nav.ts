/** Which view is shown; mirrored in location.hash so reloads and links keep it. */
import { defineStore } from 'pinia';
import { ref } from 'vue';

export const VIEWS = [
  { id: 'connections', label: 'Connections' },
  { id: 'prompts', label: 'Prompts' },
  { id: 'rules', label: 'Rules' },
  { id: 'activity', label: 'Activity' },
  { id: 'settings', label: 'Settings' },
] as const;
export type ViewId = (typeof VIEWS)[number]['id'];

export function parseView(hash: string): ViewId {
  const id = hash.replace(/^#\/?/u, '');
  return VIEWS.find((v) => v.id === id)?.id ?? 'connections';
}

export const useNavStore = defineStore('nav', () => {
  const view = ref<ViewId>('connections');

  function go(next: ViewId): void {
    view.value = next;
  }

  return { view, go };
});
