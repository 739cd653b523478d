import { afterEach, describe, expect, it } from 'vitest';
import type { ConfState, Entry, HardState, Index, Snapshot, Term } from '../core/messages.js';
import { isRaftError, type RaftErrorCode } from '../errors.js';
import type { Storage } from '../storage/storage.js';

/** Optional powers of an implementation under test. */
export interface StorageSuiteOptions {
  /**
   * Close `s` and open the same durable state again. Given this, the suite also checks that
   * everything acknowledged survives a restart.
   */
  readonly reopen?: (s: Storage) => Promise<Storage>;
  /** Make every later write of `s` fail as a disk error would. Given this, fail-stop is checked. */
  readonly failWrites?: (s: Storage) => void;
  /** Operations of the randomized model check (default 300). */
  readonly randomOps?: number;
}

const CONF: ConfState = { voters: ['n1', 'n2', 'n3'], outgoing: [], learners: ['n4'], learnersNext: [] };

function ent(index: Index, term: Term, size = 8, type: Entry['type'] = 'normal'): Entry {
  const data = new Uint8Array(size);
  for (let k = 0; k < size; k++) data[k] = (index * 31 + term * 7 + k) & 0xff;
  return { index, term, type, data };
}

function ents(from: Index, terms: readonly Term[]): Entry[] {
  return terms.map((t, k) => ent(from + k, t));
}

/** Comparable form of entries (data as hex, whatever its Uint8Array subclass). */
function norm(es: readonly Entry[]): { index: Index; term: Term; type: string; data: string }[] {
  return es.map((e) => ({
    index: e.index,
    term: e.term,
    type: e.type,
    data: Buffer.from(e.data).toString('hex'),
  }));
}

function snap(index: Index, term: Term, conf: ConfState = CONF, bytes = 16): Snapshot {
  const data = new Uint8Array(bytes);
  for (let k = 0; k < bytes; k++) data[k] = (index + k) & 0xff;
  return { meta: { index, term, conf }, data };
}

function code(fn: () => unknown): RaftErrorCode | 'none' | 'other' {
  try {
    fn();
    return 'none';
  } catch (e) {
    return isRaftError(e) ? e.code : 'other';
  }
}

async function rejection(p: Promise<unknown>): Promise<RaftErrorCode | 'none' | 'other'> {
  try {
    await p;
    return 'none';
  } catch (e) {
    return isRaftError(e) ? e.code : 'other';
  }
}

/** Everything a reader can see, in comparable form. */
function observe(s: Storage): unknown {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const terms: Term[] = [];
  for (let i = first - 1; i <= last; i++) terms.push(s.term(i));
  const sn = s.snapshot();
  return {
    first,
    last,
    terms,
    entries: norm(s.entries(first, last + 1, Infinity)),
    initial: s.initialState(),
    snapshot: { meta: sn.meta, data: Buffer.from(sn.data).toString('hex') },
  };
}

/** A small PRNG (mulberry32), so a failing random run can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The conformance suite of the {@link Storage} contract (STYLE.md convention 8), run against
 * every implementation. `factory` returns a fresh, empty storage each time it is called.
 *
 * @example
 * runStorageSuite('memory', () => new MemoryStorage(), { reopen: async (s) => MemoryStorage.from((s as MemoryStorage).dump()) });
 * runStorageSuite('file', () => FileStorage.open(freshDir()), { reopen: reopenFile });
 */
