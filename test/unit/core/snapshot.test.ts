import { describe, expect, it } from 'vitest';
import type { Message, Snapshot } from '../../../src/core/messages.js';
import type { Cluster, TestNode } from '../../support/cluster.js';
import {
  allMsgs,
  bytes,
  cluster,
  conf,
  drain,
  elect,
  logTerms,
  ofType,
  rawNode,
  settle,
  storageWith,
  text,
} from './helpers.js';

const PEERS = ['n1', 'n2', 'n3'];
const C3 = conf(PEERS);

/** n1 leads; n3 missed five entries, which n1 then compacted into a snapshot at its commit index. */
function behindCompaction(): { c: Cluster; n1: TestNode; n3: TestNode; snapIndex: number } {
  const c = cluster(PEERS);
  const n1 = elect(c, 'n1');
  c.isolate('n3');
  for (let i = 0; i < 5; i++) n1.rn.propose(bytes(`cmd${i}`));
  settle(c);
  const snapIndex = n1.rn.raft.log.committed;
  expect(snapIndex).toBe(6);
  n1.storage.createSnapshot(
    { meta: { index: snapIndex, term: 1, conf: C3 }, data: bytes('state@6') },
    snapIndex,
  );
  c.heal();
  return { c, n1, n3: c.node('n3'), snapIndex };
}

function snapMsg(index: number, term: number, from = 'n2', msgTerm = 2): Message {
  const snapshot: Snapshot = { meta: { index, term, conf: C3 }, data: bytes(`state@${index}`) };
  return { type: 'snap', from, to: 'n1', term: msgTerm, snapshot };
}

describe('§7 log compaction: InstallSnapshot', () => {
  it('a follower behind the compacted log receives the snapshot, installs it and catches up', () => {
    const { c, n1, n3, snapIndex } = behindCompaction();
    const snaps: Message[] = [];
    n1.rn.tick();
    settle(c, {
      onDeliver: (m) => {
        if (m.type === 'snap') snaps.push(m);
      },
    });
    expect(snaps).toHaveLength(1);
    expect(n3.storage.snapshot().meta.index).toBe(snapIndex);
    expect(text(n3.storage.snapshot().data)).toBe('state@6');
    expect(n3.rn.raft.log.firstIndex()).toBe(snapIndex + 1);
    expect(n3.rn.raft.log.committed).toBe(snapIndex);
    expect(n3.rn.status().applied).toBe(snapIndex);
    expect(n1.rn.status().progress?.get('n3')).toMatchObject({ match: snapIndex, state: 'replicate' });
    n1.rn.reportSnapshot('n3', true); // late: already replicating, nothing changes
    expect(n1.rn.status().progress?.get('n3')?.state).toBe('replicate');

    n1.rn.propose(bytes('after'));
    settle(c);
    expect(n3.rn.raft.log.lastIndex()).toBe(7);
    expect(n3.applied.map((e) => text(e.data))).toContain('after');
  });

  it('a failed snapshot is retried after the next heartbeat', () => {
    const { c, n1, n3, snapIndex } = behindCompaction();
    n1.rn.tick();
    for (let i = 0; i < 20 && ofType(n3.inbox, 'snap').length === 0; i++) {
      for (const id of PEERS) while (c.processReady(id));
      if (ofType(n3.inbox, 'snap').length > 0) break;
      for (const id of PEERS) c.deliver(id);
    }
    expect(ofType(n3.inbox, 'snap')).toHaveLength(1);
    n3.inbox = []; // lost
    expect(n1.rn.status().progress?.get('n3')?.state).toBe('snapshot');
    n1.rn.reportSnapshot('n3', false);
    expect(n1.rn.status().progress?.get('n3')?.state).toBe('probe');
    settle(c);
    expect(n3.storage.snapshot().meta.index).toBe(0); // not yet: the probe waits
    n1.rn.tick();
    settle(c);
    expect(n3.storage.snapshot().meta.index).toBe(snapIndex);
    expect(logTerms(n3)).toEqual(logTerms(n1));
  });

  it('a follower whose log holds the snapshot’s last entry keeps its suffix and only commits', () => {
    const s = storageWith(PEERS, { terms: [1, 1, 1, 1], hardState: { term: 1, commit: 1 } });
    const rn = rawNode('n1', s, { checkQuorum: false });
    rn.step(snapMsg(2, 1));
    expect(rn.raft.log.lastIndex()).toBe(4);
    expect(rn.raft.log.committed).toBe(2);
    const out = drain(rn, s);
    expect(ofType(allMsgs(out), 'app-resp')).toMatchObject([{ reject: false, index: 2 }]);
    expect(s.snapshot().meta.index).toBe(0);
  });

  it('a stale snapshot is answered with the commit index and ignored', () => {
    const s = storageWith(PEERS, { terms: [1, 1, 1], hardState: { term: 2, commit: 3 } });
    const rn = rawNode('n1', s, { checkQuorum: false });
    rn.step(snapMsg(2, 1));
    expect(ofType(allMsgs(drain(rn, s)), 'app-resp')).toMatchObject([{ reject: false, index: 3 }]);
    expect(rn.raft.log.firstIndex()).toBe(1);
  });

  it('a snapshot replaces a conflicting log and its membership; it is applied before any entry', () => {
    const s = storageWith(['n1', 'n2'], { terms: [1, 1, 1], hardState: { term: 1, commit: 0 } });
    const rn = rawNode('n1', s, { checkQuorum: false, preVote: false });
    rn.campaign(); // a candidate hearing from the leader steps down and installs it
    rn.step(snapMsg(5, 2));
    expect(rn.raft.role).toBe('follower');
    expect(rn.raft.currentConf()).toEqual(C3);
    expect(rn.raft.promotable()).toBe(false); // not until the snapshot is persisted
    const rd = rn.ready();
    expect(rd.snapshot?.meta.index).toBe(5);
    expect(rd.committedEntries).toEqual([]);
    expect(rd.mustSync).toBe(true);
    expect(ofType(rd.persistedMessages, 'app-resp')).toMatchObject([{ to: 'n2', index: 5, reject: false }]);
    s.applySnapshot(rd.snapshot!);
    rn.advance(rd);
    expect(rn.raft.log.applied).toBe(5);
    expect(rn.raft.promotable()).toBe(true);
    expect(rn.raft.log.lastIndex()).toBe(5);
  });
});
