import { describe, expect, it } from 'vitest';
import {
  allMembers,
  applyConfChange,
  confEquals,
  decodeConfChange,
  encodeConfChange,
  isJoint,
  isSimpleChange,
  isVoter,
} from '../../../src/core/membership.js';
import type { ConfChange, ConfChangeOp, ConfState } from '../../../src/core/messages.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import {
  bytes,
  cluster,
  codeOf,
  conf,
  confEntry,
  elect,
  logTerms,
  ofType,
  rawNode,
  settle,
  storageWith,
} from './helpers.js';

const C3 = conf(['n1', 'n2', 'n3']);

function cc(...items: [ConfChangeOp, string][]): ConfChange {
  return { changes: items.map(([op, node]) => ({ op, node })) };
}

describe('membership: the wire form of a change', () => {
  it('round-trips through a conf entry', () => {
    const change: ConfChange = { changes: [{ op: 'add-voter', node: 'n4' }], joint: true };
    expect(decodeConfChange(encodeConfChange(change))).toEqual(change);
  });

  it('refuses malformed data with BAD_REQUEST', () => {
    for (const raw of ['{nope', '42', 'null', '{"changes":3}', '{}']) {
      expect(codeOf(() => decodeConfChange(bytes(raw)))).toBe('BAD_REQUEST');
    }
  });
});

describe('membership: applyConfChange', () => {
  it('adds or removes one voter on the simple path', () => {
    expect(applyConfChange(C3, cc(['add-voter', 'n4']))).toEqual(conf(['n1', 'n2', 'n3', 'n4']));
    expect(applyConfChange(C3, cc(['remove', 'n2']))).toEqual(conf(['n1', 'n3']));
    expect(isSimpleChange(C3, cc(['add-voter', 'n4']))).toBe(true);
  });

  it('adds, promotes and demotes learners on the simple path', () => {
    const withLearner = applyConfChange(C3, cc(['add-learner', 'n4']));
    expect(withLearner).toEqual(conf(['n1', 'n2', 'n3'], ['n4']));
    expect(applyConfChange(withLearner, cc(['add-voter', 'n4']))).toEqual(conf(['n1', 'n2', 'n3', 'n4']));
    expect(applyConfChange(withLearner, cc(['remove', 'n4']))).toEqual(C3);
    expect(applyConfChange(C3, cc(['add-learner', 'n3']))).toEqual(conf(['n1', 'n2'], ['n3']));
  });

  it('a change that touches no voter, or re-adds a voter, is simple and harmless', () => {
    expect(applyConfChange(C3, cc(['add-voter', 'n2']))).toEqual(C3);
    expect(applyConfChange(C3, cc(['remove', 'n9']))).toEqual(C3);
    expect(applyConfChange(C3, { changes: [] })).toEqual(C3);
  });

  it('more than one voter change enters joint consensus: C_old,new', () => {
    const joint = applyConfChange(C3, cc(['add-voter', 'n4'], ['remove', 'n1']));
    expect(joint).toEqual({
      voters: ['n2', 'n3', 'n4'],
      outgoing: ['n1', 'n2', 'n3'],
      learners: [],
      learnersNext: [],
    });
    expect(isJoint(joint)).toBe(true);
    expect(isVoter(joint, 'n1')).toBe(true); // still a voter of C_old
    expect(isVoter(joint, 'n4')).toBe(true);
    expect(isSimpleChange(C3, cc(['add-voter', 'n4'], ['remove', 'n1']))).toBe(false);
  });

  it('joint: true forces joint consensus for a single change', () => {
    const joint = applyConfChange(C3, { ...cc(['add-voter', 'n4']), joint: true });
    expect(joint.outgoing).toEqual(['n1', 'n2', 'n3']);
    expect(joint.voters).toEqual(['n1', 'n2', 'n3', 'n4']);
  });

  it('leaving joint keeps C_new; a demoted voter waits in learnersNext until then', () => {
    const joint = applyConfChange(C3, { ...cc(['add-learner', 'n3'], ['add-learner', 'n5']), joint: true });
    expect(joint).toEqual({
      voters: ['n1', 'n2'],
      outgoing: ['n1', 'n2', 'n3'],
      learners: ['n5'],
      learnersNext: ['n3'],
    });
    expect(allMembers(joint).sort()).toEqual(['n1', 'n2', 'n3', 'n5']);
    const left = applyConfChange(joint, { changes: [], leaveJoint: true });
    expect(left).toEqual({ voters: ['n1', 'n2'], outgoing: [], learners: ['n5', 'n3'], learnersNext: [] });
    expect(isSimpleChange(joint, cc(['add-voter', 'n9']))).toBe(false);
  });

  it('refuses changes that cannot apply', () => {
    const joint = applyConfChange(C3, cc(['add-voter', 'n4'], ['add-voter', 'n5']));
    const cases: [string, ConfState, ConfChange][] = [
      ['leave when not joint', C3, { changes: [], leaveJoint: true }],
      ['enter joint while joint', joint, cc(['add-voter', 'n6'])],
      ['an empty node name', C3, cc(['add-voter', ''])],
      ['a non-string node', C3, { changes: [{ op: 'add-voter', node: 7 as unknown as string }] }],
      ['an unknown op', C3, { changes: [{ op: 'promote' as ConfChangeOp, node: 'n1' }] }],
      ['no voter left', conf(['n1']), cc(['remove', 'n1'])],
      ['no voter left (joint)', C3, cc(['remove', 'n1'], ['remove', 'n2'], ['remove', 'n3'])],
    ];
    for (const [, c, change] of cases) expect(codeOf(() => applyConfChange(c, change))).toBe('BAD_REQUEST');
  });

  it('confEquals compares as sets', () => {
    expect(confEquals(conf(['a', 'b'], ['c']), conf(['b', 'a'], ['c']))).toBe(true);
    expect(confEquals(conf(['a', 'b']), conf(['a', 'c']))).toBe(false);
    expect(confEquals(conf(['a']), conf(['a', 'b']))).toBe(false);
    expect(confEquals(C3, applyConfChange(C3, { ...cc(['add-voter', 'n4']), joint: true }))).toBe(false);
  });
});

