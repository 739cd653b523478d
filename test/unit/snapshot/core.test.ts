import { describe, expect, it } from 'vitest';
import type { Message, Snapshot } from '../../../src/core/messages.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import {
  allMsgs,
  bytes,
  cluster,
  conf,
  confEntry,
  drain,
  elect,
  entries,
  entry,
  logTerms,
  ofType,
  rawNode,
  settle,
  storageWith,
  text,
} from '../core/helpers.js';

/**
 * §7 log compaction in the core: the leader's progress for a follower behind the compacted
 * log, and every way a follower's log can relate to an InstallSnapshot it receives.
 */

const PEERS = ['n1', 'n2', 'n3'];
const C3 = conf(PEERS);

function snap(index: number, term: number, voters = PEERS): Snapshot {
  return { meta: { index, term, conf: conf(voters) }, data: bytes(`state@${index}`) };
}

function snapFrom(s: Snapshot, from = 'n2', msgTerm = 5): Message {
  return { type: 'snap', from, to: 'n1', term: msgTerm, snapshot: s };
}

/** A follower n1 (term 1, log of `terms`, commit `commit`) that hears a snapshot from leader n2 in term 5. */
function follower(terms: number[], commit: number): { rn: ReturnType<typeof rawNode>; s: MemoryStorage } {
  const s = storageWith(PEERS, { terms, hardState: { term: 1, commit } });
  const rn = rawNode('n1', s, { checkQuorum: false, preVote: false });
  return { rn, s };
}

describe('§7 leader side: progress and compaction', () => {
  it('progress moves to snapshot state when the entries a follower needs are compacted, and pauses appends', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    c.isolate('n3');
    for (let i = 0; i < 8; i++) n1.rn.propose(bytes(`cmd${i}`));
    settle(c);
    const committed = n1.rn.raft.log.committed;
    // Snapshot at the commit index, keeping a margin of 2 entries below it.
    n1.storage.createSnapshot(
      { meta: { index: committed, term: 1, conf: C3 }, data: bytes('s') },
      committed - 2,
    );
    expect(n1.rn.raft.log.firstIndex()).toBe(committed - 1);
    c.heal();
    const sent: Message[] = [];
    n1.rn.tick(); // heartbeat → n3 answers → n1 probes → its next entries are compacted
    settle(c, { hold: ['n3'], onDeliver: (m) => sent.push(m) });
    for (let i = 0; i < 3 && ofType(c.node('n3').inbox, 'snap').length === 0; i++) {
      c.deliver('n3');
      settle(c, { hold: ['n3'] });
    }
    expect(ofType(c.node('n3').inbox, 'snap')).toHaveLength(1);
    const pr = n1.rn.status().progress!.get('n3')!;
    expect(pr.state).toBe('snapshot');
    // Paused: new proposals go to n2 but not to n3 while the snapshot is in flight.
    n1.rn.propose(bytes('while-snapshotting'));
    settle(c, { hold: ['n3'] });
    expect(ofType(c.node('n3').inbox, 'app').filter((m) => m.entries.length > 0)).toHaveLength(0);
    expect(ofType(c.node('n3').inbox, 'snap')[0]!.snapshot.meta.index).toBe(committed);
  });

  it('a follower within the catch-up margin is caught up from the log, not with a snapshot', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    c.isolate('n3');
    for (let i = 0; i < 4; i++) n1.rn.propose(bytes(`cmd${i}`));
    settle(c);
    const committed = n1.rn.raft.log.committed;
    const n3Last = c.node('n3').rn.raft.log.lastIndex();
    n1.storage.createSnapshot({ meta: { index: committed, term: 1, conf: C3 }, data: bytes('s') }, n3Last);
    c.heal();
    const snaps: Message[] = [];
    n1.rn.tick();
    settle(c, { onDeliver: (m) => m.type === 'snap' && snaps.push(m) });
    expect(snaps).toHaveLength(0);
    expect(logTerms(c.node('n3').rn).length).toBeGreaterThan(0);
    expect(c.node('n3').rn.raft.log.lastIndex()).toBe(n1.rn.raft.log.lastIndex());
  });

  it('no snapshot goes to a peer not heard from lately; a failed one is retried after the next answer', () => {
    const c = cluster(PEERS, { checkQuorum: false });
    const n1 = elect(c, 'n1');
    c.isolate('n3');
    for (let i = 0; i < 5; i++) n1.rn.propose(bytes(`cmd${i}`));
    settle(c);
    const idx = n1.rn.raft.log.committed;
    n1.storage.createSnapshot({ meta: { index: idx, term: 1, conf: C3 }, data: bytes('s') }, idx);
    // n3 is still cut off: n1 probes it, but never ships a snapshot to a silent peer.
    const snaps: Message[] = [];
    for (let i = 0; i < 5; i++) {
      n1.rn.tick();
      settle(c, { onDeliver: (m) => m.type === 'snap' && snaps.push(m) });
    }
    expect(snaps).toHaveLength(0);
    c.heal();
    n1.rn.tick();
    settle(c, { hold: ['n3'] });
    for (let i = 0; i < 4 && ofType(c.node('n3').inbox, 'snap').length === 0; i++) {
      c.deliver('n3');
      settle(c, { hold: ['n3'] });
    }
    expect(ofType(c.node('n3').inbox, 'snap')).toHaveLength(1);
    c.node('n3').inbox = []; // lost
    n1.rn.reportSnapshot('n3', false);
    expect(n1.rn.status().progress!.get('n3')!.state).toBe('probe');
    n1.rn.tick();
    settle(c);
    expect(c.node('n3').storage.snapshot().meta.index).toBe(idx);
    expect(n1.rn.status().progress!.get('n3')).toMatchObject({
      state: 'replicate',
      match: n1.rn.raft.log.lastIndex(),
    });
  });
});

