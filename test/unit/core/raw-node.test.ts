import { describe, expect, it } from 'vitest';
import type { Message } from '../../../src/core/messages.js';
import { RawNode } from '../../../src/core/raw-node.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import {
  bytes,
  cluster,
  codeOf,
  conf,
  confEntry,
  drain,
  elect,
  entries,
  entry,
  rawNode,
  settle,
  storageWith,
  text,
} from './helpers.js';

const PEERS = ['n1', 'n2', 'n3'];
const NO_LEASE = { checkQuorum: false, preVote: false };

/** A follower n1 at term 1 (persisted) with log `terms`, leader n2. */
function follower(terms: number[] = [1]) {
  const s = storageWith(PEERS, { terms, hardState: { term: 1, commit: 0 } });
  const rn = rawNode('n1', s, NO_LEASE);
  return { rn, s };
}

function app(term: number, prevIndex: number, prevTerm: number, n: number, commit: number): Message {
  return {
    type: 'app',
    from: 'n2',
    to: 'n1',
    term,
    prevIndex,
    prevTerm,
    entries: entries(new Array<number>(n).fill(term), prevIndex + 1),
    commit,
  };
}

describe('Ready: durability before acknowledgement', () => {
  it('a candidate’s vote requests wait until its new term and vote are persisted', () => {
    const s = storageWith(PEERS);
    const rn = rawNode('n1', s, NO_LEASE);
    rn.campaign();
    const rd = rn.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: 'n1', commit: 0 });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages).toEqual([]);
    expect(rd.persistedMessages.map((m) => `${m.type}->${m.to}`)).toEqual(['vote->n2', 'vote->n3']);
    expect(rd.softState).toEqual({ role: 'candidate', leader: undefined });
  });

  it('a vote grant waits until the vote is persisted', () => {
    const s = storageWith(PEERS);
    const rn = rawNode('n1', s, NO_LEASE);
    rn.step({ type: 'vote', from: 'n2', to: 'n1', term: 1, lastLogIndex: 0, lastLogTerm: 0 });
    const rd = rn.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: 'n2', commit: 0 });
    expect(rd.messages).toEqual([]);
    expect(rd.persistedMessages).toEqual([
      { type: 'vote-resp', from: 'n1', to: 'n2', term: 1, reject: false },
    ]);
  });

  it('an append acknowledgement waits until the entries are persisted, even in an unchanged term', () => {
    const { rn } = follower();
    rn.step(app(1, 1, 1, 2, 0));
    const rd = rn.ready();
    expect(rd.hardState).toBeUndefined();
    expect(rd.entries.map((e) => e.index)).toEqual([2, 3]);
    expect(rd.mustSync).toBe(true);
    expect(rd.messages).toEqual([]);
    expect(rd.persistedMessages.map((m) => m.type)).toEqual(['app-resp']);
  });

  it('a leader’s appends may leave while its own write is in flight', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    n1.rn.propose(bytes('x'));
    const rd = n1.rn.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.messages.map((m) => `${m.type}->${m.to}`)).toEqual(['app->n2', 'app->n3']);
    expect(rd.persistedMessages).toEqual([]);
  });

  it('when the term or vote changes in a batch, every message waits', () => {
    const { rn } = follower();
    const hb = (term: number): Message => ({
      type: 'heartbeat',
      from: 'n2',
      to: 'n1',
      term,
      commit: 0,
      context: new Uint8Array(0),
    });
    rn.step(hb(1));
    let rd = rn.ready();
    expect(rd.messages.map((m) => m.type)).toEqual(['heartbeat-resp']);
    rn.advance(rd);
    rn.step(hb(2));
    rd = rn.ready();
    expect(rd.hardState).toMatchObject({ term: 2 });
    expect(rd.messages).toEqual([]);
    expect(rd.persistedMessages.map((m) => m.type)).toEqual(['heartbeat-resp']);
    rn.advance(rd);
  });

  it('mustSync is false when only the commit index moved', () => {
    const { rn } = follower([1, 1, 1]);
    rn.step({ type: 'heartbeat', from: 'n2', to: 'n1', term: 1, commit: 2, context: new Uint8Array(0) });
    const rd = rn.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: undefined, commit: 2 });
    expect(rd.entries).toEqual([]);
    expect(rd.mustSync).toBe(false);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2]);
    rn.advance(rd);
  });

  it('advance must be called with the last Ready before another is taken', () => {
    const s = storageWith(['n1']);
    const rn = rawNode('n1', s);
    rn.campaign();
    expect(rn.hasReady()).toBe(true);
    const rd = rn.ready();
    expect(rn.hasReady()).toBe(false);
    expect(codeOf(() => rn.ready())).toBe('BAD_REQUEST');
    expect(codeOf(() => rn.advance({ ...rd }))).toBe('BAD_REQUEST');
    s.append(rd.entries);
    rn.advance(rd);
    expect(codeOf(() => rn.advance(rd))).toBe('BAD_REQUEST');
    expect(rn.hasReady()).toBe(true);
  });

  it('a leader counts itself toward commit only after advance (single-node cluster)', () => {
    const s = storageWith(['n1']);
    const rn = rawNode('n1', s);
    rn.campaign();
    expect(rn.raft.role).toBe('leader');
    expect(rn.raft.log.committed).toBe(0);
    let rd = rn.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([1]);
    expect(rd.committedEntries).toEqual([]);
    expect(rn.raft.log.committed).toBe(0);
    s.append(rd.entries);
    rn.advance(rd);
    expect(rn.raft.log.committed).toBe(1);
    rd = rn.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1]);
    rn.advance(rd);

    expect(rn.propose(bytes('a'))).toEqual({ index: 2, term: 1 });
    rd = rn.ready();
    expect(rn.raft.log.committed).toBe(1);
    expect(rd.committedEntries).toEqual([]);
    s.append(rd.entries);
    rn.advance(rd);
    expect(rn.raft.log.committed).toBe(2);
    expect(drain(rn, s).committed.map((e) => text(e.data))).toEqual(['a']);
  });

  it('a leader whose followers persisted an entry commits it before its own write finishes', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    n1.rn.propose(bytes('x'));
    const rd = n1.rn.ready(); // n1's own write is "in flight": not advanced yet
    for (const m of rd.messages) c.node(m.to).inbox.push(m);
    for (const id of ['n2', 'n3']) {
      c.deliver(id);
      c.processReady(id);
    }
    for (const m of c.node('n1').inbox) n1.rn.step(m);
    expect(n1.rn.raft.log.committed).toBe(2);
    n1.storage.append(rd.entries);
    n1.rn.advance(rd);
  });
});

