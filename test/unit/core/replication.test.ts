import { describe, expect, it } from 'vitest';
import { entrySize, type AppMsg } from '../../../src/core/messages.js';
import type { RawNode } from '../../../src/core/raw-node.js';
import type { MemoryStorage } from '../../../src/storage/memory-storage.js';
import {
  allMsgs,
  bytes,
  cluster,
  drain,
  elect,
  entries,
  entry,
  logOf,
  logTerms,
  ofType,
  rawNode,
  settle,
  storageWith,
  type MessageOf,
  type NodeCfg,
} from './helpers.js';

const PEERS = ['n1', 'n2', 'n3'];
/** Restarted nodes hold a lease; these tests elect by hand, so CheckQuorum is off. */
const MANUAL: NodeCfg = { preVote: false, checkQuorum: false };

function app(prevIndex: number, prevTerm: number, ents: AppMsg['entries'], commit = 0, term = 3): AppMsg {
  return { type: 'app', from: 'n2', to: 'n1', term, prevIndex, prevTerm, entries: ents, commit };
}

/** A follower n1 (leader n2) with the log `terms`, at term 3. */
function follower(terms: number[], commit = 0): { rn: RawNode; s: MemoryStorage } {
  const s = storageWith(PEERS, { terms, hardState: { term: 3, commit } });
  return { rn: rawNode('n1', s, MANUAL), s };
}

function appResps(rn: RawNode, s: MemoryStorage): MessageOf<'app-resp'>[] {
  return ofType(allMsgs(drain(rn, s)), 'app-resp');
}

/** Counts the append exchanges between the leader and `peer` while the cluster settles. */
function countExchanges(
  c: ReturnType<typeof cluster>,
  peer: string,
): { apps: number; resps: number; rejects: number } {
  const n = { apps: 0, resps: 0, rejects: 0 };
  settle(c, {
    onDeliver: (m) => {
      if (m.type === 'app' && m.to === peer) n.apps++;
      if (m.type === 'app-resp' && m.from === peer) {
        n.resps++;
        if (m.reject) n.rejects++;
      }
    },
  });
  return n;
}

describe('§5.3 AppendEntries consistency check (follower)', () => {
  it('rejects an append whose previous entry it does not hold, hinting its last index', () => {
    const { rn, s } = follower([1, 1]);
    rn.step(app(3, 1, [entry(4, 1)]));
    expect(appResps(rn, s)).toMatchObject([{ reject: true, index: 3, hintIndex: 2, hintTerm: 1 }]);
    expect(logTerms(rn)).toEqual([1, 1]);
  });

  it('rejects an append whose previous entry has another term, hinting the last index of a term not above it', () => {
    const { rn, s } = follower([1, 2, 2, 2]);
    rn.step(app(4, 1, [entry(5, 3)]));
    expect(appResps(rn, s)).toMatchObject([{ reject: true, index: 4, hintIndex: 1, hintTerm: 1 }]);
    expect(logTerms(rn)).toEqual([1, 2, 2, 2]);
  });

  it('appends after a matching entry and acknowledges the last new index', () => {
    const { rn, s } = follower([1, 1]);
    rn.step(app(2, 1, [entry(3, 3), entry(4, 3)], 3));
    expect(appResps(rn, s)).toMatchObject([{ reject: false, index: 4 }]);
    expect(logTerms(rn)).toEqual([1, 1, 3, 3]);
    expect(s.allEntries().map((e) => e.term)).toEqual([1, 1, 3, 3]);
    expect(rn.raft.log.committed).toBe(3);
  });

  it('truncates a conflicting suffix, in memory and in storage', () => {
    const { rn, s } = follower([1, 1, 2, 2, 2]);
    rn.step(app(2, 1, [entry(3, 3)]));
    expect(appResps(rn, s)).toMatchObject([{ reject: false, index: 3 }]);
    expect(logTerms(rn)).toEqual([1, 1, 3]);
    expect(s.allEntries().map((e) => e.term)).toEqual([1, 1, 3]);
  });

  it('never truncates a matching suffix on a stale or reordered append', () => {
    const { rn, s } = follower([1, 3, 3, 3, 3]);
    // An older append of this same leader arrives late: it carries a prefix of what we hold.
    rn.step(app(1, 1, [entry(2, 3), entry(3, 3)]));
    expect(appResps(rn, s)).toMatchObject([{ reject: false, index: 3 }]);
    expect(logTerms(rn)).toEqual([1, 3, 3, 3, 3]);
    expect(s.allEntries()).toHaveLength(5);
  });

  it('advances commit to min(leader commit, last new entry), never beyond what matches', () => {
    const { rn, s } = follower([1, 1, 2, 2, 2]);
    rn.step(app(1, 1, [entry(2, 1)], 100));
    // Entries 3..5 may conflict with the leader: only index 2 is known to match.
    expect(rn.raft.log.committed).toBe(2);
    drain(rn, s);
    expect(s.hardStateNow().commit).toBe(2);
  });

  it('answers an append below its commit index with the commit index', () => {
    const { rn, s } = follower([1, 1, 1], 3);
    rn.step(app(1, 1, [entry(2, 1)]));
    expect(appResps(rn, s)).toMatchObject([{ reject: false, index: 3 }]);
  });

  it('an empty append is a consistency probe', () => {
    const { rn, s } = follower([1, 1]);
    rn.step(app(2, 1, []));
    rn.step(app(2, 2, []));
    expect(appResps(rn, s)).toMatchObject([
      { reject: false, index: 2 },
      { reject: true, index: 2 },
    ]);
  });

  it('a heartbeat advances commit, but not beyond the last index', () => {
    const { rn, s } = follower([1, 1, 1]);
    rn.step({ type: 'heartbeat', from: 'n2', to: 'n1', term: 3, commit: 2, context: new Uint8Array(0) });
    expect(rn.raft.log.committed).toBe(2);
    rn.step({ type: 'heartbeat', from: 'n2', to: 'n1', term: 3, commit: 9, context: new Uint8Array(0) });
    expect(rn.raft.log.committed).toBe(3);
    const out = drain(rn, s);
    expect(ofType(out.messages, 'heartbeat-resp')).toHaveLength(2);
    expect(out.committed.map((e) => e.index)).toEqual([1, 2, 3]);
  });
});

