import { describe, expect, it } from 'vitest';
import { Cluster } from '../../support/cluster.js';

const enc = new TextEncoder();

function cluster(lazyCommit: boolean): Cluster {
  const c = new Cluster();
  c.verbose = true;
  const ids = ['n1', 'n2', 'n3'];
  for (const id of ids) c.add(id, ids, { lazyCommit, heartbeatTicks: 3 });
  c.node('n1').rn.campaign();
  c.stabilize();
  c.flush();
  return c;
}

describe('§5.3 commit propagation', () => {
  it('eager (default): a commit goes out at once in empty appends', () => {
    const c = cluster(false);
    c.node('n1').rn.propose(enc.encode('x'));
    c.stabilize();
    const empty = c
      .flush()
      .split('\n')
      .filter((l) => l.startsWith('n1->') && l.includes(' app ') && l.includes('entries=0'));
    expect(empty).toHaveLength(2);
    expect(c.node('n2').rn.raft.log.committed).toBe(c.node('n1').rn.raft.log.committed);
  });

  it('lazyCommit: no extra message round; followers learn the commit at the next tick', () => {
    const c = cluster(true);
    c.node('n1').rn.propose(enc.encode('x'));
    c.stabilize();
    const out = c.flush().split('\n');
    expect(out.filter((l) => l.startsWith('n1->') && l.includes('entries=0'))).toHaveLength(0);
    const leaderCommit = c.node('n1').rn.raft.log.committed;
    expect(c.node('n2').rn.raft.log.committed).toBeLessThan(leaderCommit);
    c.tick('n1', 1); // not a heartbeat tick (heartbeatTicks 3): the commit flush
    c.stabilize();
    expect(c.node('n2').rn.raft.log.committed).toBe(leaderCommit);
    expect(c.node('n3').rn.raft.log.committed).toBe(leaderCommit);
    // A commit that rides on the next append costs nothing extra.
    c.node('n1').rn.propose(enc.encode('y'));
    c.stabilize();
    c.node('n1').rn.propose(enc.encode('z'));
    c.stabilize();
    expect(c.node('n2').rn.raft.log.committed).toBe(c.node('n1').rn.raft.log.committed - 1);
  });
});
