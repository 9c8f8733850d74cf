/**
 * How components reach the API: provided once by main.ts (or a test), never
 * imported as a global, so tests mount components against the in-memory API.
 */
import { inject, type InjectionKey } from 'vue';
import type { PortcullisApi } from '../../src-main/common/api.js';

export const apiKey: InjectionKey<PortcullisApi> = Symbol('PortcullisApi');

export function useApi(): PortcullisApi {
  const api = inject(apiKey, null);
  if (!api) throw new Error('PortcullisApi not provided');
  return api;
}
