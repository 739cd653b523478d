// §7 Log compaction: a snapshot is exactly the state machine after applying the log up to its
// last included index, whoever took it; installing one resets a server to that state, and the
// entries that follow apply on top of it. Checked on whole-state digests: every server whose
// state machine is at index i — by applying entries or by installing a snapshot — holds the
// same state, and a snapshot's last included term is the term of that entry everywhere.
import type { Term } from '../../../src/core/messages.js';
import { decodeSimSnapshot } from '../state-digest.js';
import type { Invariant } from './types.js';

export function snapshotConsistency(): Invariant {
  /** index → the state digest after applying through it, and who first reached it. */
  const states = new Map<number, { hash: number; node: string; how: string }>();
  const terms = new Map<number, Term>();
  const check = (index: number, hash: number, node: string, how: string): string | undefined => {
    const prev = states.get(index);
    if (prev === undefined) {
      states.set(index, { hash, node, how });
      return undefined;
    }
    if (prev.hash !== hash) {
      return `${node} ${how} at ${index} holds state ${hash.toString(16)}, but ${prev.node} ${prev.how} held ${prev.hash.toString(16)}`;
    }
    return undefined;
  };
  return {
    name: 'snapshot-consistency',
    section: '§7',
    onApplied(sim, node, e) {
      terms.set(e.index, e.term);
      return check(e.index, sim.node(node).hash, node, 'applying');
    },
    onSnapshot(_sim, node, snap, kind) {
      const { index, hash } = decodeSimSnapshot(snap.data);
      if (index !== snap.meta.index)
        return `${node}'s snapshot at ${snap.meta.index} holds the state of ${index}`;
      const t = terms.get(index);
      if (t !== undefined && t !== snap.meta.term) {
        return `${node}'s snapshot at ${index} names term ${snap.meta.term}; the entry applied there has term ${t}`;
      }
      return check(index, hash, node, kind === 'taken' ? 'snapshotting' : 'installing a snapshot');
    },
  };
}