export function runStorageSuite(
  name: string,
  factory: () => Storage | Promise<Storage>,
  options: StorageSuiteOptions = {},
): void {
  describe(`Storage contract: ${name}`, () => {
    const open: Storage[] = [];
    const fresh = async (): Promise<Storage> => {
      const s = await factory();
      open.push(s);
      return s;
    };
    const reopen = async (s: Storage): Promise<Storage> => {
      const r = await options.reopen!(s);
      open.push(r);
      return r;
    };
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
    });

    describe('reads', () => {
      it('a new storage is empty: first index 1, last index 0, term(0) = 0', async () => {
        const s = await fresh();
        expect(s.firstIndex()).toBe(1);
        expect(s.lastIndex()).toBe(0);
        expect(s.term(0)).toBe(0);
        expect(s.entries(1, 1, Infinity)).toEqual([]);
        expect(s.initialState().hardState).toEqual({ term: 0, vote: undefined, commit: 0 });
        expect(s.snapshot().meta.index).toBe(0);
      });

      it('reads back appended entries, terms and types', async () => {
        const s = await fresh();
        const es = [...ents(1, [1, 1, 2]), ent(4, 2, 0, 'conf'), ent(5, 3, 300)];
        await s.save({ entries: es });
        expect(s.lastIndex()).toBe(5);
        expect([1, 2, 3, 4, 5].map((i) => s.term(i))).toEqual([1, 1, 2, 2, 3]);
        expect(norm(s.entries(1, 6, Infinity))).toEqual(norm(es));
        expect(norm(s.entries(2, 4, Infinity))).toEqual(norm(es.slice(1, 3)));
      });

      it('entries() stops at maxBytes but always returns at least one entry', async () => {
        const s = await fresh();
        await s.save({ entries: [1, 2, 3, 4].map((i) => ent(i, 1, 100)) }); // 124 bytes each
        expect(s.entries(1, 5, 0)).toHaveLength(1);
        expect(s.entries(1, 5, 247)).toHaveLength(1);
        expect(s.entries(1, 5, 248)).toHaveLength(2);
        expect(s.entries(2, 5, 1000)).toHaveLength(3);
      });

      it('reads past the last index throw UNAVAILABLE', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1]) });
        expect(code(() => s.term(3))).toBe('UNAVAILABLE');
        expect(code(() => s.entries(2, 4, Infinity))).toBe('UNAVAILABLE');
      });

      it('reads below the first index throw COMPACTED; term(first - 1) still answers', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 2, 2, 3]) });
        await s.saveSnapshot(snap(3, 2));
        expect(s.firstIndex()).toBe(4);
        expect(s.term(3)).toBe(2);
        expect(code(() => s.term(2))).toBe('COMPACTED');
        expect(code(() => s.entries(3, 5, Infinity))).toBe('COMPACTED');
        expect(norm(s.entries(4, 6, Infinity))).toEqual(norm(ents(4, [2, 3])));
      });
    });

    describe('writes', () => {
      it('persists the hard state', async () => {
        const s = await fresh();
        await s.save({ hardState: { term: 3, vote: 'n2', commit: 0 }, entries: [] });
        expect(s.initialState().hardState).toEqual({ term: 3, vote: 'n2', commit: 0 });
        await s.save({ hardState: { term: 3, vote: 'n2', commit: 2 }, entries: ents(1, [3, 3]) });
        expect(s.initialState().hardState).toEqual({ term: 3, vote: 'n2', commit: 2 });
        await s.save({ hardState: { term: 4, vote: undefined, commit: 2 }, entries: [] });
        expect(s.initialState().hardState).toEqual({ term: 4, vote: undefined, commit: 2 });
      });

      it('§5.3 an entry at or below the last index truncates the conflicting suffix first', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 1, 1, 1]) });
        await s.save({ entries: ents(3, [2, 2]) });
        expect(s.lastIndex()).toBe(4);
        expect(norm(s.entries(1, 5, Infinity))).toEqual(norm([...ents(1, [1, 1]), ...ents(3, [2, 2])]));
        await s.save({ entries: ents(1, [3]) });
        expect(s.lastIndex()).toBe(1);
        expect(s.term(1)).toBe(3);
        expect(code(() => s.term(2))).toBe('UNAVAILABLE');
      });

      it('refuses an append that leaves a gap or goes back in term, changing nothing', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [2, 2]) });
        expect(await rejection(s.save({ entries: ents(4, [2]) }))).toBe('INVARIANT');
        expect(await rejection(s.save({ entries: ents(3, [1]) }))).toBe('INVARIANT');
        expect(await rejection(s.save({ entries: [ent(3, 2), ent(5, 2)] }))).toBe('INVARIANT');
        expect(s.lastIndex()).toBe(2);
        // A refused call is the caller's bug, not the disk's: the storage still works.
        await s.save({ entries: ents(3, [2]) });
        expect(s.lastIndex()).toBe(3);
      });

      it('skips entries the snapshot already covers', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 1, 1]) });
        await s.saveSnapshot(snap(3, 1));
        await s.save({ entries: ents(2, [1, 1, 1, 1]) });
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(5);
        await s.save({ entries: ents(1, [1]) });
        expect(s.lastIndex()).toBe(5);
      });

      it('saves issued without waiting apply in order (and may share one sync)', async () => {
        const s = await fresh();
        await Promise.all([
          s.save({ entries: ents(1, [1, 1, 1]) }),
          s.save({ entries: ents(4, [1]), hardState: { term: 0, vote: undefined, commit: 2 } }),
          s.save({ entries: ents(3, [2, 2]) }),
          s.save({ hardState: { term: 2, vote: 'n1', commit: 3 }, entries: [] }),
          s.save({ entries: ents(5, [2]) }),
        ]);
        expect(norm(s.entries(1, 6, Infinity))).toEqual(norm([...ents(1, [1, 1]), ...ents(3, [2, 2, 2])]));
        expect(s.initialState().hardState).toEqual({ term: 2, vote: 'n1', commit: 3 });
      });

      it('an empty save resolves and changes nothing', async () => {
        const s = await fresh();
        await s.save({ entries: [] });
        expect(s.lastIndex()).toBe(0);
      });
    });

    describe('§7 snapshots', () => {
      it('saveSnapshot records the snapshot and compacts the log up to it', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 2, 2, 2]), hardState: { term: 2, vote: 'n1', commit: 4 } });
        const sn = snap(3, 2);
        await s.saveSnapshot(sn);
        expect(s.snapshot().meta).toEqual(sn.meta);
        expect(Buffer.from(s.snapshot().data).equals(Buffer.from(sn.data))).toBe(true);
        expect(s.initialState().confState).toEqual(CONF);
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(5);
        expect(s.initialState().hardState.commit).toBe(4);
      });

      it('saveSnapshot with compactTo keeps entries below the snapshot for slow followers', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 2, 2, 2]) });
        await s.saveSnapshot(snap(4, 2), 2);
        expect(s.snapshot().meta.index).toBe(4);
        expect(s.firstIndex()).toBe(3);
        expect(s.term(2)).toBe(1);
        expect(norm(s.entries(3, 6, Infinity))).toEqual(norm(ents(3, [2, 2, 2])));
      });

      it('installing a snapshot the log agrees with keeps the entries after it', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 2, 2, 3]) });
        await s.save({
          snapshot: snap(3, 2),
          entries: [],
          hardState: { term: 3, vote: undefined, commit: 3 },
        });
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(5);
        expect(s.term(3)).toBe(2);
        expect(s.snapshot().meta.index).toBe(3);
      });

      it('installing a snapshot that conflicts with the log drops the whole log', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 1, 1, 1]) });
        await s.save({ snapshot: snap(3, 2), entries: ents(4, [2]) });
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(4);
        expect(s.term(3)).toBe(2);
        expect(s.term(4)).toBe(2);
      });

      it('installing a snapshot beyond the log leaves an empty log after it', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1]) });
        await s.save({ snapshot: snap(10, 3), entries: [] });
        expect(s.firstIndex()).toBe(11);
        expect(s.lastIndex()).toBe(10);
        expect(s.term(10)).toBe(3);
        expect(s.entries(11, 11, Infinity)).toEqual([]);
        await s.save({ entries: ents(11, [3, 4]) });
        expect(s.lastIndex()).toBe(12);
      });

      it('a snapshot no newer than the current one is ignored', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 1, 1]) });
        await s.saveSnapshot(snap(3, 1));
        await s.save({ snapshot: snap(2, 1), entries: [] });
        expect(s.snapshot().meta.index).toBe(3);
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(4);
      });

      it('saveSnapshot takes the bytes as a stream; readSnapshot gives them back in chunks', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 2, 2, 2]) });
        const whole = snap(4, 2, CONF, 10_000);
        async function* pieces(): AsyncGenerator<Uint8Array> {
          for (let o = 0; o < whole.data.byteLength; o += 3000) yield whole.data.slice(o, o + 3000);
        }
        // Appends keep going while the snapshot's bytes are written.
        const saving = s.saveSnapshot({ meta: whole.meta, data: pieces() }, 3);
        await s.save({ entries: ents(6, [2]) });
        await saving;
        expect(s.snapshot().meta).toEqual(whole.meta);
        expect([s.firstIndex(), s.lastIndex()]).toEqual([4, 6]);
        const r = s.readSnapshot(4096);
        expect([r.meta, r.size]).toEqual([whole.meta, 10_000]);
        const got: number[] = [];
        for await (const c of r.chunks) got.push(c.byteLength);
        expect(got).toEqual([4096, 4096, 1808]);
        const all: Uint8Array[] = [];
        for await (const c of s.readSnapshot().chunks) all.push(c);
        expect(Buffer.concat(all).equals(Buffer.from(whole.data))).toBe(true);
      });

      it('an error from the streamed bytes rejects saveSnapshot and changes nothing', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 1]) });
        async function* broken(): AsyncGenerator<Uint8Array> {
          yield new Uint8Array(10);
          throw new Error('state machine failed');
        }
        await expect(s.saveSnapshot({ meta: snap(2, 1).meta, data: broken() })).rejects.toThrow(
          'state machine failed',
        );
        expect(s.snapshot().meta.index).toBe(0);
        expect(s.firstIndex()).toBe(1);
        await s.save({ entries: ents(4, [1]) });
        expect(s.lastIndex()).toBe(4);
      });

      it('received bytes install with save({ snapshot, received }); the log follows §7', async () => {
        const s = await fresh();
        await s.save({
          entries: ents(1, [1, 1, 1, 1, 1]),
          hardState: { term: 1, vote: undefined, commit: 2 },
        });
        const sn = snap(4, 2, CONF, 5000);
        const rx = s.receiveSnapshot(sn.meta);
        for (let o = 0; o < 5000; o += 1024) await rx.write(sn.data.slice(o, o + 1024));
        const received = await rx.finish();
        expect([received.meta, received.size]).toEqual([sn.meta, 5000]);
        // Nothing changed yet.
        expect(s.snapshot().meta.index).toBe(0);
        await s.save({
          snapshot: { meta: sn.meta, data: new Uint8Array(0) },
          received,
          entries: ents(5, [2]),
          hardState: { term: 2, vote: undefined, commit: 4 },
        });
        expect(s.snapshot().meta).toEqual(sn.meta);
        expect([s.firstIndex(), s.lastIndex(), s.term(4), s.term(5)]).toEqual([5, 5, 2, 2]);
        const all: Uint8Array[] = [];
        for await (const c of s.readSnapshot().chunks) all.push(c);
        expect(Buffer.concat(all).equals(Buffer.from(sn.data))).toBe(true);
        expect(Buffer.from(s.snapshot().data).equals(Buffer.from(sn.data))).toBe(true);
      });

      it('an aborted or discarded receive leaves everything as it was', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 1]) });
        const a = s.receiveSnapshot(snap(5, 2).meta);
        await a.write(new Uint8Array(100));
        await a.abort();
        const b = s.receiveSnapshot(snap(6, 2).meta);
        await b.write(new Uint8Array(100));
        await (await b.finish()).discard();
        expect(s.snapshot().meta.index).toBe(0);
        expect([s.firstIndex(), s.lastIndex()]).toEqual([1, 3]);
      });

      it('a reader opened before a newer snapshot replaces the old one still reads the old bytes', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 1, 1, 1]) });
        const a = snap(2, 1, CONF, 3000);
        await s.saveSnapshot(a);
        const r = s.readSnapshot(1000);
        await s.saveSnapshot(snap(4, 1, CONF, 10));
        const got: Uint8Array[] = [];
        for await (const c of r.chunks) got.push(c);
        expect(r.meta.index).toBe(2);
        expect(Buffer.concat(got).equals(Buffer.from(a.data))).toBe(true);
        expect(s.readSnapshot().meta.index).toBe(4);
      });

      it('one update applies snapshot, then entries, then hard state', async () => {
        const s = await fresh();
        await s.save({
          snapshot: snap(5, 2),
          entries: ents(6, [2, 3]),
          hardState: { term: 3, vote: 'n3', commit: 6 },
        });
        expect(s.firstIndex()).toBe(6);
        expect(s.lastIndex()).toBe(7);
        expect(s.initialState()).toEqual({ hardState: { term: 3, vote: 'n3', commit: 6 }, confState: CONF });
      });
    });

    describe('lifecycle', () => {
      it('close() is idempotent; writes after it reject with STOPPED', async () => {
        const s = await fresh();
        await s.close();
        await s.close();
        expect(await rejection(s.save({ entries: ents(1, [1]) }))).toBe('STOPPED');
      });
    });

    if (options.failWrites !== undefined) {
      const failWrites = options.failWrites;
      it('fail-stop: after a write error every write rejects with STORAGE_FAILED; reads go on', async () => {
        const s = await fresh();
        await s.save({ entries: ents(1, [1, 1]), hardState: { term: 1, vote: 'n1', commit: 1 } });
        failWrites(s);
        expect(await rejection(s.save({ entries: ents(3, [1]) }))).toBe('STORAGE_FAILED');
        expect(await rejection(s.save({ entries: ents(3, [1]) }))).toBe('STORAGE_FAILED');
        expect(await rejection(s.save({ hardState: { term: 2, vote: 'n2', commit: 1 }, entries: [] }))).toBe(
          'STORAGE_FAILED',
        );
        expect(await rejection(s.saveSnapshot(snap(1, 1)))).toBe('STORAGE_FAILED');
        expect(s.lastIndex()).toBe(2);
        expect(s.initialState().hardState).toEqual({ term: 1, vote: 'n1', commit: 1 });
        expect(norm(s.entries(1, 3, Infinity))).toEqual(norm(ents(1, [1, 1])));
      });
    }

    if (options.reopen !== undefined) {
      it('everything acknowledged survives a reopen', async () => {
        let s = await fresh();
        await s.save({ entries: ents(1, [1, 1, 1, 2, 2]), hardState: { term: 2, vote: 'n1', commit: 2 } });
        await s.save({ entries: ents(4, [3, 3, 3]), hardState: { term: 3, vote: 'n2', commit: 3 } });
        await s.saveSnapshot(snap(3, 1), 2);
        let before = observe(s);
        s = await reopen(s);
        expect(observe(s)).toEqual(before);
        await s.save({
          snapshot: snap(8, 4),
          entries: ents(9, [4]),
          hardState: { term: 4, vote: undefined, commit: 8 },
        });
        before = observe(s);
        s = await reopen(s);
        expect(observe(s)).toEqual(before);
        await s.save({ entries: ents(10, [4, 4]) });
        await s.save({ entries: ents(10, [5]) });
        before = observe(s);
        s = await reopen(s);
        expect(observe(s)).toEqual(before);
      });
    }

    it('random operations agree with a reference model', async () => {
      const seed = Number(process.env.STORAGE_SUITE_SEED ?? Math.floor(Math.random() * 2 ** 31));
      const rand = rng(seed);
      const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
      // The model: the log after `base`, the hard state, the snapshot.
      let base = { index: 0, term: 0 };
      let log: Entry[] = [];
      let hs: HardState = { term: 0, vote: undefined, commit: 0 };
      let snapshotMeta = { index: 0, term: 0 };
      const last = (): Index => base.index + log.length;
      const termAt = (i: Index): Term => (i === base.index ? base.term : log[i - base.index - 1]!.term);
      let s = await fresh();
      const ops = options.randomOps ?? 300;
      try {
        for (let step = 0; step < ops; step++) {
          const r = rand();
          if (r < 0.55) {
            // Append, sometimes over a suffix (never below the compaction point).
            const from = rand() < 0.8 ? last() + 1 : int(base.index + 1, last() + 1);
            const n = int(1, 6);
            let t = Math.max(from - 1 >= base.index ? termAt(from - 1) : 0, hs.term);
            if (rand() < 0.2) t++;
            const es: Entry[] = [];
            for (let k = 0; k < n; k++) es.push(ent(from + k, t, int(0, 600)));
            const commit = Math.max(hs.commit, Math.min(from - 1, hs.commit + int(0, 3)));
            const newHs =
              rand() < 0.5 ? { term: t > hs.term ? t : hs.term, vote: hs.vote, commit } : undefined;
            await s.save({ entries: es, hardState: newHs });
            log = log.slice(0, from - base.index - 1).concat(es);
            if (newHs) hs = newHs;
          } else if (r < 0.65) {
            hs = { term: hs.term + 1, vote: rand() < 0.5 ? `n${int(1, 3)}` : undefined, commit: hs.commit };
            await s.save({ hardState: hs, entries: [] });
          } else if (r < 0.75 && last() > base.index) {
            const lo = Math.max(base.index, snapshotMeta.index) + 1;
            const at = lo <= last() ? int(lo, last()) : -1;
            if (at > snapshotMeta.index) {
              const to = rand() < 0.5 ? at : int(base.index, at);
              await s.saveSnapshot(snap(at, termAt(at), CONF, int(0, 2000)), to);
              snapshotMeta = { index: at, term: termAt(at) };
              if (to > base.index) {
                const tt = termAt(to);
                log = log.slice(to - base.index);
                base = { index: to, term: tt };
              }
            }
          } else if (r < 0.8) {
            // Install a snapshot from a leader: agreeing, conflicting or beyond the log.
            const at = Math.max(snapshotMeta.index + 1, int(base.index, last() + 5));
            const agrees = at <= last() && rand() < 0.5;
            const t = agrees ? termAt(at) : Math.max(hs.term, at <= last() ? termAt(at) + 1 : hs.term);
            const sn = snap(at, t, CONF, int(0, 100));
            await s.save({ snapshot: sn, entries: [] });
            const keep = at <= last() && termAt(at) === t;
            log = keep ? log.slice(at - base.index) : [];
            base = { index: at, term: t };
            snapshotMeta = { index: at, term: t };
          } else if (r < 0.9 && options.reopen !== undefined) {
            s = await reopen(s);
          } else {
            // Reads.
            if (last() > base.index) {
              const lo = int(base.index + 1, last());
              const hi = int(lo, last()) + 1;
              expect(norm(s.entries(lo, hi, Infinity))).toEqual(
                norm(log.slice(lo - base.index - 1, hi - base.index - 1)),
              );
            }
          }
          expect(s.firstIndex()).toBe(base.index + 1);
          expect(s.lastIndex()).toBe(last());
          expect(s.term(base.index)).toBe(base.term);
          expect(s.initialState().hardState).toEqual(hs);
          expect(s.snapshot().meta.index).toBe(snapshotMeta.index);
        }
        expect(norm(s.entries(base.index + 1, last() + 1, Infinity))).toEqual(norm(log));
      } catch (e) {
        throw new Error(`random storage run failed; replay with STORAGE_SUITE_SEED=${seed}: ${String(e)}`, {
          cause: e,
        });
      }
    });
  });
}
