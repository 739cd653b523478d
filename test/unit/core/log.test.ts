import { describe, expect, it } from 'vitest';
import { RaftLog, limitSize } from '../../../src/core/log.js';
import { Unstable } from '../../../src/core/log-unstable.js';
import { entrySize, type Snapshot } from '../../../src/core/messages.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import { codeOf, conf, entries, entry } from './helpers.js';

const BIG = Number.MAX_SAFE_INTEGER;

/** A log whose storage holds `stable` terms (from index 1) and whose unstable tail holds `unstable`. */
function logWith(stable: number[], unstable: number[] = [], maxApplying = BIG): RaftLog {
  const s = new MemoryStorage({ entries: entries(stable) });
  const l = new RaftLog(s, maxApplying);
  if (unstable.length > 0) l.append(entries(unstable, stable.length + 1));
  return l;
}

function snap(index: number, term: number): Snapshot {
  return { meta: { index, term, conf: conf(['n1']) }, data: new Uint8Array([1]) };
}

function terms(l: RaftLog): number[] {
  const out: number[] = [];
  for (let i = l.firstIndex(); i <= l.lastIndex(); i++) out.push(l.term(i)!);
  return out;
}

describe('RaftLog: terms and bounds', () => {
  it('reads terms across storage and the unstable tail; index 0 has term 0', () => {
    const l = logWith([1, 1], [2, 3]);
    expect([0, 1, 2, 3, 4].map((i) => l.term(i))).toEqual([0, 1, 1, 2, 3]);
    expect(l.term(5)).toBeUndefined();
    expect(l.firstIndex()).toBe(1);
    expect(l.lastIndex()).toBe(4);
    expect(l.lastTerm()).toBe(3);
    expect(l.matchTerm(3, 2)).toBe(true);
    expect(l.matchTerm(3, 1)).toBe(false);
    expect(l.matchTerm(9, 1)).toBe(false);
  });

  it('below a compaction point only the snapshot’s own term is known', () => {
    const s = new MemoryStorage({ entries: entries([1, 1, 2, 2]) });
    s.compact(2);
    const l = new RaftLog(s, BIG);
    expect(l.firstIndex()).toBe(3);
    expect(l.term(2)).toBe(1);
    expect(l.term(1)).toBeUndefined();
    expect(codeOf(() => l.slice(1, 3, BIG))).toBe('COMPACTED');
    expect(l.committed).toBe(2);
  });

  it('an empty log is at index 0, term 0', () => {
    const l = new RaftLog(new MemoryStorage(), BIG);
    expect(l.lastIndex()).toBe(0);
    expect(l.lastTerm()).toBe(0);
    expect(l.entriesFrom(1, BIG)).toEqual([]);
  });

  it('a storage failure other than compaction is not swallowed', () => {
    const s = new MemoryStorage({ entries: entries([1, 1]) });
    const l = new RaftLog(s, BIG);
    s.term = () => {
      throw new Error('disk on fire');
    };
    expect(() => l.term(1)).toThrow('disk on fire');
  });
});

describe('RaftLog: §5.4.1 up-to-date comparison', () => {
  const l = logWith([1, 2, 2]);
  const cases: [number, number, boolean][] = [
    [3, 2, true],
    [4, 2, true],
    [2, 2, false],
    [1, 3, true],
    [9, 1, false],
  ];
  for (const [index, term, want] of cases) {
    it(`a log ending at ${term}/${index} is ${want ? '' : 'not '}at least as up to date as 2/3`, () => {
      expect(l.isUpToDate(index, term)).toBe(want);
    });
  }
});

