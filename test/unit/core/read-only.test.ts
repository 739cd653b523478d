import { describe, expect, it } from 'vitest';
import { SeededRand } from '../../../src/core/rand.js';
import { NotLeaderError } from '../../../src/errors.js';
import type { Cluster, TestNode } from '../../support/cluster.js';
import {
  bytes,
  cluster,
  drain,
  elect,
  ofType,
  rawNode,
  settle,
  storageWith,
  type NodeCfg,
} from './helpers.js';

const PEERS = ['n1', 'n2', 'n3'];
const T = 10;

function lastIndexes(c: Cluster): number[] {
  return [...c.nodes.values()].flatMap((n) => [n.rn.raft.log.lastIndex(), n.storage.lastIndex()]);
}

/** A leader n1 whose lease was just confirmed by a heartbeat round. */
function leaderWithLease(cfg: NodeCfg = {}): { c: Cluster; n1: TestNode } {
  const c = cluster(PEERS, { electionTicks: T, ...cfg });
  const n1 = elect(c, 'n1');
  n1.rn.tick(); // a heartbeat round
  settle(c);
  return { c, n1 };
}

/** Asks n1 for a read and takes its next Ready: was it served at once, and did a round start? */
function readNow(n1: TestNode, ctx: string, lease: boolean): { served: boolean; round: boolean } {
  n1.rn.readIndex(bytes(ctx), { lease });
  const out = drain(n1.rn, n1.storage);
  return {
    served: out.readStates.some((r) => new TextDecoder().decode(r.context) === ctx),
    round: ofType(out.messages, 'heartbeat').length > 0,
  };
}

describe('§8 ReadIndex: linearizable reads without writing to the log', () => {
  it('a leader serves a read after one heartbeat round, at its commit index, and appends nothing', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    const before = lastIndexes(c);
    n1.rn.readIndex(bytes('r1'));
    c.processReady('n1');
    expect(n1.readStates).toEqual([]);
    expect(ofType(c.node('n2').inbox, 'heartbeat')).toHaveLength(1);
    settle(c);
    expect(n1.readStates).toEqual([{ index: n1.rn.raft.log.committed, context: 'r1' }]);
    expect(lastIndexes(c)).toEqual(before);
  });

  it('a leader cut off from the majority serves nothing', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    c.isolate('n1');
    n1.rn.readIndex(bytes('r1'));
    settle(c);
    expect(n1.readStates).toEqual([]);
    c.heal();
    n1.rn.tick(); // the next heartbeat round confirms it
    settle(c);
    expect(n1.readStates.map((r) => r.context)).toEqual(['r1']);
  });

  it('one follower answering is a majority of three', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    c.isolate('n3');
    n1.rn.readIndex(bytes('r1'));
    settle(c);
    expect(n1.readStates.map((r) => r.context)).toEqual(['r1']);
  });

  it('a read arriving while a round is in flight waits for the next round', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    n1.rn.readIndex(bytes('r1'));
    c.processReady('n1'); // round k is out
    n1.rn.readIndex(bytes('r2'));
    c.processReady('n1');
    expect(ofType(c.node('n2').inbox, 'heartbeat')).toHaveLength(1); // no new round yet
    c.deliver('n2');
    c.processReady('n2');
    c.deliver('n1'); // round k confirmed: r1 is served, round k+1 starts for r2
    c.processReady('n1');
    expect(n1.readStates.map((r) => r.context)).toEqual(['r1']);
    expect(ofType(c.node('n2').inbox, 'heartbeat')).toHaveLength(1);
    settle(c);
    expect(n1.readStates.map((r) => r.context)).toEqual(['r1', 'r2']);
  });

  it('reads that arrive while a round is in flight share the next round', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    n1.rn.readIndex(bytes('a'));
    c.processReady('n1'); // round 1 is out
    for (const r of ['b', 'c', 'd']) n1.rn.readIndex(bytes(r));
    let heartbeats = 0;
    settle(c, {
      onDeliver: (m) => {
        if (m.type === 'heartbeat') heartbeats++;
      },
    });
    expect(heartbeats).toBe(4); // rounds 1 and 2, to two followers each
    expect(n1.readStates.map((r) => r.context)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('a new leader serves reads only once an entry of its term is committed, at or after it', () => {
    const c = cluster(PEERS);
    const n1 = c.node('n1');
    n1.rn.campaign();
    settle(c, { hold: ['n2', 'n3'] });
    // Let the votes through, but not yet the appends.
    for (let i = 0; i < 4 && n1.rn.raft.role !== 'leader'; i++) {
      for (const id of ['n2', 'n3']) {
        c.deliver(id);
        c.processReady(id);
      }
      c.deliver('n1');
      c.processReady('n1');
    }
    expect(n1.rn.raft.role).toBe('leader');
    expect(n1.rn.raft.log.committed).toBe(0);
    n1.rn.readIndex(bytes('early'));
    c.processReady('n1');
    expect(n1.readStates).toEqual([]);
    settle(c);
    expect(n1.readStates).toEqual([{ index: 1, context: 'early' }]);
  });

  it('a follower’s read is forwarded to the leader and answered with the leader’s commit index', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    n1.rn.propose(bytes('x'));
    settle(c);
    const n2 = c.node('n2');
    n2.rn.readIndex(bytes('f1'));
    settle(c);
    expect(n2.readStates).toEqual([{ index: 2, context: 'f1' }]);
    expect(n1.readStates).toEqual([]);
  });

  it('a follower that knows no leader refuses a read', () => {
    const c = cluster(PEERS);
    expect(() => c.node('n2').rn.readIndex(bytes('r'))).toThrow(NotLeaderError);
  });

  it('a candidate refuses a read', () => {
    const c = cluster(PEERS, { preVote: false });
    c.node('n2').rn.campaign();
    expect(() => c.node('n2').rn.readIndex(bytes('r'))).toThrow(NotLeaderError);
  });

  it('a single-voter leader serves a read at once', () => {
    const s = storageWith(['n1']);
    const rn = rawNode('n1', s);
    rn.campaign();
    drain(rn, s);
    rn.readIndex(bytes('solo'));
    const out = drain(rn, s);
    expect(out.readStates).toEqual([{ index: 1, context: bytes('solo') }]);
    expect(out.messages).toEqual([]);
  });

  it('reads pending on a leader that loses its leadership are dropped', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    c.isolate('n1');
    n1.rn.readIndex(bytes('lost'));
    settle(c);
    n1.rn.step({ type: 'heartbeat', from: 'n2', to: 'n1', term: 9, commit: 0, context: new Uint8Array(0) });
    c.heal();
    settle(c);
    expect(n1.readStates).toEqual([]);
    expect(n1.rn.raft.readOnly.pending).toEqual([]);
  });
});