describe('§5.3 fast backtracking with a conflict hint (leader)', () => {
  const N = 10_000;

  function run(leaderTerms: number[], followerTerms: number[], leaderTerm: number) {
    const hs = { term: leaderTerm, commit: 0 };
    const c = cluster(PEERS, MANUAL, {
      n1: storageWith(PEERS, { terms: leaderTerms, hardState: hs }),
      n2: storageWith(PEERS, { terms: followerTerms, hardState: { term: followerTerms.at(-1) ?? 0 } }),
      n3: storageWith(PEERS, { terms: leaderTerms, hardState: hs }),
    });
    const n1 = c.node('n1');
    n1.rn.campaign();
    const counts = countExchanges(c, 'n2');
    expect(n1.rn.raft.role).toBe('leader');
    expect(logTerms(c.node('n2'))).toEqual(logTerms(n1));
    // The commit index reaches it with the next heartbeat.
    n1.rn.tick();
    settle(c);
    expect(c.node('n2').rn.raft.log.committed).toBe(n1.rn.raft.log.lastIndex());
    return counts;
  }

  it(`a follower ${N} entries behind converges in a handful of round trips`, () => {
    const counts = run(new Array<number>(N + 5).fill(1), [1, 1, 1, 1, 1], 1);
    expect(counts.rejects).toBe(1);
    expect(counts.apps).toBeLessThan(10);
    expect(counts.resps).toBeLessThan(10);
  });

  it(`a follower with ${N} conflicting entries of another term converges in a handful of round trips`, () => {
    const leader = [1, ...new Array<number>(N).fill(3)];
    const follower = [1, ...new Array<number>(N).fill(2)];
    const counts = run(leader, follower, 3);
    expect(counts.rejects).toBe(1);
    expect(counts.apps).toBeLessThan(10);
  });

  it(`a follower whose ${N} conflicting entries span several terms converges in a handful of round trips`, () => {
    const leader = [1, ...new Array<number>(2000).fill(2), ...new Array<number>(N - 2000).fill(6)];
    const follower = [
      1,
      ...new Array<number>(2000).fill(2),
      ...new Array<number>(2000).fill(3),
      ...new Array<number>(2000).fill(4),
      ...new Array<number>(N - 6000 + 500).fill(5),
    ];
    const counts = run(leader, follower, 6);
    expect(counts.rejects).toBeLessThanOrEqual(2);
    expect(counts.apps).toBeLessThan(10);
  });

  it(`a follower with ${N} extra entries of an older term is truncated in one round trip`, () => {
    const leader = new Array<number>(100).fill(1);
    const follower = [...new Array<number>(100).fill(1), ...new Array<number>(N).fill(2)];
    const counts = run(leader, follower, 3);
    expect(counts.rejects).toBe(0);
    expect(counts.apps).toBeLessThan(5);
  });

  it('(has teeth) without the hint the leader would step back one entry per round trip', () => {
    // The same rejection with the hint stripped leaves the leader one index back only.
    const c = cluster(PEERS, MANUAL, {
      n1: storageWith(PEERS, { terms: new Array<number>(50).fill(1), hardState: { term: 1 } }),
      n2: storageWith(PEERS, { terms: [1], hardState: { term: 1 } }),
      n3: storageWith(PEERS, { terms: new Array<number>(50).fill(1), hardState: { term: 1 } }),
    });
    const n1 = c.node('n1');
    n1.rn.campaign();
    let rejects = 0;
    for (let round = 0; round < 1000; round++) {
      let busy = false;
      for (const id of PEERS) while (c.processReady(id)) busy = true;
      for (const n of c.nodes.values()) {
        if (n.inbox.length === 0) continue;
        n.inbox = n.inbox.map((m) => {
          if (m.type !== 'app-resp' || !m.reject) return m;
          rejects++;
          return { ...m, hintIndex: m.index - 1, hintTerm: 0 };
        });
        c.deliver(n.id);
        busy = true;
      }
      if (!busy) break;
    }
    expect(logTerms(c.node('n2'))).toEqual(logTerms(n1));
    expect(rejects).toBe(49);
  });
});

