import { describe, expect, it } from 'vitest';
import { linearizableByBruteForce } from './brute-force.js';
import type { Operation } from './history.js';
import { checkLinearizable, formatResult } from './linearizable.js';
import { appendFinalReads, checkLostWrites } from './lost-writes.js';
import { EMPTY, compileKey, compileOps, type KeyModel, type ModelOp } from './model.js';
import { Rng, generateHistory, mutate, type GenOptions } from './random-history.js';
import { search } from './search.js';
import { candidateFails } from './witness.js';

/**
 * Randomized: histories of a simulated linearizable store must always pass; one changed
 * observation should usually fail; the search must agree with brute force on small ones.
 *
 * Every case prints its seed. Replay one with `CHECKER_SEED=<seed> npx vitest run
 * test/fault/checker/random.test.ts`; run more with `CHECKER_SEEDS=<count>`.
 */
const one = process.env.CHECKER_SEED !== undefined ? Number(process.env.CHECKER_SEED) : undefined;
const count = Number(process.env.CHECKER_SEEDS ?? 150);
const seeds = one !== undefined ? [one] : Array.from({ length: count }, (_, i) => i + 1);
const replay = (seed: number): string =>
  `seed ${seed}: replay with CHECKER_SEED=${seed} npx vitest run test/fault/checker/random.test.ts`;

/** The shape of a run, drawn from its seed. */
function shape(seed: number): GenOptions {
  const r = new Rng(seed ^ 0x5bd1e995);
  return {
    seed,
    ops: 50 + r.int(350),
    processes: 2 + r.int(9),
    keys: 1 + r.int(4),
    infoRate: r.pick([0, 0.02, 0.05, 0.15]),
    failRate: r.pick([0, 0.03]),
    dropModIndexRate: r.pick([0, 0.3]),
    mix: r.pick([
      [3, 4, 2, 1],
      [1, 3, 4, 1],
      [2, 2, 1, 3],
    ] as const),
  };
}

describe('randomized histories', () => {
  it('a linearizable store always passes (and loses no write)', () => {
    for (const seed of seeds) {
      const g = generateHistory(shape(seed));
      const r = checkLinearizable(appendFinalReads(g.history, g.final));
      expect(r.valid, `${replay(seed)}\n${formatResult(r)}`).toBe(true);
      expect(checkLostWrites(g.history, g.final), replay(seed)).toEqual([]);
    }
  });

  it('one changed observation usually fails, with a small witness', () => {
    let mutated = 0;
    let caught = 0;
    const sizes: number[] = [];
    for (const seed of seeds) {
      const g = generateHistory(shape(seed));
      const m = mutate(appendFinalReads(g.history, g.final), new Rng(seed));
      if (m === undefined) continue;
      mutated++;
      const r = checkLinearizable(m.history, { shrinkTimeMs: 300 });
      if (r.valid !== false) continue;
      caught++;
      expect(r.witness, replay(seed)).toBeDefined();
      sizes.push(r.witness!.ops.length);
    }
    sizes.sort((a, b) => a - b);
    console.log(
      `mutations caught: ${caught}/${mutated}; witness size median ${sizes[sizes.length >> 1]}, max ${sizes.at(-1)}`,
    );
    if (one === undefined) {
      expect(caught / mutated).toBeGreaterThan(0.6);
      expect(sizes[sizes.length >> 1]).toBeLessThanOrEqual(4);
    }
  });
});

describe('the search agrees with brute force on small histories', () => {
  function compile(history: readonly Operation[]): { ops: ModelOp[]; km: KeyModel } {
    const values: string[] = [];
    const ids = new Map<string, number>();
    const intern = (v: string): number => {
      let id = ids.get(v);
      if (id === undefined) ids.set(v, (id = values.push(v) - 1));
      return id;
    };
    const known = new Set<number>();
    for (const o of history)
      if (o.outcome !== 'info' && o.result?.index !== undefined) known.add(o.result.index);
    return { ops: compileOps(history, intern), km: { key: 'k0', values, known, initial: EMPTY } };
  }

  function small(seed: number): Operation[] {
    const r = new Rng(seed * 7919);
    const g = generateHistory({
      seed,
      ops: 3 + r.int(11),
      processes: 2 + r.int(5),
      keys: 1,
      infoRate: r.pick([0, 0.1, 0.3, 0.5]),
      dropModIndexRate: r.pick([0, 0.5, 1]),
      mix: r.pick([
        [3, 4, 2, 1],
        [1, 2, 4, 1],
        [2, 2, 1, 3],
      ] as const),
    });
    const m = r.chance(0.5) ? mutate(g.history, r) : undefined;
    return m?.history ?? g.history;
  }

  const cases = one !== undefined ? [one] : Array.from({ length: 1500 }, (_, i) => i + 1);

  it('on whole histories (checkLinearizable, with its pruning)', () => {
    let invalid = 0;
    for (const seed of cases) {
      const h = small(seed);
      const { ops, km } = compile(h);
      const expected = linearizableByBruteForce(ops, km);
      if (!expected) invalid++;
      expect(checkLinearizable(h).valid, replay(seed)).toBe(expected);
    }
    if (one === undefined) expect(invalid).toBeGreaterThan(cases.length / 10);
  });

  it('with acknowledged writes made optional (as witnesses are checked)', () => {
    for (const seed of cases) {
      const r = new Rng(seed);
      const { ops, km } = compile(small(seed));
      const relaxed = ops.map((o) =>
        o.write && o.required && r.chance(0.4) ? { ...o, required: false } : o,
      );
      const budget = { maxSteps: 1e7, deadline: performance.now() + 5_000, maxCacheBytes: 1e9 };
      expect(search(relaxed, km, budget).valid, replay(seed)).toBe(linearizableByBruteForce(relaxed, km));
    }
  });
});

describe('witnesses never invent a violation', () => {
  it('no part of a linearizable history fails as a witness candidate', () => {
    let tried = 0;
    for (const seed of one !== undefined ? [one] : Array.from({ length: 300 }, (_, i) => i + 1)) {
      const r = new Rng(seed);
      const g = generateHistory({ ...shape(seed), ops: 20 + r.int(60), keys: 1 });
      const known = new Set<number>();
      for (const o of g.history)
        if (o.outcome !== 'info' && o.result?.index !== undefined) known.add(o.result.index);
      const { km, ops } = compileKey('k0', g.history, known, undefined);
      const sorted = [...ops].sort((a, b) => a.invoke - b.invoke);
      const writes = sorted.filter((o) => o.write);
      const budget = { maxSteps: 1e6, deadline: performance.now() + 5_000, maxCacheBytes: 1e8 };
      for (let i = 0; i < 10; i++) {
        // A random window, thinned out at random.
        const lo = r.int(sorted.length);
        const window = sorted.slice(lo, lo + 1 + r.int(12)).filter(() => r.chance(0.7));
        if (window.length === 0) continue;
        tried++;
        expect(candidateFails(window, writes, km, budget), replay(seed)).toBe(false);
      }
    }
    expect(tried).toBeGreaterThan(100);
  });
});

describe('performance', () => {
  it('checks 10,000 operations over 100 keys from 10 processes quickly', () => {
    const g = generateHistory({ seed: 7, ops: 10_000, processes: 10, keys: 100 });
    const r = checkLinearizable(g.history);
    expect(r.valid, formatResult(r)).toBe(true);
    console.log(
      `10,000 ops, 100 keys, 10 processes: ${r.ms.toFixed(0)} ms (${((1e4 / r.ms) * 1e3).toFixed(0)} ops/s)`,
    );
    expect(r.ms).toBeLessThan(5_000);
  });
});
