import { describe, expect, it } from 'vitest';
import type { Role } from '../../../src/core/raft.js';
import type { Message, VoteMsg } from '../../../src/core/messages.js';
import { SeededRand } from '../../../src/core/rand.js';
import { RawNode } from '../../../src/core/raw-node.js';
import type { MemoryStorage } from '../../../src/storage/memory-storage.js';
import {
  allMsgs,
  cluster,
  drain,
  elect,
  ofType,
  rawNode,
  storageWith,
  tickUntil,
  type NodeCfg,
} from './helpers.js';

const T = 10;
const PEERS = ['n1', 'n2', 'n3'];

function voteReq(from: string, to: string, term: number, lastLogIndex: number, lastLogTerm: number): VoteMsg {
  return { type: 'vote', from, to, term, lastLogIndex, lastLogTerm };
}

/** A fresh member of n1..n3 with the log given by `terms`. */
function fresh(id: string, terms: number[] = [], cfg: NodeCfg = {}): { rn: RawNode; s: MemoryStorage } {
  const s = storageWith(PEERS, { terms, hardState: { term: terms.at(-1) ?? 0, commit: 0 } });
  return { rn: rawNode(id, s, cfg), s };
}

/** n1 in the given role, at term 1 (pre-candidate: term 0). */
function inRole(role: Role): { rn: RawNode; s: MemoryStorage } {
  const { rn, s } = fresh('n1', [], { preVote: role === 'pre-candidate' });
  if (role !== 'follower') rn.campaign();
  if (role === 'leader') rn.step({ type: 'vote-resp', from: 'n2', to: 'n1', term: 1, reject: false });
  drain(rn, s);
  expect(rn.raft.role).toBe(role);
  return { rn, s };
}

describe('§5.1 terms', () => {
  const roles: Role[] = ['follower', 'pre-candidate', 'candidate', 'leader'];
  for (const role of roles) {
    it(`${role} adopts a higher term from an append and becomes follower of its sender`, () => {
      const { rn, s } = inRole(role);
      rn.step({
        type: 'app',
        from: 'n2',
        to: 'n1',
        term: 5,
        prevIndex: 0,
        prevTerm: 0,
        entries: [],
        commit: 0,
      });
      expect(rn.raft.role).toBe('follower');
      expect(rn.raft.term).toBe(5);
      expect(rn.raft.leader).toBe('n2');
      expect(rn.raft.vote).toBeUndefined();
      const out = drain(rn, s);
      expect(s.hardStateNow().term).toBe(5);
      expect(ofType(allMsgs(out), 'app-resp', 'n2')).toMatchObject([{ reject: false, term: 5 }]);
    });

    it(`${role} adopts a higher term from a response and has no leader`, () => {
      const { rn } = inRole(role);
      rn.step({ type: 'heartbeat-resp', from: 'n3', to: 'n1', term: 7, context: new Uint8Array(0) });
      expect(rn.raft.role).toBe('follower');
      expect(rn.raft.term).toBe(7);
      expect(rn.raft.leader).toBeUndefined();
    });
  }

  it('a candidate that hears an append of its own term recognises the leader', () => {
    const { rn, s } = inRole('candidate');
    rn.step({
      type: 'app',
      from: 'n2',
      to: 'n1',
      term: 1,
      prevIndex: 0,
      prevTerm: 0,
      entries: [],
      commit: 0,
    });
    expect(rn.raft.role).toBe('follower');
    expect(rn.raft.leader).toBe('n2');
    expect(ofType(allMsgs(drain(rn, s)), 'app-resp')).toMatchObject([{ reject: false }]);
  });

  it('a stale append is answered with the current term so the old leader steps down', () => {
    const { rn, s } = fresh('n1', [1, 2]);
    rn.step({
      type: 'app',
      from: 'n2',
      to: 'n1',
      term: 1,
      prevIndex: 2,
      prevTerm: 1,
      entries: [],
      commit: 0,
    });
    expect(rn.raft.term).toBe(2);
    const resp = ofType(allMsgs(drain(rn, s)), 'app-resp');
    expect(resp).toMatchObject([{ to: 'n2', term: 2 }]);

    // The old leader learns the newer term from it.
    const old = inRole('leader');
    old.rn.step({ ...resp[0]!, from: 'n2', to: 'n1' });
    expect(old.rn.raft.role).toBe('follower');
    expect(old.rn.raft.term).toBe(2);
  });

  it('without PreVote and CheckQuorum a stale append is still answered with the current term (Figure 2)', () => {
    const { rn, s } = fresh('n1', [1, 2], { preVote: false, checkQuorum: false });
    rn.step({
      type: 'app',
      from: 'n2',
      to: 'n1',
      term: 1,
      prevIndex: 2,
      prevTerm: 1,
      entries: [],
      commit: 0,
    });
    expect(rn.raft.term).toBe(2);
    expect(ofType(allMsgs(drain(rn, s)), 'app-resp')).toMatchObject([{ to: 'n2', term: 2 }]);
  });

  it('a stale vote request is ignored and a stale pre-vote is rejected with the current term', () => {
    const { rn, s } = fresh('n1', [1, 3]);
    rn.step(voteReq('n2', 'n1', 2, 5, 2));
    rn.step({ ...voteReq('n2', 'n1', 2, 5, 2), type: 'prevote' });
    expect(allMsgs(drain(rn, s))).toEqual([
      { type: 'prevote-resp', from: 'n1', to: 'n2', term: 3, reject: true },
    ]);
  });
});

