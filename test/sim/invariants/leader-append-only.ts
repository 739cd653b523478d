// §5.3 Leader Append-Only: a leader never overwrites or deletes entries in its log; it only appends.
import type { Index, NodeId, Term } from '../../../src/core/messages.js';
import type { Invariant } from './types.js';

export function leaderAppendOnly(): Invariant {
  // For each current leader: the term it leads in, and its log's last index and term there.
  const seen = new Map<NodeId, { term: Term; last: Index; lastTerm: Term; mid: Index; midTerm: Term }>();
  return {
    name: 'leader-append-only',
    section: '§5.3',
    afterStep(sim) {
      for (const n of sim.nodes.values()) {
        const r = n.rn.raft;
        if (!n.up || r.role !== 'leader') {
          seen.delete(n.id);
          continue;
        }
        const last = r.log.lastIndex();
        const prev = seen.get(n.id);
        if (prev && prev.term === r.term) {
          if (last < prev.last)
            return `leader ${n.id} (term ${r.term}) shrank its log from ${prev.last} to ${last}`;
          const t = r.log.term(prev.last);
          if (t !== undefined && t !== prev.lastTerm) {
            return `leader ${n.id} (term ${r.term}) overwrote index ${prev.last}: term ${prev.lastTerm} → ${t}`;
          }
          const tm = r.log.term(prev.mid);
          if (tm !== undefined && tm !== prev.midTerm) {
            return `leader ${n.id} (term ${r.term}) overwrote index ${prev.mid}: term ${prev.midTerm} → ${tm}`;
          }
        }
        const mid = Math.max(r.log.firstIndex() - 1, r.log.committed);
        seen.set(n.id, {
          term: r.term,
          last,
          lastTerm: r.log.lastTerm(),
          mid,
          midTerm: r.log.term(mid) ?? 0,
        });
      }
      return undefined;
    },
  };
}
