/**
 * Entry point. The API comes from outside the bundle: the Electron preload
 * (window.portcullis) or, in a normal browser served by the web host
 * (`portcullis ui --web`), the WebSocket transport (transport/ws-api.ts).
 * The renderer never creates one from Node or the helper.
 */
import { createPinia } from 'pinia';
import { createApp } from 'vue';
import App from './App.vue';
import { apiKey } from './api.js';
import { workerSorter } from './lib/sorter.js';
import { useFlowsStore } from './stores/flows.js';
import { installWsApi } from './transport/ws-api.js';
import './styles/base.css';

const root = document.getElementById('app');
let reason = 'no window.portcullis';
try {
  await installWsApi();
} catch (error) {
  reason = error instanceof Error ? error.message : String(error);
}
const api = window.portcullis;

if (!root) {
  throw new Error('index.html lacks #app');
} else if (!api) {
  // textContent, not innerHTML: nothing here is ever parsed as markup.
  root.textContent = `Portcullis cannot reach its service (${reason}).`;
  root.setAttribute('role', 'alert');
} else {
  const pinia = createPinia();
  // Live re-sorts of the flow table run in a worker (the store sorts inline without one).
  useFlowsStore(pinia).setSorter(workerSorter());
  createApp(App).use(pinia).provide(apiKey, api).mount(root);
}