describe('RaftLog: conflicts', () => {
  it('findConflict returns the first entry whose term differs, or 0', () => {
    const l = logWith([1, 1, 2]);
    expect(l.findConflict([])).toBe(0);
    expect(l.findConflict(entries([1, 2], 2))).toBe(0);
    expect(l.findConflict(entries([1, 3], 2))).toBe(3);
    expect(l.findConflict(entries([2, 2, 2], 3))).toBe(4); // beyond the end
  });

  it('findConflictByTerm finds the last index at or below a given index whose term is not above a given term', () => {
    const l = logWith([1, 1, 1, 4, 4, 5, 5, 6, 6, 6]);
    expect(l.findConflictByTerm(10, 6)).toEqual({ index: 10, term: 6 });
    expect(l.findConflictByTerm(10, 5)).toEqual({ index: 7, term: 5 });
    expect(l.findConflictByTerm(10, 3)).toEqual({ index: 3, term: 1 });
    expect(l.findConflictByTerm(20, 4)).toEqual({ index: 5, term: 4 });
    expect(l.findConflictByTerm(10, 0)).toEqual({ index: 0, term: 0 });
  });

  it('findConflictByTerm stops at a compaction point', () => {
    const s = new MemoryStorage({ entries: entries([1, 1, 5, 5]) });
    s.compact(2);
    const l = new RaftLog(s, BIG);
    expect(l.findConflictByTerm(4, 2)).toEqual({ index: 2, term: 1 });
    expect(l.findConflictByTerm(4, 0)).toEqual({ index: 1, term: 0 });
  });

  it('maybeAppend: fails the consistency check, appends, truncates, or keeps a matching suffix', () => {
    const l = logWith([1, 1, 2, 2]);
    expect(l.maybeAppend(4, 1, 0, [])).toBeUndefined();
    expect(l.maybeAppend(9, 2, 0, [])).toBeUndefined();
    expect(l.maybeAppend(1, 1, 0, entries([1], 2))).toEqual({ lastNew: 2, appended: [] });
    expect(terms(l)).toEqual([1, 1, 2, 2]);
    const r = l.maybeAppend(2, 1, 3, entries([2, 3, 3], 3));
    expect(r?.lastNew).toBe(5);
    expect(r?.appended.map((e) => e.index)).toEqual([4, 5]);
    expect(terms(l)).toEqual([1, 1, 2, 3, 3]);
    expect(l.committed).toBe(3);
  });

  it('refuses to overwrite a committed entry (a broken invariant)', () => {
    const l = logWith([1, 1, 2]);
    l.commitTo(3);
    expect(codeOf(() => l.maybeAppend(1, 1, 0, entries([1, 3], 2)))).toBe('INVARIANT');
    expect(codeOf(() => l.append(entries([4], 2)))).toBe('INVARIANT');
  });
});

describe('RaftLog: commit and apply watermarks', () => {
  it('commitTo never moves back, and never past the last index', () => {
    const l = logWith([1, 1, 1]);
    l.commitTo(2);
    l.commitTo(1);
    expect(l.committed).toBe(2);
    expect(codeOf(() => l.commitTo(4))).toBe('INVARIANT');
  });

  it('§5.4.2 maybeCommit commits only an entry of the given term', () => {
    const l = logWith([1, 2, 2]);
    expect(l.maybeCommit(1, 2)).toBe(false);
    expect(l.maybeCommit(3, 2)).toBe(true);
    expect(l.committed).toBe(3);
    expect(l.maybeCommit(2, 2)).toBe(false);
  });

  it('hands committed entries out once, within the byte limit, then records them applied', () => {
    const l = logWith([1, 1, 1, 1], [], 2 * entrySize(entry(1, 1)));
    expect(l.hasNextCommittedEnts()).toBe(false);
    l.commitTo(4);
    expect(l.nextCommittedEnts().map((e) => e.index)).toEqual([1, 2]);
    l.applyingTo(2);
    l.applyingTo(1); // never back
    expect(l.applying).toBe(2);
    expect(l.nextCommittedEnts().map((e) => e.index)).toEqual([3, 4]);
    l.applyingTo(4);
    expect(l.hasNextCommittedEnts()).toBe(false);
    expect(l.nextCommittedEnts()).toEqual([]);
    l.appliedTo(0); // ignored
    l.appliedTo(3);
    expect(l.applied).toBe(3);
    expect(codeOf(() => l.appliedTo(2))).toBe('INVARIANT');
    expect(codeOf(() => l.appliedTo(5))).toBe('INVARIANT');
  });

  it('appliedTo also moves applying forward', () => {
    const l = logWith([1, 1]);
    l.commitTo(2);
    l.appliedTo(2);
    expect(l.applying).toBe(2);
  });
});

