/**
 * Figures for the linearizability checker (not a test): `npx tsx test/fault/checker/bench.ts`.
 *
 * Generated histories of a correct store (random-history.ts: 5% of operations time out, 3%
 * fail, a mix of 30% put / 40% get / 20% cas / 10% delete), checked end to end.
 */
import { checkLinearizable, formatResult } from './linearizable.js';
import { Rng, generateHistory, mutate } from './random-history.js';

interface Case {
  name: string;
  ops: number;
  keys: number;
  processes: number;
}

const cases: Case[] = [
  { name: '10k ops, 100 keys, 10 processes', ops: 10_000, keys: 100, processes: 10 },
  { name: '10k ops, 10 keys, 10 processes', ops: 10_000, keys: 10, processes: 10 },
  { name: '10k ops, 1 key, 10 processes', ops: 10_000, keys: 1, processes: 10 },
  { name: '100k ops, 1000 keys, 10 processes', ops: 100_000, keys: 1000, processes: 10 },
  { name: '100k ops, 100 keys, 50 processes', ops: 100_000, keys: 100, processes: 50 },
];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

for (const c of cases) {
  const { history } = generateHistory({ seed: 1, ...c });
  const times: number[] = [];
  let verdict: boolean | 'unknown' = true;
  for (let i = 0; i < 11; i++) {
    const r = checkLinearizable(history);
    times.push(r.ms);
    verdict = r.valid;
    if (r.valid !== true) console.log(formatResult(r));
  }
  const first = times[0]!;
  const warm = median(times.slice(1));
  console.log(
    `${c.name.padEnd(36)} ${String(verdict).padEnd(5)} first ${first.toFixed(0).padStart(5)} ms` +
      ` (${Math.round((c.ops / first) * 1000).toLocaleString('en')} ops/s),` +
      ` then ${warm.toFixed(0).padStart(5)} ms (${Math.round((c.ops / warm) * 1000).toLocaleString('en')} ops/s)`,
  );
}

// A violation: find it and shrink it to a witness.
const rng = new Rng(3);
const { history } = generateHistory({ seed: 3, ops: 10_000, keys: 100, processes: 10 });
for (let found = 0; found < 3;) {
  const m = mutate(history, rng);
  if (m === undefined) continue;
  const r = checkLinearizable(m.history);
  if (r.valid !== false) continue;
  found++;
  console.log(
    `violation in 10k ops (${m.description}): ${r.ms.toFixed(0)} ms including shrinking, witness of ${r.witness!.ops.length} ops`,
  );
}