describe('§5.2 leader election', () => {
  it('the election timeout is randomized in [T, 2T) ticks and differs between seeds', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 300; seed++) {
      const s = storageWith(PEERS);
      const rn = new RawNode({
        id: 'n1',
        storage: s,
        electionTicks: T,
        preVote: false,
        rand: new SeededRand(seed),
      });
      let ticks = 0;
      while (rn.raft.role === 'follower') {
        rn.tick();
        ticks++;
        expect(ticks).toBeLessThan(2 * T);
      }
      expect(rn.raft.role).toBe('candidate');
      expect(ticks).toBeGreaterThanOrEqual(T);
      seen.add(ticks);
    }
    // Not a constant: the whole range is used.
    expect(seen.size).toBe(T);
  });

  it('the timeout is drawn again after each election', () => {
    const s = storageWith(PEERS);
    const rn = new RawNode({
      id: 'n1',
      storage: s,
      electionTicks: T,
      preVote: false,
      rand: new SeededRand(7),
    });
    const timeouts: number[] = [];
    for (let round = 0; round < 30; round++) {
      let ticks = 0;
      const term = rn.raft.term;
      while (rn.raft.term === term) {
        rn.tick();
        ticks++;
      }
      timeouts.push(ticks);
    }
    for (const t of timeouts) {
      expect(t).toBeGreaterThanOrEqual(T);
      expect(t).toBeLessThan(2 * T);
    }
    expect(new Set(timeouts).size).toBeGreaterThan(3);
  });

  it('a follower that hears from no leader campaigns and wins with a majority', () => {
    const c = cluster(PEERS, { electionTicks: T });
    const n1 = c.node('n1');
    tickUntil(c, 'n1', () => n1.rn.raft.role !== 'follower', 2 * T);
    c.stabilize();
    expect(n1.rn.raft.role).toBe('leader');
    expect(n1.rn.raft.term).toBe(1);
    for (const id of ['n2', 'n3']) {
      expect(c.node(id).rn.raft.role).toBe('follower');
      expect(c.node(id).rn.raft.leader).toBe('n1');
      expect(c.node(id).rn.raft.vote).toBe('n1');
    }
  });

  it('a candidate that a majority rejects returns to follower', () => {
    const { rn } = fresh('n1', [], { preVote: false });
    rn.campaign();
    rn.step({ type: 'vote-resp', from: 'n2', to: 'n1', term: 1, reject: true });
    expect(rn.raft.role).toBe('candidate');
    rn.step({ type: 'vote-resp', from: 'n3', to: 'n1', term: 1, reject: true });
    expect(rn.raft.role).toBe('follower');
    expect(rn.raft.term).toBe(1);
  });

  it('a candidate counts only the first answer of each voter', () => {
    const s = storageWith(['n1', 'n2', 'n3', 'n4', 'n5']);
    const rn = rawNode('n1', s, { preVote: false });
    rn.campaign();
    for (let i = 0; i < 3; i++) rn.step({ type: 'vote-resp', from: 'n2', to: 'n1', term: 1, reject: false });
    expect(rn.raft.role).toBe('candidate');
    rn.step({ type: 'vote-resp', from: 'n3', to: 'n1', term: 1, reject: false });
    expect(rn.raft.role).toBe('leader');
  });

  it('a split vote resolves: randomized timeouts elect a single leader in a later term', () => {
    const c = cluster(PEERS, { electionTicks: T, preVote: false });
    // Everyone campaigns at once: each votes for itself and rejects the others.
    for (const id of PEERS) c.node(id).rn.campaign();
    c.stabilize();
    expect(c.leader()).toBeUndefined();
    for (const id of PEERS) expect(c.node(id).rn.raft.term).toBe(1);

    let ticks = 0;
    while (c.leader() === undefined) {
      c.tickAll(1);
      ticks++;
      expect(ticks).toBeLessThan(4 * T);
    }
    const leaders = PEERS.filter((id) => c.node(id).rn.raft.role === 'leader');
    expect(leaders).toHaveLength(1);
    const term = c.node(leaders[0]!).rn.raft.term;
    expect(term).toBeGreaterThanOrEqual(2);
    for (const id of PEERS) {
      expect(c.node(id).rn.raft.term).toBe(term);
      expect(c.node(id).rn.raft.leader).toBe(leaders[0]);
    }
  });

  it('a single-voter cluster elects itself at once', () => {
    const s = storageWith(['n1']);
    const rn = rawNode('n1', s);
    rn.campaign();
    expect(rn.raft.role).toBe('leader');
    expect(rn.raft.term).toBe(1);
  });

  it('a learner never campaigns', () => {
    const s = storageWith(['n1', 'n2'], { learners: ['n3'] });
    const rn = rawNode('n3', s, { electionTicks: T });
    for (let i = 0; i < 10 * T; i++) rn.tick();
    rn.campaign();
    expect(rn.raft.role).toBe('follower');
    expect(rn.raft.term).toBe(0);
    expect(drain(rn, s).messages).toEqual([]);
  });

  it('a leader ignores a campaign request', () => {
    const { rn } = inRole('leader');
    rn.campaign();
    expect(rn.raft.role).toBe('leader');
    expect(rn.raft.term).toBe(1);
  });
});

