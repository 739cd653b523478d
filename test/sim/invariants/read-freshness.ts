// §8 Linearizable reads: a ReadIndex (or lease) read is served at an index no older than the
// newest write acknowledged before the read began.
import type { Invariant } from './types.js';

export function readFreshness(): Invariant {
  return {
    name: 'read-freshness',
    section: '§8',
    onRead(_sim, node, index, ackedIndex) {
      if (index < ackedIndex) {
        return `${node} served a read at index ${index}, but write ${ackedIndex} was acknowledged before the read began`;
      }
      return undefined;
    },
  };
}
