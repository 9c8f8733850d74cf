/**
 * How much of V8's JIT the helper uses. 'full' (the default) lets TurboFan
 * optimise the hot decision path: the highest connection rates and the lowest
 * median, but its background compiling in the first seconds (about 130
 * compiles, half a second of a compiler thread on 2 vCPUs) gives a few percent
 * of those seconds' connections a millisecond or more. 'baseline' stops at
 * Sparkplug: no optimising compiles, so no such tails (p99 0.4-0.5 ms against
 * 1.5-3 ms in the peer benchmark's first second), at a 20-30 % higher median
 * and 30-40 % lower rates (docs/benchmarks.md).
 */
import { setFlagsFromString } from 'node:v8';

export const JIT_MODES = ['full', 'baseline'] as const;
export type JitMode = (typeof JIT_MODES)[number];

/** Applies `mode` to this process. V8 reads the tier limit at every tier-up
 * decision, so it holds for every function not optimised yet: call it before
 * the hot code runs. */
export function applyJitMode(mode: JitMode): void {
  if (mode === 'baseline') setFlagsFromString('--max-opt=1');
}
