import { describe, expect, it } from 'vitest';
import {
  jointIndex,
  jointVote,
  majorityIndex,
  majorityVote,
  type VoteResult,
} from '../../../src/core/quorum.js';
import { ProgressTracker } from '../../../src/core/tracker.js';
import { conf } from './helpers.js';

/** Voters named v0, v1, ... with the given values. */
function voters(values: number[]): { ids: string[]; valueOf: (id: string) => number } {
  const ids = values.map((_, i) => `v${i}`);
  return { ids, valueOf: (id) => values[Number(id.slice(1))]! };
}

function votes(entries: Record<string, boolean>): Map<string, boolean> {
  return new Map(Object.entries(entries));
}

describe('quorum: the index a majority has reached (§5.3)', () => {
  const cases: [number[], number][] = [
    [[7], 7],
    [[3, 7], 3], // both of two
    [[5, 1, 3], 3], // two of three
    [[1, 2, 3, 4], 2], // three of four
    [[4, 4, 1, 1], 1],
    [[9, 8, 7, 1, 0], 7], // three of five
    [[1, 2, 3, 4, 5, 6], 3], // four of six
  ];
  for (const [values, want] of cases) {
    it(`[${values.join(' ')}] → ${want}`, () => {
      const { ids, valueOf } = voters(values);
      expect(majorityIndex(ids, valueOf)).toBe(want);
    });
  }

  it('an empty configuration never holds back a joint one (+Infinity)', () => {
    expect(majorityIndex([], () => 5)).toBe(Number.POSITIVE_INFINITY);
  });

  it('a joint configuration takes the smaller of its two majorities', () => {
    const values: Record<string, number> = { a: 5, b: 5, c: 1, d: 2, e: 2 };
    const valueOf = (id: string) => values[id]!;
    expect(jointIndex(['a', 'b', 'c'], ['c', 'd', 'e'], valueOf)).toBe(2);
    expect(jointIndex(['a', 'b', 'c'], [], valueOf)).toBe(5);
    expect(jointIndex([], ['c', 'd', 'e'], valueOf)).toBe(2);
    expect(jointIndex([], [], valueOf)).toBe(0);
  });
});

describe('quorum: counting votes (§5.2)', () => {
  const cases: [string, string[], Record<string, boolean>, VoteResult][] = [
    ['an empty configuration wins', [], {}, 'won'],
    ['one voter, granted', ['a'], { a: true }, 'won'],
    ['one voter, no answer', ['a'], {}, 'pending'],
    ['one voter, rejected', ['a'], { a: false }, 'lost'],
    ['two of three', ['a', 'b', 'c'], { a: true, b: true }, 'won'],
    ['one of three, two missing', ['a', 'b', 'c'], { a: true }, 'pending'],
    ['one of three, two rejected', ['a', 'b', 'c'], { a: true, b: false, c: false }, 'lost'],
    ['two of four is not a majority', ['a', 'b', 'c', 'd'], { a: true, b: true, c: false, d: false }, 'lost'],
    ['two of four, one missing', ['a', 'b', 'c', 'd'], { a: true, b: true, c: false }, 'pending'],
    ['three of four', ['a', 'b', 'c', 'd'], { a: true, b: true, c: true }, 'won'],
    ['votes of non-voters do not count', ['a', 'b', 'c'], { a: true, x: true, y: true }, 'pending'],
  ];
  for (const [name, ids, v, want] of cases) {
    it(`${name}: ${want}`, () => expect(majorityVote(ids, votes(v))).toBe(want));
  }

  it('a joint vote is won only if both halves win, lost if either loses', () => {
    const inc = ['a', 'b', 'c'];
    const out = ['c', 'd', 'e'];
    expect(jointVote(inc, out, votes({ a: true, b: true, c: true, d: true }))).toBe('won');
    expect(jointVote(inc, out, votes({ a: true, b: true }))).toBe('pending');
    expect(jointVote(inc, out, votes({ a: true, b: true, c: false, d: false }))).toBe('lost');
    expect(jointVote(inc, out, votes({ a: false, b: false, d: true }))).toBe('lost');
    expect(jointVote(inc, out, votes({ c: true }))).toBe('pending');
    expect(jointVote(inc, [], votes({ a: true, b: true }))).toBe('won');
  });
});

describe('tracker: the leader’s view of the cluster', () => {
  it('creates progress for new members, drops removed ones and flags learners', () => {
    const t = new ProgressTracker(conf([]), 4, 0);
    t.setConf(conf(['a', 'b'], ['l']), 5);
    expect([...t.progress.keys()]).toEqual(['a', 'b', 'l']);
    expect(t.progress.get('a')).toMatchObject({ next: 5, isLearner: false, recentActive: true });
    expect(t.progress.get('l')?.isLearner).toBe(true);
    t.progress.get('a')!.match = 3;
    t.setConf(conf(['a', 'l']), 9);
    expect([...t.progress.keys()]).toEqual(['a', 'l']);
    expect(t.progress.get('a')?.match).toBe(3); // kept
    expect(t.progress.get('l')?.isLearner).toBe(false); // promoted
    expect(t.isVoter('l')).toBe(true);
    expect(t.isVoter('b')).toBe(false);
    expect(t.peers('a')).toEqual(['l']);
  });

  it('counts both halves of a joint configuration for commit, votes and activity', () => {
    const t = new ProgressTracker(conf([]), 4, 0);
    t.setConf({ voters: ['a', 'd', 'e'], outgoing: ['a', 'b', 'c'], learners: [], learnersNext: [] }, 1);
    expect(t.voterIds().sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    const match: Record<string, number> = { a: 9, b: 9, c: 9, d: 4, e: 1 };
    for (const [id, m] of Object.entries(match)) t.progress.get(id)!.match = m;
    expect(t.committed()).toBe(4);

    t.recordVote('a', true);
    t.recordVote('b', true);
    expect(t.tallyVotes()).toEqual({ granted: 2, rejected: 0, result: 'pending' });
    t.recordVote('d', false);
    t.recordVote('d', true); // only the first answer counts
    t.recordVote('e', false);
    expect(t.tallyVotes()).toEqual({ granted: 2, rejected: 2, result: 'lost' });
    t.resetVotes();
    expect(t.tallyVotes().granted).toBe(0);

    for (const pr of t.progress.values()) pr.recentActive = false;
    expect(t.quorumActive('a')).toBe(false);
    t.progress.get('b')!.recentActive = true;
    t.progress.get('d')!.recentActive = true;
    expect(t.quorumActive('a')).toBe(true);

    for (const [id, r] of Object.entries({ b: 3, c: 1, d: 2, e: 7 })) t.progress.get(id)!.ackedRound = r;
    expect(t.quorumRound('a', 10)).toBe(3);
  });
});
