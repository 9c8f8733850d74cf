// Cost of one insert into a bounded cache at its bound (helper/common/bounded-map.ts),
// against evicting with a fresh `map.keys().next()` per insert (what setNewest did
// before, and the usual way to write it), in the same run. Keys are tuple-key-like
// strings, as in the helper's caches; every third insert also re-sets a recent key.
//
//   node dist/bench/bounded-map.js
import { setNewest } from '../helper/common/bounded-map.js';

type Setter = (m: Map<string, number>, k: string, v: number, max: number) => void;

const freshIterator: Setter = (m, k, v, max) => {
  m.delete(k);
  m.set(k, v);
  while (m.size > max) m.delete(m.keys().next().value!);
};

const N = 300_000;
const keys: string[] = [];
for (let i = 0; i < N + 70_000; i++) keys.push(`198.18.77.1|${i % 60_000}|198.18.77.2|9400|6|${i}`);

function nsPerInsert(set: Setter, max: number): number {
  const m = new Map<string, number>();
  for (let i = 0; i < max; i++) set(m, keys[i]!, i, max);
  const t = process.hrtime.bigint();
  for (let i = max; i < max + N; i++) {
    set(m, keys[i]!, i, max);
    if (i % 3 === 0) set(m, keys[i - 5]!, i, max);
  }
  return Number(process.hrtime.bigint() - t) / N;
}

console.log('bound    fresh keys().next() ns/insert    setNewest ns/insert    ratio');
for (const max of [1_024, 16_384, 65_536]) {
  nsPerInsert(setNewest, 1_024); // warm both paths alike
  nsPerInsert(freshIterator, 1_024);
  const anchor = nsPerInsert(freshIterator, max);
  const ours = nsPerInsert(setNewest, max);
  console.log(
    `${String(max).padStart(6)}    ${anchor.toFixed(0).padStart(28)}    ${ours.toFixed(0).padStart(19)}    ${(anchor / ours).toFixed(1).padStart(5)}x`,
  );
}
