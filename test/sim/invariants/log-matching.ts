// §5.3 Log Matching: if two logs contain an entry with the same index and term, the logs are
// identical in all entries up through that index. Checked inductively over durable logs: an
// (index, term) pair, wherever and whenever it appears, always has the same data and the same
// predecessor term.
import { type Entry, type NodeId } from '../../../src/core/messages.js';
import type { Invariant } from './types.js';

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function logMatching(): Invariant {
  const registry = new Map<string, { data: Uint8Array; prevTerm: number; node: NodeId }>();
  return {
    name: 'log-matching',
    section: '§5.3',
    onPersisted(sim, node, entries: readonly Entry[]) {
      const s = sim.node(node).storage;
      for (const e of entries) {
        let prevTerm: number;
        try {
          prevTerm = s.term(e.index - 1);
        } catch {
          continue; // predecessor compacted
        }
        const key = `${e.index}/${e.term}`;
        const r = registry.get(key);
        if (!r) {
          registry.set(key, { data: e.data, prevTerm, node });
          continue;
        }
        if (!same(r.data, e.data))
          return `${node}[${e.index}] term ${e.term} holds other data than ${r.node}[${e.index}]`;
        if (r.prevTerm !== prevTerm) {
          return `${node}[${e.index - 1}] term ${prevTerm} ≠ ${r.node}[${e.index - 1}] term ${r.prevTerm} (both hold ${key})`;
        }
      }
      return undefined;
    },
  };
}