describe('§5.4.1 election restriction: vote only for an up-to-date log', () => {
  // The voter's log: terms [1, 1, 2] (last term 2, last index 3).
  const cases: { name: string; lastTerm: number; lastIndex: number; granted: boolean }[] = [
    { name: 'a higher last term, even with a shorter log', lastTerm: 3, lastIndex: 1, granted: true },
    { name: 'the same last term and a longer log', lastTerm: 2, lastIndex: 4, granted: true },
    { name: 'the same last term and the same length', lastTerm: 2, lastIndex: 3, granted: true },
    { name: 'the same last term and a shorter log', lastTerm: 2, lastIndex: 2, granted: false },
    { name: 'a lower last term, even with a much longer log', lastTerm: 1, lastIndex: 100, granted: false },
  ];
  for (const tc of cases) {
    it(`${tc.granted ? 'grants' : 'rejects'} a candidate with ${tc.name}`, () => {
      const { rn, s } = fresh('n1', [1, 1, 2], { checkQuorum: false });
      rn.step(voteReq('n2', 'n1', 3, tc.lastIndex, tc.lastTerm));
      const out = drain(rn, s);
      expect(out.messages).toEqual([]);
      expect(ofType(out.persisted, 'vote-resp')).toMatchObject([{ to: 'n2', term: 3, reject: !tc.granted }]);
      expect(rn.raft.term).toBe(3);
      expect(rn.raft.vote).toBe(tc.granted ? 'n2' : undefined);
      expect(s.hardStateNow()).toMatchObject({ term: 3, vote: tc.granted ? 'n2' : undefined });
    });
  }

  it('the same rule applies to pre-votes', () => {
    const { rn, s } = fresh('n1', [1, 1, 2], { checkQuorum: false });
    rn.step({ ...voteReq('n2', 'n1', 3, 2, 2), type: 'prevote' });
    rn.step({ ...voteReq('n3', 'n1', 3, 3, 2), type: 'prevote' });
    expect(ofType(allMsgs(drain(rn, s)), 'prevote-resp')).toMatchObject([
      { to: 'n2', reject: true, term: 2 },
      { to: 'n3', reject: false, term: 3 },
    ]);
  });

  it('a candidate with a stale log cannot win against up-to-date voters', () => {
    const c = cluster(
      PEERS,
      { preVote: false, checkQuorum: false },
      {
        n1: storageWith(PEERS, { terms: [1], hardState: { term: 1 } }),
        n2: storageWith(PEERS, { terms: [1, 1], hardState: { term: 1 } }),
        n3: storageWith(PEERS, { terms: [1, 1], hardState: { term: 1 } }),
      },
    );
    c.node('n1').rn.campaign();
    c.stabilize();
    expect(c.node('n1').rn.raft.role).toBe('follower');
    expect(c.leader()).toBeUndefined();
    c.node('n2').rn.campaign();
    c.stabilize();
    expect(c.node('n2').rn.raft.role).toBe('leader');
  });
});

