import { describe, expect, it } from 'vitest';
import { HOSTILE, formatFailure, simulate, type SimResult } from './simulator.js';

/**
 * The checks have teeth: switch on a deliberate bug through the core's test-only hook and
 * the simulator must catch it (and name the right property), while the same seeds pass
 * without the bug.
 */
function firstFailure(
  seeds: number,
  opts: Omit<Parameters<typeof simulate>[0], 'seed'>,
): SimResult | undefined {
  for (let seed = 1; seed <= seeds; seed++) {
    const r = simulate({ seed, ...opts });
    if (r.failure) return r;
  }
  return undefined;
}

describe('the simulator catches deliberate bugs', () => {
  it('granting two votes in one term breaks Election Safety', () => {
    const r = firstFailure(200, { bugs: { doubleVote: true } });
    expect(r?.failure?.invariant).toBe('election-safety');
    const clean = simulate({ seed: r!.seed });
    expect(clean.failure, clean.failure && formatFailure(clean)).toBeUndefined();
  });

  it('committing by counting replicas of a previous-term entry (Figure 8) loses a committed entry', () => {
    const opts = { nodes: 3, profile: HOSTILE, ticks: 300 } as const;
    const r = firstFailure(5000, { ...opts, bugs: { commitPreviousTerm: true } });
    expect(r, 'no seed caught the bug').toBeDefined();
    expect(['leader-completeness', 'state-machine-safety', 'log-matching']).toContain(r!.failure!.invariant);
    const clean = simulate({ seed: r!.seed, ...opts });
    expect(clean.failure, clean.failure && formatFailure(clean)).toBeUndefined();
  });
});