describe('§5.3 replication flow control (leader)', () => {
  function replicating(cfg: NodeCfg) {
    const c = cluster(PEERS, cfg);
    const n1 = elect(c, 'n1');
    expect(n1.rn.status().progress?.get('n2')?.state).toBe('replicate');
    return { c, n1 };
  }

  it('pipelines: with maxInflightMsgs=4 and a silent follower, at most 4 appends are outstanding', () => {
    const { c, n1 } = replicating({ maxInflightMsgs: 4 });
    for (let i = 0; i < 10; i++) {
      n1.rn.propose(bytes(`cmd${i}`));
      settle(c, { hold: ['n2'] });
    }
    // (Empty appends that only carry the new commit index do not occupy the window.)
    const held = ofType(c.node('n2').inbox, 'app').filter((m) => m.entries.length > 0);
    expect(held).toHaveLength(4);
    expect(held.every((m) => m.entries.length === 1)).toBe(true);
    expect(n1.rn.status().progress?.get('n2')?.inflight).toBe(4);
    // Meanwhile the other follower keeps the cluster committing.
    expect(n1.rn.raft.log.committed).toBe(11);

    settle(c);
    expect(logTerms(c.node('n2'))).toEqual(logTerms(n1));
    expect(n1.rn.status().progress?.get('n2')?.inflight).toBe(0);
  });

  it('(has teeth) a larger window lets all 10 appends go out', () => {
    const { c, n1 } = replicating({ maxInflightMsgs: 256 });
    for (let i = 0; i < 10; i++) {
      n1.rn.propose(bytes(`cmd${i}`));
      settle(c, { hold: ['n2'] });
    }
    expect(ofType(c.node('n2').inbox, 'app').filter((m) => m.entries.length > 0)).toHaveLength(10);
  });

  it('bounds the bytes in flight with maxInflightBytes', () => {
    const { c, n1 } = replicating({ maxInflightBytes: 100 });
    for (let i = 0; i < 10; i++) {
      n1.rn.propose(new Uint8Array(26)); // 50 bytes with the entry overhead
      settle(c, { hold: ['n2'] });
    }
    expect(ofType(c.node('n2').inbox, 'app').filter((m) => m.entries.length > 0)).toHaveLength(2);
    settle(c);
    expect(logTerms(c.node('n2'))).toEqual(logTerms(n1));
  });

  it('a heartbeat answer frees a full window so that a lost append is resent', () => {
    const { c, n1 } = replicating({ maxInflightMsgs: 2 });
    for (let i = 0; i < 4; i++) {
      n1.rn.propose(bytes(`cmd${i}`));
      settle(c, { hold: ['n2'] });
    }
    c.node('n2').inbox = []; // the appends were lost
    n1.rn.tick(); // heartbeat
    settle(c);
    expect(logTerms(c.node('n2'))).toEqual(logTerms(n1));
  });

  it('in probe state the leader sends one append and waits for an answer', () => {
    const c = cluster(PEERS);
    const n1 = c.node('n1');
    n1.rn.campaign();
    settle(c, { hold: ['n2'] });
    expect(n1.rn.status().progress?.get('n2')?.state).toBe('probe');
    for (let i = 0; i < 5; i++) {
      n1.rn.propose(bytes(`cmd${i}`));
      settle(c, { hold: ['n2'] });
    }
    // The vote request and a single probe.
    expect(ofType(c.node('n2').inbox, 'app')).toHaveLength(1);
    n1.rn.tick(); // heartbeat: its answer unpauses the probe
    settle(c);
    expect(logTerms(c.node('n2'))).toEqual(logTerms(n1));
    expect(n1.rn.status().progress?.get('n2')?.state).toBe('replicate');
  });

  it('an unreachable follower drops back to probing', () => {
    const { n1 } = replicating({});
    n1.rn.reportUnreachable('n2');
    expect(n1.rn.status().progress?.get('n2')?.state).toBe('probe');
    n1.rn.reportUnreachable('n9'); // unknown peers are ignored
  });

  it('caps each append at maxSizePerMsg bytes (but always sends at least one entry)', () => {
    const data = 'x'.repeat(20); // 44 bytes per entry: two fit in 100
    const log = [...entries([1]), ...Array.from({ length: 20 }, (_, i) => entry(i + 2, 1, data))];
    const big = entry(22, 1, 'y'.repeat(500));
    log.push(big);
    const hs = { term: 1 };
    const c = cluster(
      PEERS,
      { ...MANUAL, maxSizePerMsg: 100 },
      {
        n1: storageWith(PEERS, { log, hardState: hs }),
        n2: storageWith(PEERS, { terms: [1], hardState: hs }),
        n3: storageWith(PEERS, { log, hardState: hs }),
      },
    );
    const n1 = c.node('n1');
    n1.rn.campaign();
    const sent: AppMsg[] = [];
    settle(c, {
      onDeliver: (m) => {
        if (m.type === 'app' && m.to === 'n2') sent.push(m);
      },
    });
    const sizes = sent.map((m) => m.entries.reduce((s, e) => s + entrySize(e), 0));
    for (const m of sent) {
      const size = m.entries.reduce((s, e) => s + entrySize(e), 0);
      if (m.entries.length > 1) expect(size).toBeLessThanOrEqual(100);
    }
    expect(sent.some((m) => m.entries.length === 2)).toBe(true);
    expect(sent.some((m) => m.entries.length === 1 && m.entries[0]!.index === 22)).toBe(true);
    expect(Math.max(...sizes)).toBe(entrySize(big));
    expect(logOf(c.node('n2'))).toEqual(logOf(n1));
  });

  it('heartbeats carry the commit index, never beyond what the follower holds', () => {
    const { c, n1 } = replicating({ heartbeatTicks: 1 });
    for (let i = 0; i < 3; i++) {
      n1.rn.propose(bytes(`cmd${i}`));
      settle(c, { hold: ['n3'] });
    }
    c.node('n3').inbox = [];
    expect(n1.rn.raft.log.committed).toBe(4);
    n1.rn.tick();
    const hbs = ofType(drain(n1.rn, n1.storage).messages, 'heartbeat');
    expect(hbs.map((m) => [m.to, m.commit])).toEqual([
      ['n2', 4],
      ['n3', 1],
    ]);
  });
});