describe('Ready: what else a batch carries', () => {
  it('reports role and leader changes once', () => {
    const c = cluster(PEERS, NO_LEASE);
    const n2 = c.node('n2');
    c.node('n1').rn.campaign();
    c.processReady('n1');
    c.deliver('n2');
    let rd = n2.rn.ready();
    expect(rd.softState).toBeUndefined(); // a follower still, with no leader
    n2.rn.advance(rd);
    n2.rn.step({ type: 'heartbeat', from: 'n1', to: 'n2', term: 1, commit: 0, context: new Uint8Array(0) });
    rd = n2.rn.ready();
    expect(rd.softState).toEqual({ role: 'follower', leader: 'n1' });
    n2.rn.advance(rd);
    expect(n2.rn.hasReady()).toBe(false);
  });

  it('hands out at most maxCommittedBytesPerReady of committed entries per batch', () => {
    const s = storageWith(['n1']);
    const rn = rawNode('n1', s, { maxCommittedBytesPerReady: 100 });
    rn.campaign();
    drain(rn, s);
    for (let i = 0; i < 6; i++) rn.propose(new Uint8Array(26)); // 50 bytes each
    const batches: number[][] = [];
    while (rn.hasReady()) {
      const rd = rn.ready();
      s.append(rd.entries);
      if (rd.committedEntries.length > 0) batches.push(rd.committedEntries.map((e) => e.index));
      rn.advance(rd);
    }
    expect(batches).toEqual([
      [2, 3],
      [4, 5],
      [6, 7],
    ]);
  });

  it('refuses local message types from the network and ignores messages for other servers', () => {
    const { rn } = follower();
    for (const type of ['hup', 'beat', 'check-quorum', 'unreachable'] as const) {
      expect(codeOf(() => rn.step({ type, from: 'n2', to: 'n1', term: 0 }))).toBe('BAD_REQUEST');
    }
    expect(codeOf(() => rn.step({ type: 'snap-status', from: 'n2', to: 'n1', term: 0, reject: false }))).toBe(
      'BAD_REQUEST',
    );
    rn.step({ type: 'heartbeat', from: 'n2', to: 'n9', term: 5, commit: 0, context: new Uint8Array(0) });
    expect(rn.raft.term).toBe(1);
  });

  it('status describes the server, with per-peer progress only on the leader', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    const st = n1.rn.status();
    expect(st).toMatchObject({
      id: 'n1',
      role: 'leader',
      leader: 'n1',
      term: 1,
      vote: 'n1',
      commit: 1,
      applied: 1,
    });
    expect(st.lastIndex).toBe(1);
    expect(st.conf).toEqual(conf(PEERS));
    expect(st.progress?.get('n2')).toEqual({
      match: 1,
      next: 2,
      state: 'replicate',
      isLearner: false,
      inflight: 0,
    });
    expect(c.node('n2').rn.status().progress).toBeUndefined();
    expect(c.node('n2').rn.id).toBe('n2');
  });
});