describe('§5.2 at most one vote per term', () => {
  function voteTwice(bugs: { doubleVote?: boolean }): Message[] {
    const { rn, s } = fresh('n1', [], { checkQuorum: false });
    rn.raft.bugs = bugs;
    rn.step(voteReq('n2', 'n1', 1, 0, 0));
    rn.step(voteReq('n3', 'n1', 1, 0, 0));
    rn.step(voteReq('n2', 'n1', 1, 0, 0));
    return ofType(allMsgs(drain(rn, s)), 'vote-resp');
  }

  it('rejects a second candidate in the same term and grants the same candidate again', () => {
    expect(voteTwice({})).toMatchObject([
      { to: 'n2', reject: false },
      { to: 'n3', reject: true },
      { to: 'n2', reject: false },
    ]);
  });

  it('(has teeth) with the doubleVote fault the second candidate is granted too', () => {
    expect(voteTwice({ doubleVote: true })).toMatchObject([
      { to: 'n2', reject: false },
      { to: 'n3', reject: false },
      { to: 'n2', reject: false },
    ]);
  });

  it('the vote survives a restart', () => {
    const { rn, s } = fresh('n1', [], { checkQuorum: false });
    rn.step(voteReq('n2', 'n1', 1, 0, 0));
    drain(rn, s);
    const again = rawNode('n1', s, { checkQuorum: false });
    expect(again.raft.vote).toBe('n2');
    again.step(voteReq('n3', 'n1', 1, 0, 0));
    expect(ofType(allMsgs(drain(again, s)), 'vote-resp')).toMatchObject([{ to: 'n3', reject: true }]);
  });

  it('a follower that knows the leader of its term rejects other candidates of that term', () => {
    const { rn, s } = fresh('n1', [], { checkQuorum: false });
    rn.step({ type: 'heartbeat', from: 'n2', to: 'n1', term: 1, commit: 0, context: new Uint8Array(0) });
    rn.step(voteReq('n3', 'n1', 1, 5, 1));
    expect(ofType(allMsgs(drain(rn, s)), 'vote-resp')).toMatchObject([{ to: 'n3', reject: true }]);
  });

  it('a granted vote resets the election timer', () => {
    const { rn } = fresh('n1', [], { checkQuorum: false, electionTicks: T });
    for (let i = 0; i < T - 1; i++) rn.tick();
    rn.step(voteReq('n2', 'n1', 1, 0, 0));
    expect(rn.raft.electionElapsed).toBe(0);
  });
});

