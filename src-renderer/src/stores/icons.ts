/**
 * Process icons for the views: asks main once per executable (and app id), a few at a
 * time, and remembers the answer, an icon or "none". Rendering only reads: `lookup()`
 * is called by every visible row on every render of the virtualized table, so it is a
 * map read, and a first sighting only queues a request (sent from a microtask, never
 * during the render). The map is shallow-reactive per key: an answer re-renders the
 * rows that show that program, nothing else.
 */
import { defineStore } from 'pinia';
import { shallowReactive } from 'vue';
import type {
  PortcullisApi,
  ProcessIcon,
  ProcessInfo,
  Unsubscribe,
} from '../../../src-main/common/api.js';

/** Requests in flight at once (each reads files in main). */
export const MAX_ICON_REQUESTS = 4;
/** Programs remembered; the oldest are forgotten beyond this. */
export const MAX_ICON_ENTRIES = 1000;

/** Only image data: URLs (what main sends) ever reach an <img src>. */
const DATA_URL = /^data:image\/(?:png|svg\+xml);base64,[A-Za-z0-9+/]+=*$/u;

function iconKey(p: Pick<ProcessInfo, 'exe' | 'appId'>): string | null {
  return p.exe === null ? null : `${p.exe}\0${p.appId ?? ''}`;
}

/** The letter a program without an icon is shown with. */
export function iconLetter(name: string | null | undefined): string {
  const c = (name ?? '').trim().charAt(0);
  return c === '' ? '?' : c.toUpperCase();
}

/** One of six avatar tints, stable per name. */
export function iconHue(name: string | null | undefined): number {
  let h = 0;
  for (const ch of name ?? '') h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h % 6;
}

export const useIconsStore = defineStore('icons', () => {
  /** An icon, null ("none"), or absent (not answered yet). */
  const icons = shallowReactive(new Map<string, ProcessIcon | null>());
  /** Keys asked for (or queued): never asked twice. Not reactive: render never waits on it. */
  const requested = new Map<string, { exe: string; appId: string | null }>();
  const queue: string[] = [];
  let inFlight = 0;
  let scheduled = false;
  let api: PortcullisApi | null = null;
  /** Bumped by attach/detach: answers for an older API are dropped. */
  let generation = 0;

  function forgetOldest(): void {
    while (requested.size > MAX_ICON_ENTRIES) {
      const oldest = requested.keys().next().value;
      if (oldest === undefined) return;
      requested.delete(oldest);
      icons.delete(oldest);
    }
  }

  function pump(): void {
    scheduled = false;
    const current = api;
    const gen = generation;
    while (current && inFlight < MAX_ICON_REQUESTS && queue.length > 0) {
      const key = queue.shift()!;
      const query = requested.get(key);
      if (!query) continue;
      inFlight++;
      current
        .processIcon(query)
        .then(
          (icon) => (icon && DATA_URL.test(icon.dataUrl) ? icon : null),
          () => null, // no icon is not worth an error in the UI
        )
        .then((icon) => {
          if (gen === generation && requested.has(key)) icons.set(key, icon);
        })
        .finally(() => {
          if (gen !== generation) return;
          inFlight--;
          pump();
        });
    }
  }

  /** The icon of a process, or null while unknown or when it has none. */
  function lookup(p: ProcessInfo | null | undefined): ProcessIcon | null {
    if (!p) return null;
    const key = iconKey(p);
    if (key === null) return null;
    const icon = icons.get(key);
    if (icon !== undefined || requested.has(key)) return icon ?? null;
    requested.set(key, { exe: p.exe!, appId: p.appId });
    queue.push(key);
    forgetOldest();
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(pump);
    }
    return null;
  }

  function reset(): void {
    generation++;
    inFlight = 0;
    queue.length = 0;
    requested.clear();
    icons.clear();
  }

  function attach(next: PortcullisApi): Unsubscribe {
    reset();
    api = next;
    return () => {
      reset();
      api = null;
    };
  }

  /** Programs asked about so far (tests). */
  function requestedCount(): number {
    return requested.size;
  }

  return { lookup, attach, requestedCount };
});