describe('restart from storage', () => {
  it('recovers the hard state, the log and the membership from conf entries in the log', () => {
    const log = [
      entry(1, 1),
      confEntry(2, 1, { changes: [{ op: 'add-learner', node: 'n4' }] }),
      entry(3, 2),
      confEntry(4, 2, { changes: [{ op: 'add-voter', node: 'n4' }] }), // not committed yet: still in force (§6)
    ];
    const s = storageWith(PEERS, { log, hardState: { term: 2, vote: 'n2', commit: 3 } });
    const rn = rawNode('n1', s);
    expect(rn.raft.term).toBe(2);
    expect(rn.raft.vote).toBe('n2');
    expect(rn.raft.log.committed).toBe(3);
    expect(rn.raft.log.lastIndex()).toBe(4);
    expect(rn.raft.currentConf()).toEqual(conf(['n1', 'n2', 'n3', 'n4']));
    expect(rn.status().conf.voters).toContain('n4');
    // The committed entries are handed to the application again.
    const rd = rn.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(rd.hardState).toBeUndefined();
    expect(rd.entries).toEqual([]);
  });

  it('does not hand out again what the application already applied', () => {
    const s = storageWith(PEERS, { terms: [1, 1, 1], hardState: { term: 1, commit: 3 } });
    const rn = rawNode('n1', s, { applied: 2 });
    expect(rn.raft.log.applied).toBe(2);
    expect(rn.ready().committedEntries.map((e) => e.index)).toEqual([3]);
  });

  it('a malformed conf entry is skipped (committed as a no-op everywhere)', () => {
    const bad = { index: 2, term: 1, type: 'conf' as const, data: bytes('{not json') };
    const worse = {
      index: 3,
      term: 1,
      type: 'conf' as const,
      data: bytes(
        '{"changes":[{"op":"remove","node":"n1"},{"op":"remove","node":"n2"},{"op":"remove","node":"n3"}]}',
      ),
    };
    const s = storageWith(PEERS, { log: [entry(1, 1), bad, worse], hardState: { term: 1, commit: 3 } });
    const rn = rawNode('n1', s);
    expect(rn.raft.currentConf()).toEqual(conf(PEERS));
  });

  it('refuses a persisted commit index beyond the log', () => {
    const s = storageWith(PEERS, { terms: [1], hardState: { term: 1, commit: 5 } });
    expect(codeOf(() => rawNode('n1', s))).toBe('INVARIANT');
  });

  it('starts from a snapshot: log, commit and membership begin at its index', () => {
    const s = new MemoryStorage({
      snapshot: { meta: { index: 10, term: 3, conf: conf(['n1', 'n2']) }, data: bytes('state') },
    });
    const rn = new RawNode({ id: 'n1', storage: s, applied: 10 });
    expect(rn.raft.log.firstIndex()).toBe(11);
    expect(rn.raft.log.lastIndex()).toBe(10);
    expect(rn.raft.log.committed).toBe(10);
    expect(rn.raft.log.lastTerm()).toBe(3);
    expect(rn.raft.currentConf()).toEqual(conf(['n1', 'n2']));
  });

  it('a restarted server forgets nothing it acknowledged and catches up with the cluster', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    for (const d of ['a', 'b']) n1.rn.propose(bytes(d));
    settle(c);
    const before = c.node('n2').rn.status();
    c.restart('n2');
    const n2 = c.node('n2');
    expect(n2.rn.raft.term).toBe(before.term);
    expect(n2.rn.raft.vote).toBe(before.vote);
    expect(n2.rn.raft.log.lastIndex()).toBe(before.lastIndex);
    expect(n2.rn.raft.log.committed).toBe(before.commit);
    n1.rn.propose(bytes('c'));
    settle(c);
    expect(n2.applied.map((e) => text(e.data))).toEqual(['', 'a', 'b', 'c']);
  });

  it('a truncated, uncommitted conf entry rolls the membership back', () => {
    const log = [entry(1, 1), confEntry(2, 1, { changes: [{ op: 'add-voter', node: 'n4' }] })];
    const s = storageWith(PEERS, { log, hardState: { term: 1, commit: 1 } });
    const rn = rawNode('n1', s, NO_LEASE);
    expect(rn.raft.currentConf().voters).toContain('n4');
    rn.step({
      type: 'app',
      from: 'n2',
      to: 'n1',
      term: 2,
      prevIndex: 1,
      prevTerm: 1,
      entries: [entry(2, 2)],
      commit: 1,
    });
    expect(rn.raft.currentConf()).toEqual(conf(PEERS));
    drain(rn, s);
    expect(rawNode('n1', s, NO_LEASE).raft.currentConf()).toEqual(conf(PEERS));
  });
});