describe('§5.3 Figure 7: each follower log converges to the new leader’s', () => {
  // The leader (term 8) holds entries of terms 1 1 1 4 4 5 5 6 6 6.
  const LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const FOLLOWERS: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, terms] of Object.entries(FOLLOWERS)) {
    it(`(${name}) ${terms.join(' ')}`, () => {
      const hs = { term: 7 };
      const c = cluster(PEERS, MANUAL, {
        n1: storageWith(PEERS, { terms: LEADER, hardState: hs }),
        n2: storageWith(PEERS, { terms, hardState: { term: Math.max(...terms) } }),
        n3: storageWith(PEERS, { terms: LEADER, hardState: hs }),
      });
      const n1 = c.node('n1');
      n1.rn.campaign();
      const counts = countExchanges(c, 'n2');
      expect(n1.rn.raft.role).toBe('leader');
      expect(n1.rn.raft.term).toBe(8);
      const n2 = c.node('n2');
      expect(logTerms(n2)).toEqual([...LEADER, 8]);
      expect(logOf(n2)).toEqual(logOf(n1));
      expect(n2.storage.allEntries()).toEqual(logOf(n1));
      n1.rn.tick(); // the heartbeat carries the commit index
      settle(c);
      expect(n2.rn.raft.log.committed).toBe(11);
      expect(counts.rejects).toBeLessThanOrEqual(1);
    });
  }
});
