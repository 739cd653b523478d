import { describe, expect, it } from 'vitest';
import { formatFailure, simulate } from './simulator.js';

/**
 * The simulator in CI: a fixed set of seeds, each drawing its own cluster shape (3, 5 or 7
 * nodes, PreVote and CheckQuorum on or off, window and message sizes) and fault profile
 * (loss, duplication, delay, crashes, partitions). `npm run sim -- --seeds 100000` runs more.
 */
const SEEDS = Number(process.env['SIM_SEEDS'] ?? 2000);
const CHUNK = 250;

describe('simulator: Figure 3 safety under randomized faults, then liveness after healing', () => {
  for (let start = 1; start <= SEEDS; start += CHUNK) {
    const end = Math.min(SEEDS, start + CHUNK - 1);
    it(`seeds ${start}..${end}`, () => {
      let committed = 0;
      for (let seed = start; seed <= end; seed++) {
        const r = simulate({ seed });
        if (r.failure) expect.fail(formatFailure(r));
        committed += r.stats.committed;
      }
      // The runs did real work: entries were committed under faults.
      expect(committed).toBeGreaterThan((end - start + 1) * 10);
    });
  }
});
