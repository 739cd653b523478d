import type { Entry, NodeId, Snapshot, Term } from '../../../src/core/messages.js';
import type { Simulator } from '../simulator.js';

/**
 * One safety property, checked incrementally as the simulation runs. Each hook returns a
 * description of the violation, or undefined when the property still holds.
 */
export interface Invariant {
  /** Short name, e.g. `log-matching`. */
  readonly name: string;
  /** Where the paper states it, e.g. `§5.3`. */
  readonly section: string;
  /** Entries were made durable on `node` (its storage now holds them). */
  onPersisted?(sim: Simulator, node: NodeId, entries: readonly Entry[]): string | undefined;
  /** `node` applied `entry` to its state machine. */
  onApplied?(sim: Simulator, node: NodeId, entry: Entry): string | undefined;
  /** A read that began when `ackedIndex` was the newest acknowledged write was served at `index`. */
  onRead?(sim: Simulator, node: NodeId, index: number, ackedIndex: number): string | undefined;
  /** `node` took a snapshot of its state machine, or installed one from a leader (§7). */
  onSnapshot?(
    sim: Simulator,
    node: NodeId,
    snapshot: Snapshot,
    kind: 'taken' | 'installed',
  ): string | undefined;
  /** After every simulation step. */
  afterStep?(sim: Simulator): string | undefined;
}

/** Helper: the term a node's in-memory log holds at `i`, if any. */
export type TermAt = (i: number) => Term | undefined;
