/**
 * Entry point. The API comes from outside the bundle: the Electron preload
 * (window.portcullis) or, for the web host, a transport installed before this
 * script runs. The renderer never creates one from Node or the helper.
 */
import { createPinia } from 'pinia';
import { createApp } from 'vue';
import App from './App.vue';
import { apiKey } from './api.js';
import './styles/base.css';

const root = document.getElementById('app');
const api = window.portcullis;

if (!root) {
  throw new Error('index.html lacks #app');
} else if (!api) {
  // textContent, not innerHTML: nothing here is ever parsed as markup.
  root.textContent = 'Portcullis cannot reach its service (no window.portcullis).';
  root.setAttribute('role', 'alert');
} else {
  createApp(App).use(createPinia()).provide(apiKey, api).mount(root);
}
