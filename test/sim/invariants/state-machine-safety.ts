// §5.4.3 State Machine Safety: if a server has applied a log entry at a given index to its
// state machine, no other server will ever apply a different log entry for the same index.
import type { NodeId } from '../../../src/core/messages.js';
import type { Invariant } from './types.js';

export function stateMachineSafety(): Invariant {
  const applied = new Map<number, { term: number; data: string; node: NodeId }>();
  const dec = new TextDecoder();
  return {
    name: 'state-machine-safety',
    section: '§5.4.3',
    onApplied(_sim, node, e) {
      const data = e.type === 'conf' ? `conf:${dec.decode(e.data)}` : dec.decode(e.data);
      const prev = applied.get(e.index);
      if (!prev) {
        applied.set(e.index, { term: e.term, data, node });
        return undefined;
      }
      if (prev.term !== e.term || prev.data !== data) {
        return `${node} applied ${e.term}/${e.index} ${JSON.stringify(data)} but ${prev.node} applied ${prev.term}/${e.index} ${JSON.stringify(prev.data)}`;
      }
      return undefined;
    },
  };
}
