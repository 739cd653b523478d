import type { Entry, HardState, Message, ReadState, Snapshot } from './messages.js';
import type { SoftState } from './raft.js';

/**
 * One batch of work the core hands to the node (docs/ready-contract.md). The node must, in
 * this order:
 *
 * 1. send `messages` (they may go at once, even while step 2 runs);
 * 2. persist `snapshot`, `entries` and `hardState` durably (one sync when `mustSync`);
 * 3. send `persistedMessages` — they acknowledge durable state (votes, append acks) and
 *    must never leave before it is on disk;
 * 4. install `snapshot` into the state machine, then apply `committedEntries` in order;
 * 5. call `advance(ready)`.
 */
export interface Ready {
  /** The role or leader changed. */
  readonly softState?: SoftState | undefined;
  /** Term, vote or commit changed and must be persisted. */
  readonly hardState?: HardState | undefined;
  /** Entries to append to durable storage (a first index already present truncates the suffix). */
  readonly entries: readonly Entry[];
  /** A snapshot to persist and install (it replaces the log up to its index). */
  readonly snapshot?: Snapshot | undefined;
  /** Committed entries to apply to the state machine, in order. */
  readonly committedEntries: readonly Entry[];
  /** Messages that may be sent before the batch is persisted. */
  readonly messages: readonly Message[];
  /** Messages to send only after the batch is persisted. */
  readonly persistedMessages: readonly Message[];
  /** Reads now safe to serve once the state machine has applied `index`. */
  readonly readStates: readonly ReadState[];
  /** Whether persisting needs a durable sync (false when only the commit index moved). */
  readonly mustSync: boolean;
}
