import type { Entry, HardState, Index, Snapshot } from '../core/messages.js';
import type { LogStorage } from '../core/log-storage.js';

/**
 * One durable write: what a `Ready` batch asks to persist. Applied in this order:
 * snapshot (if any: replaces the log up to its index), then entries (an entry whose index
 * is already present truncates that index and everything after it first: the conflicting
 * suffix, §5.3), then the hard state. All of it is durable when `save()` resolves.
 */
export interface StorageUpdate {
  readonly hardState?: HardState | undefined;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot | undefined;
}

/**
 * The storage contract: the core's synchronous read view plus asynchronous durable writes.
 *
 * Implementations: `MemoryStorage` (the in-memory twin, for tests and the simulator) and
 * `FileStorage` (write-ahead log on disk). Both are checked by the same conformance suite,
 * `runStorageSuite` in `tsraft/testing`.
 *
 * Fail-stop: once a write fails (ENOSPC, EIO, EROFS...), that `save()` rejects with
 * `RaftError('STORAGE_FAILED')` and so does every later write; nothing is acknowledged again.
 */
export interface Storage extends LogStorage {
  /** Persist one batch with a single sync (group commit). Reads reflect it once it resolves. */
  save(update: StorageUpdate): Promise<void>;
  /**
   * Record a snapshot taken by the state machine at `snapshot.meta.index` (which must be in
   * the log and at or below the commit index), then drop log entries at or below
   * `compactTo` (<= snapshot index; defaults to it). Crash-safe: a crash leaves either the
   * old or the new state.
   */
  saveSnapshot(snapshot: Snapshot, compactTo?: Index): Promise<void>;
  /** Release files and locks. Idempotent. */
  close(): Promise<void>;
}