describe('§7 follower side: InstallSnapshot against every shape of log', () => {
  it('snapshot ahead of the whole log: the log is replaced, commit and applied jump to it', () => {
    const { rn, s } = follower([1, 1, 1], 2);
    rn.step(snapFrom(snap(10, 4)));
    const rd = rn.ready();
    expect(rd.snapshot?.meta.index).toBe(10);
    expect(rd.committedEntries).toEqual([]);
    expect(rd.hardState).toMatchObject({ term: 5, commit: 10 });
    expect(ofType(rd.persistedMessages, 'app-resp')).toMatchObject([{ to: 'n2', index: 10, reject: false }]);
    s.applySnapshot(rd.snapshot!);
    s.setHardState(rd.hardState!);
    rn.advance(rd);
    expect([rn.raft.log.firstIndex(), rn.raft.log.lastIndex(), rn.raft.log.applied]).toEqual([11, 10, 10]);
    expect([s.firstIndex(), s.lastIndex(), s.term(10)]).toEqual([11, 10, 4]);
    // The next append from the leader continues right after it.
    rn.step({
      type: 'app',
      from: 'n2',
      to: 'n1',
      term: 5,
      prevIndex: 10,
      prevTerm: 4,
      entries: [entry(11, 5)],
      commit: 11,
    });
    const out = drain(rn, s);
    expect(ofType(allMsgs(out), 'app-resp')).toMatchObject([{ index: 11, reject: false }]);
    expect(out.committed.map((e) => e.index)).toEqual([11]);
  });

  it('snapshot behind the commit index: ignored, answered with the commit index', () => {
    const { rn, s } = follower([1, 1, 1, 1, 1], 4);
    rn.step(snapFrom(snap(3, 1)));
    const out = drain(rn, s);
    expect(ofType(allMsgs(out), 'app-resp')).toMatchObject([{ index: 4, reject: false }]);
    expect(s.snapshot().meta.index).toBe(0);
    expect(logTerms(rn)).toEqual([1, 1, 1, 1, 1]);
  });

  it('overlapping, with a matching entry at its index: the suffix after it is kept and only commit moves', () => {
    const { rn, s } = follower([1, 1, 2, 2, 2, 2], 1);
    rn.step(snapFrom(snap(4, 2)));
    const out = drain(rn, s);
    expect(s.snapshot().meta.index).toBe(0); // nothing to install: the log has it all
    expect(logTerms(rn)).toEqual([1, 1, 2, 2, 2, 2]);
    expect(rn.raft.log.committed).toBe(4);
    expect(out.committed.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    expect(ofType(allMsgs(out), 'app-resp')).toMatchObject([{ index: 4, reject: false }]);
  });

  it('overlapping, with a conflicting entry at its index: the whole log is discarded', () => {
    const { rn, s } = follower([1, 1, 1, 1, 1, 1], 2);
    rn.step(snapFrom(snap(4, 3)));
    const out = drain(rn, s);
    expect(s.snapshot().meta).toMatchObject({ index: 4, term: 3 });
    expect([s.firstIndex(), s.lastIndex()]).toEqual([5, 4]);
    expect(rn.raft.log.lastIndex()).toBe(4);
    expect(out.committed).toEqual([]);
    expect(ofType(allMsgs(out), 'app-resp')).toMatchObject([{ index: 4, reject: false }]);
  });

  it('overlapping, matching index but a conflicting suffix after it: kept up to it, the leader then truncates the rest (§5.3)', () => {
    const { rn, s } = follower([1, 1, 2, 2, 3, 3], 1);
    rn.step(snapFrom(snap(4, 2)));
    drain(rn, s);
    expect(rn.raft.log.committed).toBe(4);
    // The leader's entry 5 is of term 5: the follower's 5..6 (term 3) conflict and go.
    rn.step({
      type: 'app',
      from: 'n2',
      to: 'n1',
      term: 5,
      prevIndex: 4,
      prevTerm: 2,
      entries: [entry(5, 5)],
      commit: 5,
    });
    drain(rn, s);
    expect(logTerms(rn)).toEqual([1, 1, 2, 2, 5]);
    expect(s.lastIndex()).toBe(5);
  });

  it('a snapshot whose index is beyond a log that holds a conflicting shorter suffix replaces it', () => {
    const { rn, s } = follower([1, 2, 2], 1);
    rn.step(snapFrom(snap(5, 4)));
    drain(rn, s);
    expect([s.firstIndex(), s.lastIndex(), s.term(5)]).toEqual([6, 5, 4]);
  });

  it('a snapshot in a message from an older term is ignored', () => {
    const { rn, s } = follower([1, 1], 0);
    rn.step({ type: 'heartbeat', from: 'n2', to: 'n1', term: 6, commit: 0, context: new Uint8Array() });
    drain(rn, s);
    rn.step(snapFrom(snap(9, 5), 'n3', 5));
    const out = drain(rn, s);
    expect(s.snapshot().meta.index).toBe(0);
    expect(rn.raft.log.lastIndex()).toBe(2);
    expect(ofType(allMsgs(out), 'app-resp')).toHaveLength(0);
  });

  it('a newer snapshot replaces one not yet persisted; an older one does not', () => {
    const { rn, s } = follower([1], 0);
    rn.step(snapFrom(snap(5, 2)));
    rn.step(snapFrom(snap(8, 3)));
    rn.step(snapFrom(snap(6, 3)));
    const rd = rn.ready();
    expect(rd.snapshot?.meta.index).toBe(8);
    s.applySnapshot(rd.snapshot!);
    rn.advance(rd);
    expect(rn.raft.log.applied).toBe(8);
  });

  it('the snapshot’s membership replaces the log’s', () => {
    const { rn, s } = follower([1, 1], 0);
    rn.step(snapFrom(snap(7, 3, ['n1', 'n2', 'n3', 'n4'])));
    drain(rn, s);
    expect(rn.raft.currentConf().voters).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(s.initialState().confState.voters).toEqual(['n1', 'n2', 'n3', 'n4']);
  });
});

describe('§7 restart from a snapshot plus the log suffix', () => {
  it('membership comes from the snapshot, then only conf entries after it; applied starts at the snapshot', () => {
    // Log 1..12 with a membership change at 3 (add n4) and another at 11 (add n5); a snapshot
    // at 8 whose membership already holds n4, and a catch-up margin keeping 3..8 in the log
    // (entry 3 is already part of the snapshot's membership and must not be applied again).
    const s = new MemoryStorage({ conf: C3 });
    const log = entries([1, 1], 1);
    log.push(confEntry(3, 1, { changes: [{ op: 'add-voter', node: 'n4' }] }));
    log.push(...entries([1, 1, 1, 1, 1, 1, 1], 4));
    log.push(confEntry(11, 1, { changes: [{ op: 'add-voter', node: 'n5' }] }));
    log.push(entry(12, 1));
    s.append(log);
    s.setHardState({ term: 1, vote: undefined, commit: 12 });
    s.createSnapshot({ meta: { index: 8, term: 1, conf: conf([...PEERS, 'n4']) }, data: bytes('s8') }, 2);
    expect(s.firstIndex()).toBe(3);
    const rn = rawNode('n1', s, { applied: 8 });
    expect(rn.raft.currentConf().voters).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    const out = drain(rn, s);
    expect(out.committed.map((e) => e.index)).toEqual([9, 10, 11, 12]);
    expect(text(s.snapshot().data)).toBe('s8');
  });
});