describe('§6 cluster membership changes', () => {
  it('a single voter joins on the simple path: it takes effect when appended, and the newcomer catches up', () => {
    const c = cluster(['n1', 'n2', 'n3']);
    const n1 = elect(c, 'n1');
    c.add('n4', [], {}, storageWith(['n1', 'n2', 'n3'])); // told the founding membership
    n1.rn.proposeConfChange(cc(['add-voter', 'n4']));
    expect(n1.rn.raft.currentConf()).toEqual(conf(['n1', 'n2', 'n3', 'n4']));
    settle(c);
    for (const n of c.nodes.values()) {
      expect(n.rn.raft.currentConf()).toEqual(conf(['n1', 'n2', 'n3', 'n4']));
      expect(logTerms(n)).toEqual([1, 1]);
    }
    expect(n1.rn.raft.log.committed).toBe(2);
  });

  it('joint consensus: C_old,new commits on both majorities, then the leader appends C_new', () => {
    const c = cluster(['n1', 'n2', 'n3']);
    const n1 = elect(c, 'n1');
    c.add('n4', [], {}, storageWith(['n1', 'n2', 'n3']));
    c.add('n5', [], {}, storageWith(['n1', 'n2', 'n3']));
    c.partition([
      ['n1', 'n2', 'n3'],
      ['n4', 'n5'],
    ]);
    // Replace n2 and n3 by n4 and n5.
    n1.rn.proposeConfChange(cc(['remove', 'n2'], ['remove', 'n3'], ['add-voter', 'n4'], ['add-voter', 'n5']));
    expect(n1.rn.raft.currentConf()).toEqual({
      voters: ['n1', 'n4', 'n5'],
      outgoing: ['n1', 'n2', 'n3'],
      learners: [],
      learnersNext: [],
    });
    settle(c);
    // A majority of C_old holds it, but no majority of C_new: not committed.
    expect(n1.rn.raft.log.committed).toBe(1);
    expect(c.node('n2').rn.raft.log.lastIndex()).toBe(2);

    c.heal();
    n1.rn.tick();
    settle(c);
    expect(n1.rn.raft.log.committed).toBe(3);
    expect(n1.rn.raft.currentConf()).toEqual(conf(['n1', 'n4', 'n5']));
    expect([...n1.rn.raft.tracker.progress.keys()].sort()).toEqual(['n1', 'n4', 'n5']);
    for (const id of ['n4', 'n5']) expect(c.node(id).rn.raft.currentConf()).toEqual(conf(['n1', 'n4', 'n5']));
    // The new configuration works on its own.
    c.isolate('n2');
    c.isolate('n3');
    n1.rn.propose(bytes('after'));
    settle(c);
    expect(n1.rn.raft.log.committed).toBe(4);
  });

  it('a leader removed by C_new steps down once it commits, handing over to a caught-up voter', () => {
    const c = cluster(['n1', 'n2', 'n3']);
    const n1 = elect(c, 'n1');
    n1.rn.proposeConfChange(cc(['remove', 'n1']));
    // While the change finishes, the leader takes no more proposals.
    expect(codeOf(() => n1.rn.propose(bytes('x')))).toBe('PROPOSAL_DROPPED');
    const sent: string[] = [];
    settle(c, {
      onDeliver: (m) => {
        if (m.type === 'timeout-now') sent.push(m.to);
      },
    });
    expect(sent).toHaveLength(1);
    expect(n1.rn.raft.role).toBe('follower');
    const leader = c.leader();
    expect(leader?.id).toBe(sent[0]);
    expect(leader?.rn.raft.currentConf()).toEqual(conf(['n2', 'n3']));
  });

  it('learners receive the log but do not count toward commit, and are not asked for votes', () => {
    const ids = ['n1', 'n2', 'n3'];
    const storages = Object.fromEntries(
      ids.map((id) => [id, storageWith(['n1', 'n2'], { learners: ['n3'] })]),
    );
    const c = cluster(ids, {}, storages);
    const n1 = c.node('n1');
    n1.rn.campaign();
    c.processReady('n1');
    expect(ofType(c.node('n3').inbox, 'prevote')).toEqual([]);
    settle(c);
    expect(n1.rn.raft.role).toBe('leader');
    c.isolate('n2');
    n1.rn.propose(bytes('x'));
    settle(c);
    expect(c.node('n3').rn.raft.log.lastIndex()).toBe(2);
    expect(n1.rn.raft.log.committed).toBe(1);
    expect(n1.rn.status().progress?.get('n3')).toMatchObject({ isLearner: true, match: 2 });
    c.heal();
    n1.rn.tick();
    settle(c);
    expect(n1.rn.raft.log.committed).toBe(2);
    expect(c.node('n3').rn.raft.log.committed).toBe(2);
  });

  it('a learner is promoted to voter', () => {
    const ids = ['n1', 'n2', 'n3'];
    const storages = Object.fromEntries(
      ids.map((id) => [id, storageWith(['n1', 'n2'], { learners: ['n3'] })]),
    );
    const c = cluster(ids, {}, storages);
    const n1 = elect(c, 'n1');
    n1.rn.proposeConfChange(cc(['add-voter', 'n3']));
    settle(c);
    for (const n of c.nodes.values()) expect(n.rn.raft.currentConf()).toEqual(conf(['n1', 'n2', 'n3']));
    expect(n1.rn.status().progress?.get('n3')?.isLearner).toBe(false);
  });

  it('a voter demoted in a joint change keeps voting until C_new, then becomes a learner', () => {
    const c = cluster(['n1', 'n2', 'n3']);
    const n1 = elect(c, 'n1');
    n1.rn.proposeConfChange({ ...cc(['add-learner', 'n3']), joint: true });
    expect(n1.rn.raft.currentConf().learnersNext).toEqual(['n3']);
    settle(c);
    expect(n1.rn.raft.currentConf()).toEqual(conf(['n1', 'n2'], ['n3']));
    expect(c.node('n3').rn.raft.currentConf()).toEqual(conf(['n1', 'n2'], ['n3']));
  });

  it('only one change may be pending at a time', () => {
    const c = cluster(['n1', 'n2', 'n3']);
    const n1 = elect(c, 'n1');
    c.isolate('n1');
    n1.rn.proposeConfChange(cc(['add-learner', 'n4']));
    expect(codeOf(() => n1.rn.proposeConfChange(cc(['add-learner', 'n5'])))).toBe('CONF_CHANGE_IN_PROGRESS');
    c.heal();
    n1.rn.tick();
    settle(c);
    expect(n1.rn.proposeConfChange(cc(['add-learner', 'n5']))).toBeDefined();
  });

  it('a new leader treats its uncommitted tail as a possibly pending change', () => {
    const s = storageWith(['n1', 'n2', 'n3'], { terms: [1, 1], hardState: { term: 1, commit: 1 } });
    const rn = rawNode('n1', s, { preVote: false, checkQuorum: false });
    rn.campaign();
    rn.step({ type: 'vote-resp', from: 'n2', to: 'n1', term: 2, reject: false });
    expect(rn.raft.role).toBe('leader');
    expect(codeOf(() => rn.proposeConfChange(cc(['add-learner', 'n4'])))).toBe('CONF_CHANGE_IN_PROGRESS');
  });

  it('a server that joins with an empty log learns the membership from the bootstrap entry', () => {
    const founding = cc(['add-voter', 'n1'], ['add-voter', 'n2'], ['add-voter', 'n3']);
    const boot = () =>
      new MemoryStorage({
        entries: [confEntry(1, 1, founding)],
        hardState: { term: 1, vote: undefined, commit: 1 },
      });
    const c = cluster(['n1', 'n2', 'n3'], {}, { n1: boot(), n2: boot(), n3: boot() });
    for (const n of c.nodes.values()) expect(n.rn.raft.currentConf()).toEqual(C3);
    for (let i = 0; i < 100 && c.leader() === undefined; i++) c.tickAll(1);
    const leader = c.leader()!;
    c.add('n4', [], {}, new MemoryStorage());
    expect(c.node('n4').rn.raft.promotable()).toBe(false);
    leader.rn.proposeConfChange(cc(['add-voter', 'n4']));
    settle(c);
    for (const n of c.nodes.values()) expect(n.rn.raft.currentConf()).toEqual(conf(['n1', 'n2', 'n3', 'n4']));
  });

  it('refuses a change that cannot apply to the configuration in force', () => {
    const c = cluster(['n1', 'n2', 'n3']);
    const n1 = elect(c, 'n1');
    expect(codeOf(() => n1.rn.proposeConfChange({ changes: [], leaveJoint: true }))).toBe('BAD_REQUEST');
    expect(
      codeOf(() => n1.rn.proposeConfChange(cc(['remove', 'n1'], ['remove', 'n2'], ['remove', 'n3']))),
    ).toBe('BAD_REQUEST');
    const garbage = { term: 0, index: 0, type: 'conf' as const, data: bytes('garbage') };
    expect(
      codeOf(() => n1.rn.raft.step({ type: 'prop', from: 'n1', to: 'n1', term: 0, entries: [garbage] })),
    ).toBe('BAD_REQUEST');
    expect(n1.rn.raft.log.lastIndex()).toBe(1);
  });
});
