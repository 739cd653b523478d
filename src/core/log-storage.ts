import type { ConfState, Entry, HardState, Index, Snapshot, Term } from './messages.js';

/**
 * The synchronous, read-only view of durable storage that the core reads (STYLE.md convention 7).
 *
 * It holds only what has been persisted: entries the core appended but that are not yet
 * durable live in the core's own unstable log. The log it describes is
 * `[firstIndex(), lastIndex()]` with `firstIndex() <= snapshot.index + 1` (a storage may keep
 * a margin of entries below its snapshot so slow followers catch up from the log); the term
 * of `firstIndex() - 1` stays answerable through `term()`.
 *
 * Errors: a read below `firstIndex()` throws `RaftError('COMPACTED')`; a read the
 * implementation cannot serve right now throws `RaftError('UNAVAILABLE')`.
 */
export interface LogStorage {
  /** The persisted hard state and membership, read once when the core starts. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in `[lo, hi)`, at most `maxBytes` in total by {@link entrySize} but always at least
   * one entry if any is in range. `lo >= firstIndex()` and `hi <= lastIndex() + 1`.
   */
  entries(lo: Index, hi: Index, maxBytes: number): Entry[];
  /** The term of the entry at `index`, for `firstIndex() - 1 <= index <= lastIndex()`. */
  term(index: Index): Term;
  /** The first index still in the log (snapshot index + 1). */
  firstIndex(): Index;
  /** The last persisted index (equals the snapshot index when the log is empty). */
  lastIndex(): Index;
  /** The newest snapshot (data may be empty when none was taken yet: index 0). */
  snapshot(): Snapshot;
}
