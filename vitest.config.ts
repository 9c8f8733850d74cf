import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vitest/config';

// Two projects: `unit` runs anywhere; `root` needs root and the kernel's netfilter
// modules, and every file in it creates and deletes its own network namespace.
// Renderer tests pick happy-dom with a `@vitest-environment` comment; the Vue
// plugin compiles the .vue components they mount. dist/ (the compiled CLI that tests run
// in child processes) is brought up to date once, before any file runs.
export default defineConfig({
  test: {
    globalSetup: ['test/support/global-build.ts'],
    projects: [
      {
        plugins: [vue()],
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'root',
          include: ['test/root/**/*.test.ts'],
          environment: 'node',
          pool: 'forks',
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
    ],
  },
});
