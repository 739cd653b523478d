import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NodeId } from '../../src/core/messages.js';
import { FileStorage } from '../../src/storage/file-storage.js';
import type { LogStorage } from '../../src/core/log-storage.js';
import { Simulator, formatFailure } from './simulator.js';

/**
 * The simulator's write pattern on the real file store: every batch a simulated node persists
 * (appends, conflict truncations, hard states, snapshots) is mirrored into a FileStorage in a
 * temp directory. After the run, each file store is closed, reopened (recovery) and must hold
 * exactly what the in-memory twin holds.
 */
const SEEDS = Number(process.env['SIM_FILE_SEEDS'] ?? 50);

function sameLog(a: LogStorage, b: LogStorage): string | undefined {
  const ha = a.initialState().hardState;
  const hb = b.initialState().hardState;
  if (ha.term !== hb.term || ha.vote !== hb.vote)
    return `hard state ${JSON.stringify(ha)} ≠ ${JSON.stringify(hb)}`;
  if (a.lastIndex() !== b.lastIndex()) return `last index ${a.lastIndex()} ≠ ${b.lastIndex()}`;
  const first = Math.max(a.firstIndex(), b.firstIndex());
  const last = a.lastIndex();
  if (last < first) return undefined;
  const ea = a.entries(first, last + 1, Number.MAX_SAFE_INTEGER);
  const eb = b.entries(first, last + 1, Number.MAX_SAFE_INTEGER);
  for (let i = 0; i < ea.length; i++) {
    const x = ea[i]!;
    const y = eb[i];
    if (
      !y ||
      x.index !== y.index ||
      x.term !== y.term ||
      x.type !== y.type ||
      Buffer.compare(x.data, y.data) !== 0
    ) {
      return `entry ${x.index}: ${x.term}/${x.type} ≠ ${y ? `${y.term}/${y.type}` : 'missing'}`;
    }
  }
  return undefined;
}

describe('simulator on the real file store', () => {
  it(`seeds 1..${SEEDS}: the recovered file store equals the in-memory twin`, async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsraft-simfs-'));
    let compared = 0;
    try {
      for (let seed = 1; seed <= SEEDS; seed++) {
        const mirrors = new Map<NodeId, FileStorage>();
        const failures: string[] = [];
        const sim = new Simulator({
          seed,
          ticks: 120,
          livenessTicks: 200,
          onPersist: (id, u) => {
            mirrors
              .get(id)!
              .save(u)
              .catch((e: Error) => failures.push(`${id}: ${e.message}`));
          },
        });
        // Start each mirror from what the node's storage holds before the run (the bootstrap).
        for (const id of sim.ids) {
          const f = await FileStorage.open(path.join(root, `s${seed}`, id), {
            preallocate: false,
            segmentSize: 1 << 20,
          });
          const d = sim.node(id).storage.dump();
          if (d.entries.length > 0 || d.hardState.term > 0)
            await f.save({ hardState: d.hardState, entries: d.entries });
          mirrors.set(id, f);
        }
        const r = sim.run();
        if (r.failure) expect.fail(formatFailure(r));
        for (const [id, f] of mirrors) {
          await f.close();
          const reopened = await FileStorage.open(path.join(root, `s${seed}`, id), {
            preallocate: false,
            segmentSize: 1 << 20,
          });
          try {
            const diff = sameLog(sim.node(id).storage, reopened);
            expect(diff, `seed ${seed} ${id}`).toBeUndefined();
            compared += reopened.lastIndex();
          } finally {
            await reopened.close();
          }
        }
        expect(failures).toEqual([]);
      }
      // The runs wrote real logs: thousands of entries recovered and compared.
      expect(compared).toBeGreaterThan(SEEDS * 20);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
