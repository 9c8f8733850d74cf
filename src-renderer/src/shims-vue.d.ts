// Lets plain tsc follow imports of single-file components; vue-tsc checks them for real.
declare module '*.vue' {
  import type { DefineComponent } from 'vue';
  const component: DefineComponent<object, object, unknown>;
  export default component;
}