describe('PreVote (thesis §9.6)', () => {
  it('a node cut off and rejoining does not raise the term or depose a healthy leader', () => {
    const c = cluster(PEERS, { electionTicks: T });
    elect(c, 'n1');
    c.isolate('n3');
    c.tickAll(10 * T);
    const n3 = c.node('n3').rn.raft;
    expect(n3.role).toBe('pre-candidate');
    expect(n3.term).toBe(1);

    c.heal();
    c.tickAll(3 * T);
    for (const id of PEERS) {
      expect(c.node(id).rn.raft.term).toBe(1);
      expect(c.node(id).rn.raft.leader).toBe('n1');
    }
    expect(c.node('n1').rn.raft.role).toBe('leader');
  });

  it('(has teeth) without PreVote the same rejoin raises the cluster term', () => {
    const c = cluster(PEERS, { electionTicks: T, preVote: false });
    elect(c, 'n1');
    c.isolate('n3');
    c.tickAll(10 * T);
    expect(c.node('n3').rn.raft.term).toBeGreaterThan(1);
    c.heal();
    c.tickAll(3 * T);
    expect(c.node('n1').rn.raft.term).toBeGreaterThan(1);
  });

  it('a pre-vote changes neither the voter’s term nor its vote', () => {
    for (const granted of [true, false]) {
      const { rn, s } = fresh('n1', [1], { checkQuorum: false });
      rn.step(voteReq('n3', 'n1', 1, 1, 1));
      drain(rn, s);
      const before = s.hardStateNow();
      expect(before).toMatchObject({ term: 1, vote: 'n3' });
      rn.step({ ...voteReq('n2', 'n1', 4, granted ? 9 : 0, granted ? 1 : 0), type: 'prevote' });
      const out = drain(rn, s);
      expect(ofType(allMsgs(out), 'prevote-resp')).toMatchObject([{ to: 'n2', reject: !granted }]);
      expect(rn.raft.term).toBe(1);
      expect(rn.raft.vote).toBe('n3');
      expect(s.hardStateNow()).toEqual(before);
    }
  });

  it('a pre-candidate keeps its term and asks for the next one; a granted majority starts the real election', () => {
    const { rn, s } = fresh('n1', [], { preVote: true });
    rn.campaign();
    expect(rn.raft.role).toBe('pre-candidate');
    expect(rn.raft.term).toBe(0);
    const out = drain(rn, s);
    // Nothing durable changed, so the requests may go at once.
    expect(ofType(out.messages, 'prevote').map((m) => [m.to, m.term])).toEqual([
      ['n2', 1],
      ['n3', 1],
    ]);
    rn.step({ type: 'prevote-resp', from: 'n2', to: 'n1', term: 1, reject: false });
    expect(rn.raft.role).toBe('candidate');
    expect(rn.raft.term).toBe(1);
    expect(ofType(allMsgs(drain(rn, s)), 'vote')).toHaveLength(2);
  });

  it('a pre-candidate ignores real vote answers and steps down when a majority rejects', () => {
    const { rn } = fresh('n1', [1], { preVote: true, checkQuorum: false });
    rn.campaign();
    rn.step({ type: 'vote-resp', from: 'n2', to: 'n1', term: 1, reject: false });
    expect(rn.raft.role).toBe('pre-candidate');
    rn.step({ type: 'prevote-resp', from: 'n2', to: 'n1', term: 1, reject: true });
    rn.step({ type: 'prevote-resp', from: 'n3', to: 'n1', term: 1, reject: true });
    expect(rn.raft.role).toBe('follower');
    expect(rn.raft.term).toBe(1);
  });

  it('a pre-candidate rejected by a voter with a higher term adopts that term', () => {
    const { rn } = fresh('n1', [], { preVote: true });
    rn.campaign();
    rn.step({ type: 'prevote-resp', from: 'n2', to: 'n1', term: 6, reject: true });
    expect(rn.raft.role).toBe('follower');
    expect(rn.raft.term).toBe(6);
  });

  it('a pre-candidate hearing from a leader of its term becomes its follower', () => {
    const { rn } = fresh('n1', [1], { preVote: true, checkQuorum: false });
    rn.campaign();
    expect(rn.raft.role).toBe('pre-candidate');
    rn.step({ type: 'heartbeat', from: 'n2', to: 'n1', term: 1, commit: 0, context: new Uint8Array(0) });
    expect(rn.raft.role).toBe('follower');
    expect(rn.raft.leader).toBe('n2');
  });
});

