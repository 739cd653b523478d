// §5.2 Election Safety: at most one leader can be elected in a given term.
import type { NodeId, Term } from '../../../src/core/messages.js';
import type { Invariant } from './types.js';

export function electionSafety(): Invariant {
  const leaders = new Map<Term, NodeId>();
  return {
    name: 'election-safety',
    section: '§5.2',
    afterStep(sim) {
      for (const n of sim.live()) {
        const r = n.rn.raft;
        if (r.role !== 'leader') continue;
        const prev = leaders.get(r.term);
        if (prev === undefined) leaders.set(r.term, n.id);
        else if (prev !== n.id) return `two leaders in term ${r.term}: ${prev} and ${n.id}`;
      }
      return undefined;
    },
  };
}
