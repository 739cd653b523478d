import { describe, expect, it } from 'vitest';
import type { RaftBugs } from '../../../src/core/raft.js';
import type { Cluster } from '../../support/cluster.js';
import { cluster, drain, logOf, logTerms, rawNode, settle, storageWith, type NodeCfg } from './helpers.js';

const MANUAL: NodeCfg = { preVote: false, checkQuorum: false };

/**
 * n1 was leader in term 2 and left an entry of term 2 at index 2 uncommitted; it is elected
 * again in term 4 and appends its no-op at index 3. Then n2, which holds index 2 but not
 * index 3, acknowledges index 2: a majority (n1, n2) now holds the term-2 entry.
 */
function reelectedWithOldEntry(bugs: RaftBugs): { commitAfterOldAck: number; commitAfterNoopAck: number } {
  const s = storageWith(['n1', 'n2', 'n3'], { terms: [1, 2], hardState: { term: 3, commit: 1 } });
  const rn = rawNode('n1', s, MANUAL);
  rn.raft.bugs = bugs;
  rn.campaign();
  rn.step({ type: 'vote-resp', from: 'n2', to: 'n1', term: 4, reject: false });
  expect(rn.raft.role).toBe('leader');
  drain(rn, s); // the no-op is persisted: n1 counts itself up to index 3
  const ack = (index: number) =>
    rn.step({
      type: 'app-resp',
      from: 'n2',
      to: 'n1',
      term: 4,
      reject: false,
      index,
      hintIndex: 0,
      hintTerm: 0,
    });
  ack(2);
  const commitAfterOldAck = rn.raft.log.committed;
  ack(3);
  return { commitAfterOldAck, commitAfterNoopAck: rn.raft.log.committed };
}

/** For every index applied anywhere, the distinct entries applied there (State Machine Safety). */
function appliedConflicts(c: Cluster): string[] {
  const byIndex = new Map<number, Set<string>>();
  for (const n of c.nodes.values()) {
    for (const e of n.applied) {
      const set = byIndex.get(e.index) ?? new Set<string>();
      set.add(String(e.term));
      byIndex.set(e.index, set);
    }
  }
  const out: string[] = [];
  for (const [i, terms] of byIndex) if (terms.size > 1) out.push(`index ${i}: terms ${[...terms].join(',')}`);
  return out;
}

/**
 * The scenario of Figure 8, played message by message on five servers.
 * (a)-(b): S1 led term 2 and replicated 2/2 to S2 only; S5 led term 3 and wrote 2/3 alone.
 * (c): S1 is elected for term 4 and replicates 2/2 to S3: now on a majority (S1, S2, S3).
 * Then S1 crashes; S5 campaigns (d). `replicateOwnTerm`: S1 also got its term-4 entry onto
 * a majority before crashing (e).
 */
function figure8(opts: { bugs?: RaftBugs; replicateOwnTerm?: boolean }) {
  const ids = ['s1', 's2', 's3', 's4', 's5'];
  const terms: Record<string, number[]> = {
    s1: [1, 2],
    s2: [1, 2],
    s3: [1],
    s4: [1],
    s5: [1, 3],
  };
  const storages = Object.fromEntries(
    ids.map((id) => [
      id,
      storageWith(ids, {
        terms: terms[id]!,
        hardState: { term: 3, commit: 1, ...(['s3', 's4', 's5'].includes(id) ? { vote: 's5' } : {}) },
      }),
    ]),
  );
  // One entry per append, so that S3 can receive 2/2 without 3/4.
  const c = cluster(ids, { ...MANUAL, maxSizePerMsg: 1 }, storages);
  const s1 = c.node('s1');
  s1.rn.raft.bugs = opts.bugs ?? {};

  // (c) S1 is elected for term 4 by S2, S3 and S4 (S5's log is more up to date).
  s1.rn.campaign();
  c.processReady('s1');
  for (const id of ['s2', 's3', 's4', 's5']) {
    c.deliver(id);
    c.processReady(id);
  }
  c.partition([['s1', 's2', 's3'], ['s4'], ['s5']]);
  c.deliver('s1');
  expect(s1.rn.raft.role).toBe('leader');
  expect(s1.rn.raft.term).toBe(4);
  c.processReady('s1'); // no-op 3/4 persisted; probes to S2 and S3
  for (const id of ['s2', 's3']) {
    c.deliver(id);
    c.processReady(id);
  }
  c.deliver('s1'); // S2 holds 3/4 now; S3 rejected: S1 sends it 2/2
  c.processReady('s1');
  c.deliver('s3');
  c.processReady('s3'); // S3 acknowledges index 2
  if (!opts.replicateOwnTerm) {
    // S1 crashes right after this: nothing more it sends arrives.
    c.cutOneWay('s1', 's2');
    c.cutOneWay('s1', 's3');
  }
  c.deliver('s1');
  const s1CommitBeforeCrash = () => s1.rn.raft.log.committed;
  if (opts.replicateOwnTerm) settle(c);
  else c.processReady('s1');
  const commitAtCrash = s1CommitBeforeCrash();

  // S1 crashes; S5 campaigns until it wins or gives up.
  c.partition([['s1'], ['s2', 's3', 's4', 's5']]);
  settle(c);
  const s5 = c.node('s5');
  for (let i = 0; i < 3 && s5.rn.raft.role !== 'leader'; i++) {
    s5.rn.campaign();
    settle(c);
  }
  return { c, commitAtCrash, s5Won: s5.rn.raft.role === 'leader' };
}

