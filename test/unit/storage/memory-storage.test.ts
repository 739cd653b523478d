import { describe, expect, it } from 'vitest';
import type { Entry } from '../../../src/core/messages.js';
import { isRaftError } from '../../../src/errors.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';

const conf = { voters: ['n1', 'n2'], outgoing: [], learners: [], learnersNext: [] };
const ent = (index: number, term: number): Entry => ({
  index,
  term,
  type: 'normal',
  data: new Uint8Array([index]),
});

describe('MemoryStorage: synchronous methods for the simulator', () => {
  it('starts from a membership, or from a given state', () => {
    expect(new MemoryStorage({ conf }).initialState().confState).toEqual(conf);
    const s = new MemoryStorage({
      hardState: { term: 2, vote: 'n1', commit: 1 },
      entries: [ent(1, 1), ent(2, 2)],
    });
    expect(s.lastIndex()).toBe(2);
    expect(s.hardStateNow()).toEqual({ term: 2, vote: 'n1', commit: 1 });
  });

  it('append / setHardState / applySnapshot / compact apply at once', () => {
    const s = new MemoryStorage({ conf });
    s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    s.append([ent(3, 2)]);
    expect(s.allEntries().map((e) => e.term)).toEqual([1, 1, 2]);
    s.setHardState({ term: 2, vote: 'n2', commit: 2 });
    s.compact(2);
    expect(s.firstIndex()).toBe(3);
    s.applySnapshot({ meta: { index: 5, term: 3, conf }, data: new Uint8Array() });
    expect([s.firstIndex(), s.lastIndex(), s.term(5)]).toEqual([6, 5, 3]);
    // A stale snapshot is ignored.
    s.applySnapshot({ meta: { index: 4, term: 3, conf }, data: new Uint8Array() });
    expect(s.snapshot().meta.index).toBe(5);
  });

  it('dump() and from() carry the durable state across a simulated crash', () => {
    const s = new MemoryStorage({ conf });
    s.append([ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 2)]);
    s.createSnapshot({ meta: { index: 3, term: 1, conf }, data: new Uint8Array([9]) }, 2);
    s.setHardState({ term: 2, vote: undefined, commit: 3 });
    const r = MemoryStorage.from(s.dump());
    expect([r.firstIndex(), r.lastIndex(), r.term(2), r.snapshot().meta.index]).toEqual([3, 4, 1, 3]);
    expect(r.initialState()).toEqual(s.initialState());
  });

  it('failWrites() makes every later write fail, sync methods included', async () => {
    const s = new MemoryStorage({ conf });
    s.failWrites();
    let thrown: unknown;
    try {
      s.append([ent(1, 1)]);
    } catch (x) {
      thrown = x;
    }
    expect(isRaftError(thrown, 'STORAGE_FAILED')).toBe(true);
    const e = await s.save({ entries: [ent(1, 1)] }).catch((x: unknown) => x);
    expect(isRaftError(e, 'STORAGE_FAILED')).toBe(true);
  });
});
