import { describe, expect, it } from 'vitest';
import { Cluster } from '../../support/cluster.js';

const enc = new TextEncoder();

describe('§8 ReadIndex batching', () => {
  it('reads that arrive before the round’s heartbeats leave share that round; later ones get the next', () => {
    const c = new Cluster();
    c.verbose = false;
    const ids = ['n1', 'n2', 'n3'];
    for (const id of ids) c.add(id, ids);
    c.node('n1').rn.campaign();
    c.stabilize();
    const leader = c.node('n1');
    // Three reads in the same step: one heartbeat round (one heartbeat per follower).
    for (const ctx of ['a', 'b', 'c']) leader.rn.readIndex(enc.encode(ctx));
    const rd = leader.rn.ready();
    const heartbeats = rd.messages.filter((m) => m.type === 'heartbeat');
    expect(heartbeats).toHaveLength(2);
    for (const m of [...rd.messages, ...rd.persistedMessages]) c.node(m.to).inbox.push(m);
    leader.rn.advance(rd);
    // A read after those heartbeats left needs a round started after it arrived.
    leader.rn.readIndex(enc.encode('d'));
    // It waits for round 1 to be confirmed, then a second round is started for it.
    expect(leader.rn.hasReady()).toBe(false);
    c.stabilize();
    expect(leader.readStates.map((r) => r.context)).toEqual(['a', 'b', 'c', 'd']);
  });
});