describe('§6 CheckQuorum and the minimum election timeout', () => {
  it('a leader that has not heard from a majority within an election timeout steps down', () => {
    const c = cluster(PEERS, { electionTicks: T });
    const n1 = elect(c, 'n1');
    c.isolate('n1');
    const ticks = tickUntil(c, 'n1', () => n1.rn.raft.role !== 'leader', 5 * T);
    expect(ticks).toBeLessThanOrEqual(2 * T);
    expect(n1.rn.raft.role).toBe('follower');
    expect(n1.rn.raft.term).toBe(1);
  });

  it('(has teeth) without CheckQuorum an isolated leader stays leader', () => {
    const c = cluster(PEERS, { electionTicks: T, checkQuorum: false });
    const n1 = elect(c, 'n1');
    c.isolate('n1');
    c.tick('n1', 10 * T);
    expect(n1.rn.raft.role).toBe('leader');
  });

  it('a leader that hears from a majority stays leader', () => {
    const c = cluster(PEERS, { electionTicks: T });
    const n1 = elect(c, 'n1');
    c.isolate('n3');
    for (let i = 0; i < 10 * T; i++) {
      n1.rn.tick();
      c.node('n2').rn.tick();
      c.stabilize();
    }
    expect(n1.rn.raft.role).toBe('leader');
  });

  it('a follower that heard from a live leader within the election timeout ignores vote requests', () => {
    for (const type of ['vote', 'prevote'] as const) {
      const c = cluster(PEERS, { electionTicks: T });
      elect(c, 'n1');
      const n2 = c.node('n2');
      n2.rn.step({ ...voteReq('n3', 'n2', 2, 1, 1), type });
      expect(n2.rn.hasReady()).toBe(false);
      expect(n2.rn.raft.term).toBe(1);
      expect(n2.rn.raft.leader).toBe('n1');
    }
  });

  for (const role of ['follower', 'pre-candidate', 'candidate'] as const) {
    it(`a ${role} that hears from the leader of its term then ignores vote requests for an election timeout`, () => {
      // n1 has not heard from any leader for an election timeout (its lease, if any, is long over).
      const { rn, s } = fresh('n1', [1], { electionTicks: T, preVote: role === 'pre-candidate' });
      rn.raft.randomizedElectionTimeout = 100 * T;
      for (let i = 0; i < T; i++) rn.tick();
      if (role !== 'follower') rn.campaign();
      expect(rn.raft.role).toBe(role);
      const term = rn.raft.term;
      drain(rn, s);
      // The leader of this term reaches it (a heartbeat round n1 acknowledges: the leader
      // may count it toward its lease).
      rn.step({ type: 'heartbeat', from: 'n2', to: 'n1', term, commit: 0, context: new Uint8Array(8) });
      expect(rn.raft.role).toBe('follower');
      expect(ofType(allMsgs(drain(rn, s)), 'heartbeat-resp')).toHaveLength(1);
      rn.step(voteReq('n3', 'n1', term + 1, 1, 1));
      expect(rn.raft.term).toBe(term);
      expect(rn.raft.vote).not.toBe('n3');
      expect(ofType(allMsgs(drain(rn, s)), 'vote-resp')).toEqual([]);
    });
  }

  it('a leadership-transfer vote is not ignored', () => {
    const c = cluster(PEERS, { electionTicks: T });
    elect(c, 'n1');
    const n2 = c.node('n2');
    n2.rn.step({ ...voteReq('n3', 'n2', 2, 1, 1), transfer: true });
    expect(n2.rn.raft.term).toBe(2);
    expect(n2.rn.raft.vote).toBe('n3');
    expect(ofType(allMsgs(drain(n2.rn, n2.storage)), 'vote-resp')).toMatchObject([
      { to: 'n3', reject: false },
    ]);
  });

  it('once an election timeout passes without a leader the vote is granted', () => {
    const c = cluster(PEERS, { electionTicks: T });
    elect(c, 'n1');
    const n2 = c.node('n2');
    n2.rn.raft.randomizedElectionTimeout = 100 * T; // keep n2 from campaigning itself
    for (let i = 0; i < T - 1; i++) n2.rn.tick();
    n2.rn.step(voteReq('n3', 'n2', 2, 1, 1));
    expect(n2.rn.raft.term).toBe(1);
    n2.rn.tick();
    n2.rn.step(voteReq('n3', 'n2', 2, 1, 1));
    expect(n2.rn.raft.term).toBe(2);
    expect(n2.rn.raft.vote).toBe('n3');
  });

  it('without CheckQuorum the lease is not honoured', () => {
    const c = cluster(PEERS, { electionTicks: T, checkQuorum: false });
    elect(c, 'n1');
    const n2 = c.node('n2');
    n2.rn.step(voteReq('n3', 'n2', 2, 1, 1));
    expect(n2.rn.raft.vote).toBe('n3');
  });

  it('a leader ignores vote requests while it holds its lease', () => {
    const c = cluster(PEERS, { electionTicks: T });
    const n1 = elect(c, 'n1');
    n1.rn.step(voteReq('n3', 'n1', 5, 9, 9));
    expect(n1.rn.raft.role).toBe('leader');
    expect(n1.rn.raft.term).toBe(1);
  });

  it('a restarted server honours a lease it may have forgotten; a fresh server holds none', () => {
    const s = storageWith(PEERS, { terms: [1], hardState: { term: 1, commit: 1 } });
    const restarted = rawNode('n1', s, { electionTicks: T });
    restarted.raft.randomizedElectionTimeout = 100 * T;
    restarted.step(voteReq('n2', 'n1', 2, 1, 1));
    expect(restarted.raft.term).toBe(1);
    for (let i = 0; i < T; i++) restarted.tick();
    restarted.step(voteReq('n2', 'n1', 2, 1, 1));
    expect(restarted.raft.vote).toBe('n2');

    const { rn } = fresh('n1', [], { electionTicks: T });
    rn.step(voteReq('n2', 'n1', 1, 0, 0));
    expect(rn.raft.vote).toBe('n2');
  });
});