describe('§5.4.2 committing entries from previous terms', () => {
  it('a leader does not commit an earlier-term entry by counting replicas', () => {
    const { commitAfterOldAck, commitAfterNoopAck } = reelectedWithOldEntry({});
    expect(commitAfterOldAck).toBe(1);
    // Replicating its own-term entry commits everything before it too.
    expect(commitAfterNoopAck).toBe(3);
  });

  it('(has teeth) with the commitPreviousTerm fault the earlier-term entry is committed', () => {
    expect(reelectedWithOldEntry({ commitPreviousTerm: true }).commitAfterOldAck).toBe(2);
  });

  it('Figure 8: an earlier-term entry on a majority is not committed, so S5 may overwrite it safely', () => {
    const { c, commitAtCrash, s5Won } = figure8({});
    expect(commitAtCrash).toBe(1);
    expect(s5Won).toBe(true);
    expect(c.node('s5').rn.raft.term).toBe(5);
    expect(logTerms(c.node('s3'))).toEqual([1, 3, 5]);
    expect(appliedConflicts(c)).toEqual([]);

    // S1 comes back and converges too.
    c.heal();
    c.node('s5').rn.tick();
    settle(c);
    for (const id of ['s1', 's2', 's3', 's4']) expect(logOf(c.node(id))).toEqual(logOf(c.node('s5')));
    expect(appliedConflicts(c)).toEqual([]);
  });

  it('(has teeth) Figure 8 with the commitPreviousTerm fault applies two different entries at index 2', () => {
    const { c, commitAtCrash, s5Won } = figure8({ bugs: { commitPreviousTerm: true } });
    expect(commitAtCrash).toBe(2);
    expect(s5Won).toBe(true);
    expect(appliedConflicts(c)).toEqual(['index 2: terms 2,3']);
  });

  it('Figure 8 (e): once an entry of its own term is on a majority, S5 can no longer be elected', () => {
    const { c, commitAtCrash, s5Won } = figure8({ replicateOwnTerm: true });
    expect(commitAtCrash).toBe(3);
    expect(s5Won).toBe(false);
    expect(logTerms(c.node('s3'))).toEqual([1, 2, 4]);
    expect(appliedConflicts(c)).toEqual([]);
  });
});

describe('§8 a no-op entry on becoming leader', () => {
  it('a new leader appends an empty entry of its own term', () => {
    const s = storageWith(['n1', 'n2', 'n3'], { terms: [1, 1, 2], hardState: { term: 2 } });
    const rn = rawNode('n1', s, MANUAL);
    rn.campaign();
    rn.step({ type: 'vote-resp', from: 'n2', to: 'n1', term: 3, reject: false });
    expect(rn.raft.role).toBe('leader');
    const last = rn.raft.log.lastIndex();
    expect(last).toBe(4);
    const [noop] = rn.raft.log.slice(4, 5, 1024);
    expect(noop).toEqual({ index: 4, term: 3, type: 'normal', data: new Uint8Array(0) });
    // It goes out to the followers in the first appends.
    // The term changed in this batch, so they wait for it to be persisted.
    const apps = drain(rn, s).persisted.filter((m) => m.type === 'app');
    expect(apps.length).toBe(2);
    for (const m of apps) expect(m.type === 'app' && m.entries.map((e) => e.index)).toEqual([4]);
  });

  it('the no-op commits the entries of earlier terms without any client proposal', () => {
    const ids = ['n1', 'n2', 'n3'];
    const c = cluster(ids, MANUAL, {
      n1: storageWith(ids, { terms: [1, 2, 2], hardState: { term: 2, commit: 1 } }),
      n2: storageWith(ids, { terms: [1, 2], hardState: { term: 2, commit: 1 } }),
      n3: storageWith(ids, { terms: [1], hardState: { term: 2, commit: 1 } }),
    });
    c.node('n1').rn.campaign();
    settle(c);
    const n1 = c.node('n1');
    expect(n1.rn.raft.log.committed).toBe(4);
    expect(n1.applied.map((e) => `${e.term}/${e.index}`)).toEqual(['1/1', '2/2', '2/3', '3/4']);
    expect(n1.applied[3]!.data.byteLength).toBe(0);
  });
});
