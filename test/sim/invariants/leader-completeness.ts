// §5.4 Leader Completeness: if a log entry is committed in a given term, that entry will be
// present in the logs of the leaders for all higher-numbered terms.
import type { Index, NodeId, Term } from '../../../src/core/messages.js';
import type { Invariant } from './types.js';

export function leaderCompleteness(): Invariant {
  /** index → term of every entry known committed anywhere. */
  const committed: Term[] = [0];
  const checked = new Map<NodeId, Term>();
  return {
    name: 'leader-completeness',
    section: '§5.4',
    afterStep(sim) {
      for (const n of sim.live()) {
        const r = n.rn.raft;
        // Record newly committed entries (from this node's view of its own log).
        for (let i = committed.length; i <= r.log.committed; i++) {
          const t = r.log.term(i);
          if (t === undefined) break;
          committed.push(t);
        }
        if (r.role === 'leader' && checked.get(n.id) !== r.term) {
          checked.set(n.id, r.term);
          const first = r.log.firstIndex();
          for (let i: Index = Math.max(1, first); i < committed.length; i++) {
            const t = r.log.term(i);
            if (t !== committed[i]) {
              return `leader ${n.id} of term ${r.term} lacks committed entry ${committed[i]}/${i} (has ${t ?? 'nothing'})`;
            }
          }
        }
      }
      return undefined;
    },
  };
}
