import { defineConfig } from 'vitest/config';

// The package on a real system: only in a guest booted with systemd as PID 1
// (test/vm/root-matrix.sh runs it through `run-in-vm.sh --init systemd`). It installs
// a package and starts a service, so it is no project of the main config, which the
// README's test command runs on the host. The files share one system: one at a time.
export default defineConfig({
  test: {
    include: ['test/system/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