describe('§8 lease reads', () => {
  it('are served without a round while the lease is valid', () => {
    const { n1 } = leaderWithLease();
    expect(readNow(n1, 'l1', true)).toEqual({ served: true, round: false });
  });

  it('(has teeth) the same read without the lease option needs a round', () => {
    const { n1 } = leaderWithLease();
    expect(readNow(n1, 'l1', false)).toEqual({ served: false, round: true });
  });

  it('fall back to a round once the lease expired (electionTicks - leaseMarginTicks after the round began)', () => {
    const { c, n1 } = leaderWithLease({ leaseMarginTicks: 2 });
    c.isolate('n1');
    for (let i = 0; i < T - 2 - 1; i++) {
      n1.rn.tick();
      settle(c);
    }
    expect(readNow(n1, 'still', true)).toEqual({ served: true, round: false });
    n1.rn.tick();
    settle(c);
    c.heal();
    n1.rn.readIndex(bytes('expired'), { lease: true });
    settle(c);
    expect(n1.readStates.map((r) => r.context)).toEqual([]);
    n1.rn.tick(); // the next heartbeat round serves it
    settle(c);
    expect(n1.readStates.map((r) => r.context)).toEqual(['expired']);
  });

  it('are never served from a lease no round confirmed in this term', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    expect(readNow(n1, 'l', true)).toEqual({ served: false, round: true });
  });

  for (const transfer of [false, true]) {
    it(`are ${transfer ? 'disabled for the rest of the term after a TimeoutNow was sent' : 'served after a quiet spell with no transfer'}`, () => {
      const { c, n1 } = leaderWithLease();
      c.cutOneWay('n1', 'n2');
      if (transfer) {
        n1.rn.transferLeadership('n2');
        expect(ofType(drain(n1.rn, n1.storage).messages, 'timeout-now')).toHaveLength(1);
      }
      // The transfer times out (n2 never got the TimeoutNow) and n3 keeps confirming rounds.
      for (let i = 0; i < T; i++) {
        n1.rn.tick();
        settle(c);
      }
      expect(n1.rn.raft.role).toBe('leader');
      expect(n1.rn.status().leadTransferee).toBeUndefined();
      c.heal();
      n1.rn.tick();
      settle(c);
      expect(readNow(n1, 'after', true)).toEqual({ served: !transfer, round: transfer });
    });
  }

  it('are disabled while a transfer is in progress', () => {
    const { c, n1 } = leaderWithLease();
    c.cutOneWay('n1', 'n2');
    n1.rn.transferLeadership('n2');
    expect(readNow(n1, 'during', true)).toEqual({ served: false, round: true });
  });

  /**
   * The leader is cut off right after a confirmed round, and n2 (with a fast clock, say)
   * tries to campaign at every tick; n2 and n3 honour the lease or (teeth) do not. Returns the last tick at which n1 would still serve a lease
   * read and the tick at which a new leader appeared.
   */
  function leaseVersusElection(honourLease: boolean): { lastLeaseRead: number; newLeaderAt: number } {
    const c = cluster(['n1'], { electionTicks: T }, { n1: storageWith(PEERS) });
    for (const [i, id] of ['n2', 'n3'].entries()) {
      c.add(id, PEERS, { electionTicks: T, checkQuorum: honourLease, rand: new SeededRand(2 + i) });
    }
    const n1 = elect(c, 'n1');
    n1.rn.tick();
    settle(c);
    c.partition([['n1'], ['n2', 'n3']]);
    let lastLeaseRead = -1;
    for (let t = 0; t < 5 * T; t++) {
      if (n1.rn.raft.role === 'leader' && n1.rn.raft.leaseValid()) lastLeaseRead = t;
      if (c.node('n2').rn.raft.role !== 'leader') c.node('n2').rn.campaign();
      c.tickAll(1);
      if (['n2', 'n3'].some((id) => c.node(id).rn.raft.role === 'leader'))
        return { lastLeaseRead, newLeaderAt: t };
    }
    throw new Error('no new leader');
  }

  it('no other leader is elected while the old leader may still serve lease reads', () => {
    const { lastLeaseRead, newLeaderAt } = leaseVersusElection(true);
    expect(lastLeaseRead).toBeGreaterThan(0);
    expect(newLeaderAt).toBeGreaterThan(lastLeaseRead);
  });

  it('(has teeth) voters that did not honour the lease would let a new leader in while the lease holds', () => {
    const { lastLeaseRead, newLeaderAt } = leaseVersusElection(false);
    expect(newLeaderAt).toBeLessThanOrEqual(lastLeaseRead);
  });

  it('a voter that acknowledged the round as a pre-candidate honours the lease too (no stale lease read)', () => {
    const c = cluster(PEERS, { electionTicks: T });
    const n1 = elect(c, 'n1');
    const [n2, n3] = [c.node('n2'), c.node('n3')];
    for (const n of [n2, n3]) n.rn.raft.randomizedElectionTimeout = 100 * T; // we time the campaigns
    // n2 and n3 stop hearing from n1 for an election timeout; n3's pre-vote goes nowhere.
    c.partition([['n1'], ['n2'], ['n3']]);
    for (let i = 0; i < T; i++) {
      for (const n of c.nodes.values()) n.rn.tick();
      settle(c);
    }
    n3.rn.campaign();
    settle(c);
    expect(n3.rn.raft.role).toBe('pre-candidate');
    // n3 reconnects to n1 and acknowledges a heartbeat round: n1 now holds a lease.
    c.partition([['n1', 'n3'], ['n2']]);
    n1.rn.tick();
    settle(c);
    expect(n3.rn.raft.leader).toBe('n1');
    expect(n1.rn.raft.leaseValid()).toBe(true);
    // n1 is cut off again; n2, whose own timer may fire now, campaigns.
    c.partition([['n1'], ['n2', 'n3']]);
    n2.rn.campaign();
    settle(c);
    const elected = n2.rn.raft.role === 'leader';
    if (elected) {
      n2.rn.propose(bytes('write'));
      settle(c);
    }
    // n1 still believes in its lease: a read it serves must not miss what a new leader committed.
    n1.rn.readIndex(bytes('r'), { lease: true });
    const served = drain(n1.rn, n1.storage).readStates;
    const staleRead = elected && served.some((r) => r.index < n2.rn.raft.log.committed);
    expect({ elected, staleRead }).toEqual({ elected: false, staleRead: false });
  });

  it('are disabled without CheckQuorum', () => {
    const { n1 } = leaderWithLease({ checkQuorum: false });
    expect(readNow(n1, 'l', true)).toEqual({ served: false, round: true });
  });

  it('a follower’s lease read is answered by the leader from its lease', () => {
    const { c, n1 } = leaderWithLease();
    const n2 = c.node('n2');
    n2.rn.readIndex(bytes('fl'), { lease: true });
    let heartbeats = 0;
    settle(c, {
      onDeliver: (m) => {
        if (m.type === 'heartbeat') heartbeats++;
      },
    });
    expect(heartbeats).toBe(0);
    expect(n2.readStates).toEqual([{ index: n1.rn.raft.log.committed, context: 'fl' }]);
  });
});