describe('RaftLog: slices', () => {
  it('spans storage and the unstable tail', () => {
    const l = logWith([1, 1, 2], [3, 3]);
    expect(l.slice(2, 6, BIG).map((e) => `${e.term}/${e.index}`)).toEqual(['1/2', '2/3', '3/4', '3/5']);
    expect(l.slice(4, 6, BIG).map((e) => e.index)).toEqual([4, 5]);
    expect(l.slice(1, 3, BIG).map((e) => e.index)).toEqual([1, 2]);
    expect(l.slice(3, 3, BIG)).toEqual([]);
    expect(l.entriesFrom(4, BIG).map((e) => e.index)).toEqual([4, 5]);
    expect(l.entriesFrom(9, BIG)).toEqual([]);
    expect(codeOf(() => l.slice(1, 7, BIG))).toBe('INVARIANT');
  });

  it('stops at maxBytes but always returns at least one entry', () => {
    const l = logWith([1, 1, 1], [1, 1]);
    const one = entrySize(entry(1, 1));
    expect(l.slice(1, 6, one * 2).map((e) => e.index)).toEqual([1, 2]); // limit hit in storage
    expect(l.slice(2, 6, one * 3).map((e) => e.index)).toEqual([2, 3, 4]); // limit hit across the boundary
    expect(l.slice(4, 6, 1).map((e) => e.index)).toEqual([4]);
  });

  it('limitSize keeps a prefix within the limit, at least one entry', () => {
    const es = entries([1, 1, 1]);
    const one = entrySize(es[0]!);
    expect(limitSize(es, 0)).toHaveLength(1);
    expect(limitSize(es, one * 2)).toHaveLength(2);
    expect(limitSize(es, BIG)).toBe(es);
    expect(limitSize([], 0)).toEqual([]);
  });
});

describe('RaftLog: snapshots', () => {
  it('restore replaces the log with the snapshot and commits it', () => {
    const l = logWith([1, 1, 2]);
    l.restore(snap(10, 4));
    expect(l.firstIndex()).toBe(11);
    expect(l.lastIndex()).toBe(10);
    expect(l.term(10)).toBe(4);
    expect(l.committed).toBe(10);
    expect(l.snapshot().meta.index).toBe(10);
    expect(l.hasNextCommittedEnts()).toBe(false); // the snapshot is installed first
  });

  it('snapshot() falls back to storage’s', () => {
    const l = logWith([1]);
    expect(l.snapshot().meta.index).toBe(0);
  });
});

describe('Unstable: the log tail not yet persisted', () => {
  it('appends, replaces from an earlier index, or truncates in the middle', () => {
    const u = new Unstable(5);
    expect(u.maybeLastIndex()).toBeUndefined();
    u.truncateAndAppend([]);
    u.truncateAndAppend(entries([1, 1], 5));
    u.truncateAndAppend(entries([1], 7)); // appended at the end
    expect(u.maybeLastIndex()).toBe(7);
    u.truncateAndAppend(entries([2], 6)); // truncate in the middle
    expect(u.entries.map((e) => `${e.term}/${e.index}`)).toEqual(['1/5', '2/6']);
    u.truncateAndAppend(entries([3, 3], 3)); // before the offset: replace all
    expect(u.offset).toBe(3);
    expect(u.entries.map((e) => e.index)).toEqual([3, 4]);
    expect(u.slice(3, 5).map((e) => e.index)).toEqual([3, 4]);
    expect(codeOf(() => u.slice(2, 4))).toBe('INVARIANT');
  });

  it('stableTo drops what was persisted, unless it was overwritten since', () => {
    const u = new Unstable(1);
    u.truncateAndAppend(entries([1, 1, 1]));
    u.stableTo(2, 2); // wrong term: ignored
    u.stableTo(9, 1); // unknown index: ignored
    expect(u.offset).toBe(1);
    u.stableTo(2, 1);
    expect(u.offset).toBe(3);
    expect(u.entries.map((e) => e.index)).toEqual([3]);
    u.stableTo(3, 1);
    expect(u.entries).toEqual([]);
    expect(u.offset).toBe(4);
  });

  it('holds an incoming snapshot until it is persisted', () => {
    const u = new Unstable(1);
    u.truncateAndAppend(entries([1]));
    u.restore(snap(10, 3));
    expect(u.maybeFirstIndex()).toBe(11);
    expect(u.maybeLastIndex()).toBe(10);
    expect(u.maybeTerm(10)).toBe(3);
    expect(u.maybeTerm(9)).toBeUndefined();
    expect(u.maybeTerm(11)).toBeUndefined();
    u.stableSnapTo(9); // not this one
    expect(u.snapshot).toBeDefined();
    u.stableSnapTo(10);
    expect(u.snapshot).toBeUndefined();
    expect(u.maybeFirstIndex()).toBeUndefined();
    expect(u.maybeTerm(10)).toBeUndefined();
  });
});
