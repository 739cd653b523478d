import { describe, expect, it } from 'vitest';
import { formatFailure, simulate, type SimResult } from './simulator.js';

/**
 * §7 in the simulator: log compaction at small thresholds under every fault the simulator
 * injects (loss, duplication, reordering, partitions, crashes, membership changes), a server
 * kept down for the whole chaos phase that can only rejoin through a snapshot, and a
 * deliberately wrong snapshot that the snapshot-consistency check must catch. (The 2,000-seed
 * safety run draws compaction profiles too; this pins them.)
 */
const SEEDS = Number(process.env['SIM_SNAPSHOT_SEEDS'] ?? 300);

describe('simulator: log compaction (§7)', () => {
  it(`compaction every 3-4 entries with small margins, all faults and membership changes: ${SEEDS} seeds`, () => {
    let snapshots = 0;
    let installs = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = simulate({
        seed: 0x5eed0000 + seed,
        ticks: 200,
        profile: {
          snapshotEvery: 3 + (seed % 2),
          snapshotMargin: seed % 3,
          membershipRate: 0.003,
          proposeRate: 0.1,
        },
      });
      if (r.failure) expect.fail(formatFailure(r));
      snapshots += r.stats.snapshots;
      installs += r.stats.installs;
    }
    expect(snapshots).toBeGreaterThan(SEEDS * 10);
    // Followers behind the compacted log did catch up through InstallSnapshot.
    expect(installs).toBeGreaterThan(SEEDS / 2);
  });

  it('a server crashed for the whole run rejoins through a snapshot, then commits with the rest', () => {
    const results: SimResult[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const r = simulate({
        seed: 0x10c0000 + seed,
        ticks: 150,
        profile: {
          longCrash: true,
          snapshotEvery: 10,
          snapshotMargin: 2,
          membershipRate: 0,
          spares: 0,
          // The others must commit enough for compaction to pass the crashed server by.
          crashRate: 0,
          partitionRate: 0,
          proposeRate: 0.2,
        },
      });
      if (r.failure) expect.fail(formatFailure(r));
      results.push(r);
    }
    // The liveness phase passed, so the server applied the probe; it got there by a snapshot.
    for (const r of results) expect(r.longCrashed?.installs, `seed ${r.seed}`).toBeGreaterThanOrEqual(1);
  });

  it('has teeth: snapshots that do not hold the state at their index are caught', () => {
    let caught: SimResult | undefined;
    for (let seed = 1; seed <= 50 && !caught; seed++) {
      const r = simulate({ seed, ticks: 150, staleSnapshots: true, profile: { snapshotEvery: 5 } });
      if (r.failure) caught = r;
    }
    expect(caught?.failure?.invariant).toBe('snapshot-consistency');
    const clean = simulate({ seed: caught!.seed, ticks: 150, profile: { snapshotEvery: 5 } });
    expect(clean.failure, clean.failure && formatFailure(clean)).toBeUndefined();
  });
});
