import { describe, expect, it } from 'vitest';
import { NotLeaderError, RaftError } from '../../../src/errors.js';
import { bytes, cluster, elect, settle, text } from './helpers.js';

const PEERS = ['n1', 'n2', 'n3'];

function errorOf(f: () => unknown): RaftError | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof RaftError) return e;
    throw e;
  }
  return undefined;
}

describe('proposals on the leader', () => {
  it('are appended at the end of the log in the current term and committed by a majority', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    expect(n1.rn.propose(bytes('a'))).toEqual({ index: 2, term: 1 });
    expect(n1.rn.propose(bytes('b'))).toEqual({ index: 3, term: 1 });
    settle(c);
    for (const n of c.nodes.values()) expect(n.applied.map((e) => text(e.data))).toEqual(['', 'a', 'b']);
  });

  it('a batch is one append and one message per follower', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    expect(n1.rn.proposeBatch([bytes('a'), bytes('b'), bytes('c')])).toEqual({ index: 4, term: 1 });
    const apps = n1.rn.ready().messages.filter((m) => m.type === 'app');
    expect(apps.map((m) => (m.type === 'app' ? [m.to, m.entries.length] : []))).toEqual([
      ['n2', 3],
      ['n3', 3],
    ]);
  });

  it('beyond maxUncommittedBytes the leader refuses with BACK_PRESSURE', () => {
    const c = cluster(PEERS, { maxUncommittedBytes: 100 });
    const n1 = elect(c, 'n1');
    c.isolate('n1'); // nothing commits
    expect(n1.rn.propose(new Uint8Array(60))).toBeDefined();
    const err = errorOf(() => n1.rn.propose(new Uint8Array(41)));
    expect(err?.code).toBe('BACK_PRESSURE');
    expect(n1.rn.raft.log.lastIndex()).toBe(2); // not appended
    expect(n1.rn.propose(new Uint8Array(40))).toBeDefined(); // exactly at the limit
    expect(errorOf(() => n1.rn.propose(new Uint8Array(1)))?.code).toBe('BACK_PRESSURE');

    // Once the backlog commits and is handed to the application, proposals flow again.
    c.heal();
    n1.rn.tick();
    settle(c);
    expect(n1.rn.raft.log.committed).toBe(3);
    expect(n1.rn.propose(new Uint8Array(60))).toBeDefined();
  });

  it('one proposal larger than the limit is accepted when nothing is outstanding', () => {
    const c = cluster(PEERS, { maxUncommittedBytes: 10 });
    const n1 = elect(c, 'n1');
    expect(n1.rn.propose(new Uint8Array(500))).toEqual({ index: 2, term: 1 });
    expect(errorOf(() => n1.rn.propose(new Uint8Array(1)))?.code).toBe('BACK_PRESSURE');
  });

  it('(has teeth) with maxUncommittedBytes 0 there is no limit', () => {
    const c = cluster(PEERS, { maxUncommittedBytes: 0 });
    const n1 = elect(c, 'n1');
    c.isolate('n1');
    for (let i = 0; i < 50; i++) expect(n1.rn.propose(new Uint8Array(1000))).toBeDefined();
  });

  it('a forwarded proposal the leader cannot take is dropped without an error', () => {
    const c = cluster(PEERS, { maxUncommittedBytes: 10, forwardProposals: true });
    const n1 = elect(c, 'n1');
    c.isolate('n1');
    n1.rn.propose(new Uint8Array(10));
    expect(() =>
      n1.rn.step({
        type: 'prop',
        from: 'n2',
        to: 'n1',
        term: 0,
        entries: [{ term: 0, index: 0, type: 'normal', data: new Uint8Array(5) }],
      }),
    ).not.toThrow();
    expect(n1.rn.raft.log.lastIndex()).toBe(2);
  });

  it('an empty proposal is refused', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    const r = n1.rn.raft;
    expect(errorOf(() => r.step({ type: 'prop', from: 'n1', to: 'n1', term: 0, entries: [] }))?.code).toBe(
      'BAD_REQUEST',
    );
  });

  it('a proposal cannot arrive from the network claiming to be local', () => {
    const c = cluster(PEERS);
    const n1 = elect(c, 'n1');
    const prop = { type: 'prop' as const, from: 'n1', to: 'n1', term: 0, entries: [] };
    expect(errorOf(() => n1.rn.step(prop))?.code).toBe('BAD_REQUEST');
  });
});

describe('proposals on a follower', () => {
  it('are refused with NotLeaderError carrying the leader hint', () => {
    const c = cluster(PEERS);
    elect(c, 'n1');
    const err = errorOf(() => c.node('n2').rn.propose(bytes('x')));
    expect(err).toBeInstanceOf(NotLeaderError);
    expect(err?.code).toBe('NOT_LEADER');
    expect((err as NotLeaderError).leaderHint).toBe('n1');
  });

  it('are refused without a hint when no leader is known (follower or candidate)', () => {
    const c = cluster(PEERS, { preVote: false });
    const err = errorOf(() => c.node('n2').rn.propose(bytes('x')));
    expect((err as NotLeaderError).leaderHint).toBeUndefined();
    c.node('n2').rn.campaign();
    expect(errorOf(() => c.node('n2').rn.propose(bytes('x')))).toBeInstanceOf(NotLeaderError);
  });

  it('are forwarded to the leader with forwardProposals', () => {
    const c = cluster(PEERS, { forwardProposals: true });
    const n1 = elect(c, 'n1');
    expect(c.node('n2').rn.propose(bytes('via-n2'))).toBeUndefined();
    expect(c.node('n2').rn.proposeBatch([bytes('b1'), bytes('b2')])).toBeUndefined();
    settle(c);
    expect(n1.applied.map((e) => text(e.data))).toEqual(['', 'via-n2', 'b1', 'b2']);
    for (const n of c.nodes.values()) expect(n.applied.at(-1)?.term).toBe(1);
  });

  it('a forwarded proposal is not forwarded again by another follower', () => {
    const c = cluster(PEERS, { forwardProposals: true });
    elect(c, 'n1');
    const n3 = c.node('n3');
    n3.rn.step({
      type: 'prop',
      from: 'n2',
      to: 'n3',
      term: 0,
      entries: [{ term: 0, index: 0, type: 'normal', data: bytes('loop') }],
    });
    expect(n3.rn.hasReady()).toBe(false);
  });
});
