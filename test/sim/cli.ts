/**
 * `npm run sim -- [--seeds N] [--start S] [--seed S] [--nodes N] [--ticks T] [--trace]`
 *
 * Runs the deterministic simulator over many seeds (or replays one with --seed, optionally
 * with a full event trace). Exits non-zero on the first failure, printing how to replay it.
 */
import { parseArgs } from 'node:util';
import { HOSTILE, formatFailure, formatSeed, simulate } from './simulator.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1000' },
    start: { type: 'string', default: '1' },
    seed: { type: 'string' },
    nodes: { type: 'string' },
    ticks: { type: 'string' },
    trace: { type: 'boolean', default: false },
    bug: { type: 'string' },
    hostile: { type: 'boolean', default: false },
  },
});

function num(s: string | undefined, name: string): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} must be a non-negative number (got ${s})`);
    process.exit(2);
  }
  return n;
}

const nodes = num(values.nodes, 'nodes');
const ticks = num(values.ticks, 'ticks');
const seeds: number[] = [];
if (values.seed !== undefined) seeds.push(num(values.seed, 'seed')! >>> 0);
else {
  const start = num(values.start, 'start')!;
  const count = num(values.seeds, 'seeds')!;
  for (let i = 0; i < count; i++) seeds.push((start + i) >>> 0);
}

const t0 = Date.now();
let failed = 0;
let steps = 0;
let committed = 0;
let snapshots = 0;
let installs = 0;
let longCrashes = 0;
let longCrashInstalls = 0;
for (const seed of seeds) {
  const r = simulate({
    seed,
    trace: values.trace,
    ...(values.hostile ? { profile: HOSTILE } : {}),
    ...(values.bug === 'double-vote' ? { bugs: { doubleVote: true } } : {}),
    ...(values.bug === 'commit-previous-term' ? { bugs: { commitPreviousTerm: true } } : {}),
    ...(nodes !== undefined ? { nodes } : {}),
    ...(ticks !== undefined ? { ticks } : {}),
  });
  steps += r.stats.steps;
  committed += r.stats.committed;
  snapshots += r.stats.snapshots;
  installs += r.stats.installs;
  if (r.longCrashed) {
    longCrashes++;
    if (r.longCrashed.installs > 0) longCrashInstalls++;
  }
  if (r.failure) {
    failed++;
    console.error(formatFailure(r));
    break;
  }
  if (values.trace || seeds.length === 1) {
    console.log(`seed ${formatSeed(seed)} ok: ${r.shape}; ${JSON.stringify(r.stats)}`);
  }
}
const secs = (Date.now() - t0) / 1000;
console.log(
  `${seeds.length === 1 ? 1 : seeds.length} seed(s), ${failed} failed, ${steps} steps, ${committed} entries committed, ` +
    `${snapshots} snapshots taken, ${installs} installed (${longCrashInstalls} of ${longCrashes} long-crashed nodes rejoined through one), ${secs.toFixed(1)} s`,
);
process.exit(failed > 0 ? 1 : 0);
