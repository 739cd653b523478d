import { describe, expect, it } from 'vitest';
import { NotLeaderError } from '../../../src/errors.js';
import type { Message } from '../../../src/core/messages.js';
import { bytes, cluster, codeOf, drain, elect, logOf, ofType, settle, storageWith } from './helpers.js';

const PEERS = ['n1', 'n2', 'n3'];
const T = 10;

describe('leadership transfer (thesis §3.10, TimeoutNow)', () => {
  it('hands leadership to an up-to-date follower at once', () => {
    const c = cluster(PEERS, { electionTicks: T });
    const n1 = elect(c, 'n1');
    n1.rn.transferLeadership('n2');
    const out = drain(n1.rn, n1.storage);
    expect(ofType(out.messages, 'timeout-now')).toEqual([
      { type: 'timeout-now', from: 'n1', to: 'n2', term: 1 },
    ]);
    c.node('n2').inbox.push(...out.messages);
    settle(c);
    expect(c.node('n2').rn.raft.role).toBe('leader');
    expect(c.node('n2').rn.raft.term).toBe(2);
    for (const id of ['n1', 'n3']) {
      expect(c.node(id).rn.raft.role).toBe('follower');
      expect(c.node(id).rn.raft.leader).toBe('n2');
    }
  });

  it('first catches a lagging follower up, then sends TimeoutNow', () => {
    const c = cluster(PEERS, { electionTicks: T });
    const n1 = elect(c, 'n1');
    for (let i = 0; i < 3; i++) {
      n1.rn.propose(bytes(`cmd${i}`));
      settle(c, { hold: ['n3'] });
    }
    c.node('n3').inbox = []; // lost: n3 lags by three entries
    n1.rn.transferLeadership('n3');
    const first = drain(n1.rn, n1.storage).messages;
    expect(ofType(first, 'timeout-now')).toEqual([]);
    expect(ofType(first, 'app', 'n3')).toHaveLength(1);
    c.node('n3').inbox.push(...ofType(first, 'app', 'n3'));

    const seen: Message[] = [];
    settle(c, { onDeliver: (m) => seen.push(m) });
    const timeoutAt = seen.findIndex((m) => m.type === 'timeout-now');
    const caughtUpAt = seen.findIndex(
      (m) => m.type === 'app-resp' && m.from === 'n3' && !m.reject && m.index === 4,
    );
    expect(caughtUpAt).toBeGreaterThanOrEqual(0);
    expect(timeoutAt).toBeGreaterThan(caughtUpAt);
    const n3 = c.node('n3');
    expect(n3.rn.raft.role).toBe('leader');
    expect(logOf(n3).map((e) => e.term)).toEqual([1, 1, 1, 1, 2]);
  });

  it('refuses proposals while a transfer is in progress, and aborts it after an election timeout', () => {
    const c = cluster(PEERS, { electionTicks: T });
    const n1 = elect(c, 'n1');
    c.cutOneWay('n1', 'n2'); // the TimeoutNow is lost
    n1.rn.transferLeadership('n2');
    expect(n1.rn.status().leadTransferee).toBe('n2');
    expect(codeOf(() => n1.rn.propose(bytes('x')))).toBe('TRANSFER_IN_PROGRESS');
    for (let i = 0; i < T - 1; i++) {
      n1.rn.tick();
      settle(c);
    }
    expect(n1.rn.status().leadTransferee).toBe('n2');
    expect(codeOf(() => n1.rn.propose(bytes('x')))).toBe('TRANSFER_IN_PROGRESS');
    n1.rn.tick();
    settle(c);
    expect(n1.rn.status().leadTransferee).toBeUndefined();
    expect(n1.rn.raft.role).toBe('leader');
    expect(n1.rn.propose(bytes('y'))).toEqual({ index: 2, term: 1 });
  });

  it('forwarded proposals are dropped quietly during a transfer', () => {
    const c = cluster(PEERS, { forwardProposals: true });
    const n1 = elect(c, 'n1');
    c.cutOneWay('n1', 'n2');
    n1.rn.transferLeadership('n2');
    c.node('n3').rn.propose(bytes('fwd'));
    settle(c);
    expect(n1.rn.raft.log.lastIndex()).toBe(1);
  });

  it('a follower forwards a transfer request to its leader', () => {
    const c = cluster(PEERS);
    elect(c, 'n1');
    c.node('n3').rn.transferLeadership('n2');
    settle(c);
    expect(c.node('n2').rn.raft.role).toBe('leader');
  });

  it('a follower that knows no leader, or a candidate, refuses a transfer request', () => {
    const c = cluster(PEERS, { preVote: false });
    expect(() => c.node('n2').rn.transferLeadership('n3')).toThrow(NotLeaderError);
    c.node('n2').rn.campaign();
    expect(() => c.node('n2').rn.transferLeadership('n3')).toThrow(NotLeaderError);
  });

  it('transfer to itself, or again to the same transferee, changes nothing', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    n1.rn.transferLeadership('n1');
    expect(n1.rn.status().leadTransferee).toBeUndefined();
    c.cutOneWay('n1', 'n2');
    n1.rn.transferLeadership('n2');
    drain(n1.rn, n1.storage);
    n1.rn.transferLeadership('n2');
    expect(ofType(drain(n1.rn, n1.storage).messages, 'timeout-now')).toEqual([]);
    // A new transferee replaces the old one.
    n1.rn.transferLeadership('n3');
    expect(n1.rn.status().leadTransferee).toBe('n3');
  });

  it('refuses to transfer to a learner or an unknown server', () => {
    const ids = ['n1', 'n2', 'n3'];
    const s = storageWith(['n1', 'n2'], { learners: ['n3'] });
    const c = cluster(
      ids,
      {},
      {
        n1: s,
        n2: storageWith(['n1', 'n2'], { learners: ['n3'] }),
        n3: storageWith(['n1', 'n2'], { learners: ['n3'] }),
      },
    );
    const n1 = elect(c, 'n1');
    expect(codeOf(() => n1.rn.transferLeadership('n3'))).toBe('BAD_REQUEST');
    expect(codeOf(() => n1.rn.transferLeadership('n9'))).toBe('BAD_REQUEST');
    // Forwarded requests for them are dropped quietly.
    n1.rn.step({ type: 'transfer-leader', from: 'n2', to: 'n1', term: 0, transferee: 'n9' });
    expect(n1.rn.status().leadTransferee).toBeUndefined();
  });

  it('a TimeoutNow from anyone but the current leader is ignored', () => {
    const c = cluster(PEERS);
    elect(c, 'n1');
    const n2 = c.node('n2');
    n2.rn.step({ type: 'timeout-now', from: 'n3', to: 'n2', term: 1 });
    expect(n2.rn.raft.role).toBe('follower');
    expect(n2.rn.raft.term).toBe(1);
  });

  it('the transferee skips PreVote and its voters ignore their leader lease', () => {
    const c = cluster(PEERS, { preVote: true, checkQuorum: true });
    const n1 = elect(c, 'n1');
    n1.rn.transferLeadership('n2');
    c.processReady('n1');
    c.deliver('n2');
    const rd = drain(c.node('n2').rn, c.node('n2').storage);
    const votes = ofType(rd.persisted, 'vote');
    expect(votes.map((m) => m.transfer)).toEqual([true, true]);
    expect(ofType(rd.persisted, 'prevote')).toEqual([]);
  });
});
