import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// V8 flags are process-wide: the modes are tried in child processes, on the
// compiled module (scripts/setup.sh builds it before the tests run).
const jitModule = fileURLToPath(new URL('../../../dist/helper/cli/jit.js', import.meta.url));

/** %GetOptimizationStatus of a hot function after applyJitMode(mode), in a fresh node. */
function statusAfter(mode: string): number {
  const script = `
    const { applyJitMode } = await import(${JSON.stringify(jitModule)});
    applyJitMode(${JSON.stringify(mode)});
    function hot(x) { let s = 0; for (let i = 0; i < 50; i++) s += x * i; return s; }
    let t = 0;
    for (let i = 0; i < 3e6; i++) t += hot(i);
    process.stdout.write(String(%GetOptimizationStatus(hot)));`;
  const out = execFileSync(
    process.execPath,
    // Optimised on the main thread: a background compile can still be queued when
    // the loop ends on a loaded machine, and the status would then say nothing.
    [
      '--allow-natives-syntax',
      '--no-concurrent-recompilation',
      '--input-type=module',
      '-e',
      script,
    ],
    { encoding: 'utf8' },
  );
  return Number(out);
}

// V8's OptimizationStatus bits (src/runtime/runtime.h): kTurboFanned, kBaseline.
const TURBOFANNED = 1 << 6;
const BASELINE = 1 << 15;

describe('applyJitMode', () => {
  it('full lets TurboFan optimise a hot function; baseline keeps it at Sparkplug', () => {
    const full = statusAfter('full');
    expect(full & TURBOFANNED).toBe(TURBOFANNED);
    const baseline = statusAfter('baseline');
    expect(baseline & TURBOFANNED).toBe(0);
    expect(baseline & BASELINE).toBe(BASELINE);
  });
});
